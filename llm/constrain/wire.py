"""A Constraint as OpenAI-compatible servers take it, for the OpenAI backend.

vLLM and SGLang (xgrammar, or llguidance with --guided-decoding-backend / --grammar-backend)
and llm.serve accept `response_format`: {"type": "structural_tag", "structures": [{"begin",
"schema", "end"}], "triggers": [...]} for tool calls, {"type": "json_schema", ...} for a
whole JSON output. A server that cannot apply it answers 400 / 422; the backend then sends
the request again without it and says so in GenerationEnd.notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llm.types import Constraint, FunctionCall

REFUSED_STATUS = (400, 422)


@dataclass
class Sent:
    """What became of one request's constraint: the one the server took, and notes."""

    constraint: Constraint | None = None
    notes: list[str] = field(default_factory=list)


def response_format(constraint: Constraint) -> dict[str, Any]:
    """The request's `response_format` field for this constraint."""
    if constraint.json_schema is not None and not constraint.structures:
        return {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": constraint.json_schema},
        }
    return {
        "type": "structural_tag",
        "structures": [
            {"begin": s.begin, "schema": s.schema, "end": s.end} for s in constraint.structures
        ],
        "triggers": list(constraint.triggers),
    }


def structure_seen(constraint: Constraint, text: str, calls: Sequence[FunctionCall]) -> bool:
    """Whether a server that accepted the constraint applied it: the whole output is
    constrained, or a trigger (or a call the server parsed out of the text) appeared."""
    if constraint.json_schema is not None:
        return True
    return bool(calls) or any(t in text for t in constraint.triggers)


def refused_note(base_url: str, error: str) -> str:
    return (
        f"constraint: the server at {base_url} refused it ({error}); this and later calls "
        "run unconstrained"
    )
