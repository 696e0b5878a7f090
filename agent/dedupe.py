"""Repeated tool calls: the same call again in one turn is answered from the first result.

Small models (Qwen2.5-Coder-0.5B with native calls) repeat the same employee_db call with the
same arguments until the step limit instead of answering. With AgentSettings.dedupe_calls a
call whose name and parsed arguments equal one that already ran in this turn is not executed
again; its Observation (source "agent") repeats the earlier result and asks for the answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llm.types import Message

CallKey = tuple[str, str]  # tool name, arguments as canonical JSON

_ERROR_PREFIX = "Error:"  # refused calls and failed tools: not results worth repeating


def call_key(name: str, arguments: Any) -> CallKey:
    return name, json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)


def earlier_results(turn: Sequence[Message]) -> dict[CallKey, str]:
    """The calls that ran and succeeded earlier in this turn, with their result text."""
    results = {m.get("tool_call_id"): m.get("content") or "" for m in turn if m["role"] == "tool"}
    out: dict[CallKey, str] = {}
    for m in turn:
        for call in m.get("tool_calls") or ():
            fn = call["function"]
            text = results.get(call.get("id"))
            if text is None or text.startswith(_ERROR_PREFIX):
                continue
            try:
                arguments = json.loads(fn["arguments"])
            except (TypeError, ValueError):
                continue
            out.setdefault(call_key(fn["name"], arguments), text)
    return out


def repeat_observation(name: str, result: str) -> str:
    return (
        f"You already called {name} with these arguments in this turn; it returned:\n{result}\n"
        f"Do not call it again. Use this result and give your final answer."
    )
