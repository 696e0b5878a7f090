"""The interface every small-model aid implements, and what the loop hands it.

An aid is one class with a few hooks, each a no-op by default:

- on_request: change the model call about to be made (prefill a reply, add a constraint);
- on_tool_call: change a call as the model wrote it (repair a garbled name or arguments);
- on_tool_run: answer a checked call without running the tool (a repeat of an earlier call);
- on_step: after a step whose calls ran, decide what happens next (re-ask, finish, go on);
- on_final: judge an answer before the user sees it (re-ask once, or let it through).

The loop creates a fresh instance of each enabled aid per turn, so an aid may keep per-turn
state on itself. A hook that returns a Verdict ends the search: the first aid (in AIDS order)
with an opinion decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from llm.types import GenerationRequest, Message, ModelInfo
from tools.registry import ToolRegistry


@dataclass(frozen=True)
class AidInfo:
    """What the UI, the CLI and the eval show of an aid; key is its switch name."""

    key: str  # "prefill" -> CLI --no-prefill, eval --switch prefill=off, UI checkbox
    label: Mapping[str, str]  # {"en": ..., "zh": ...}
    help: Mapping[str, str]
    default: bool = True


@dataclass(frozen=True)
class PendingCall:
    """A tool call on its way to the tool: as written, then as the aids changed it.

    arguments: the Action Input text (ReAct), or the decoded value (native calls).
    error: the call cannot be run (it could not be read, or an aid found it unusable).
    """

    name: str
    arguments: Any
    raw: str
    error: str | None = None
    repaired: bool = False
    thought: str = ""  # a Thought written right before it (a later action of a ReAct reply)


@dataclass(frozen=True)
class CallPlan:
    """One model call: the request and the start of the reply it already writes."""

    request: GenerationRequest
    prefix: str = ""


@dataclass
class TurnContext:
    """What an aid may read about the turn so far. turn[0] is the user's question."""

    query: str
    tools: ToolRegistry
    turn: list[Message]
    format: Literal["react", "native"]
    model: ModelInfo
    lang: str  # the UI language: notes for the user are written in it
    max_steps: int
    step: int = 0

    @property
    def steps_left(self) -> bool:
        return self.step < self.max_steps

    def tool_results(self) -> list[Message]:
        """This turn's tool messages whose tool ran and succeeded."""
        return [m for m in self.turn if m["role"] == "tool" and not _is_error(m)]


def _is_error(message: Message) -> bool:
    return str(message.get("content") or "").startswith("Error:")


@dataclass(frozen=True)
class ReAsk:
    """Ask the model again with a user turn. after_answer: the rejected answer goes into the
    history first (on_final); after a tool step the turn already ends with its results."""

    text: str
    message: str  # for the trace: what the aid did and why
    after_answer: bool = True


@dataclass(frozen=True)
class Finish:
    """End the turn with this answer. fallback: the agent wrote it from the tool results
    because the model did not phrase one."""

    answer: str
    message: str = ""
    fallback: bool = False


@dataclass(frozen=True)
class Fail:
    message: str


@dataclass(frozen=True)
class Continue:
    """Call the model again as is."""


Verdict = ReAsk | Finish | Fail | Continue


@dataclass(frozen=True)
class StepOutcome:
    """What the tool calls of one step came to (for on_step).

    invalid: why a call could not run, None when all ran. repeated: every call was answered
    by an aid instead of the tool (it repeated one that already ran this turn).
    """

    invalid: str | None = None
    repeated: bool = False


@dataclass(frozen=True)
class Answered:
    """A call an aid answered without running the tool (on_tool_run)."""

    observation: str  # what the model reads as the result
    message: str  # for the trace, in the UI language


class Aid:
    """Base class: every hook does nothing."""

    info: ClassVar[AidInfo]

    def on_request(self, ctx: TurnContext, plan: CallPlan) -> CallPlan:
        return plan

    def on_tool_call(self, ctx: TurnContext, call: PendingCall) -> PendingCall:
        return call

    def on_tool_run(
        self, ctx: TurnContext, name: str, arguments: dict[str, Any]
    ) -> Answered | None:
        """Answer the checked call without running the tool, or None to run it."""
        return None

    def on_step(self, ctx: TurnContext, outcome: StepOutcome) -> Verdict | None:
        return None

    def on_final(self, ctx: TurnContext, answer: str) -> Verdict | None:
        return None
