"""This turn's messages in the OpenAI format the UI stores, exports and passes back.

Every run's terminal event carries these; the next run gets them as `history`. Validation is
strict about shape (a misuse raises HistoryError) and lenient about content the UI may send
(gradio's list-of-parts content, system messages, which the agent's own system prompt replaces).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from agent.errors import HistoryError
from llm.types import Message

ROLES = ("user", "assistant", "tool", "system")


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def user_message(text: str) -> Message:
    return {"role": "user", "content": text}


def assistant_message(text: str) -> Message:
    return {"role": "assistant", "content": text}


def tool_call_entry(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """arguments: a dict (sent to the tool) or the raw text the model wrote (not runnable)."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def assistant_tool_calls(thought: str, calls: list[dict[str, Any]]) -> Message:
    return {"role": "assistant", "content": thought, "tool_calls": calls}


def tool_message(call_id: str, name: str, content: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        if len(parts) == len(content):
            return "".join(str(p) for p in parts)
    raise HistoryError(f"{where}: content must be a string, got {type(content).__name__}")


def normalize_history(history: Sequence[Message] | None) -> list[Message]:
    """Checked copies of the earlier turns' messages, system messages dropped."""
    if history is None:
        return []
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        raise HistoryError("history must be a list of OpenAI-style message dicts")
    out: list[Message] = []
    for i, m in enumerate(history):
        where = f"history[{i}]"
        if not isinstance(m, dict):
            raise HistoryError(f"{where} must be a dict, got {type(m).__name__}")
        role = m.get("role")
        if role not in ROLES:
            raise HistoryError(f"{where}: role must be one of {ROLES}, got {role!r}")
        if role == "system":
            continue
        msg = {**m, "content": _text(m.get("content"), where)}
        if role == "assistant" and msg.get("tool_calls"):
            msg["tool_calls"] = [_check_call(c, f"{where}.tool_calls") for c in msg["tool_calls"]]
        if role == "tool" and not isinstance(m.get("tool_call_id", ""), str):
            raise HistoryError(f"{where}: tool_call_id must be a string")
        out.append(msg)
    return out


def _check_call(call: Any, where: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise HistoryError(f"{where}: each call needs function.name")
    args = fn.get("arguments", "{}")
    if not isinstance(args, str):  # some clients store the decoded object
        args = json.dumps(args, ensure_ascii=False)
    return {
        "id": str(call.get("id") or new_call_id()),
        "type": "function",
        "function": {"name": fn["name"], "arguments": args},
    }
