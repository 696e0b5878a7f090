"""The small-model aids: one list, in the order their hooks run.

Each aid is one module with one class (see base.py for the interface). This list generates
the UI's checkboxes, the CLI's --no-<key> / --<key> flags and the eval's switches; adding an
aid is its module plus one line here (docs/agent.md shows how).
"""

from __future__ import annotations

from agent.aids.ask import AskForAnswer
from agent.aids.base import Aid, AidInfo
from agent.aids.constrain import Constrain
from agent.aids.dedupe import Dedupe
from agent.aids.junk import NoJunk
from agent.aids.prefill import Prefill
from agent.aids.reject import Reject
from agent.aids.repair import Repair
from agent.aids.retry import Retry

AIDS: tuple[type[Aid], ...] = (
    Prefill,
    Constrain,
    Repair,
    Retry,
    Reject,
    Dedupe,
    AskForAnswer,
    NoJunk,
)

AID_INFO: tuple[AidInfo, ...] = tuple(a.info for a in AIDS)
AID_KEYS: tuple[str, ...] = tuple(i.key for i in AID_INFO)
DEFAULT_AIDS: frozenset[str] = frozenset(i.key for i in AID_INFO if i.default)


def make_aids(keys: frozenset[str]) -> list[Aid]:
    """Fresh instances (per-turn state) of the enabled aids, in list order."""
    return [aid() for aid in AIDS if aid.info.key in keys]


__all__ = ["AIDS", "AID_INFO", "AID_KEYS", "DEFAULT_AIDS", "Aid", "AidInfo", "make_aids"]
