"""Answers a user should never see, and what to show instead.

Small models end turns with junk: the tool's raw JSON, `{"response": "136.5"}`, `True`, a
`<tool_call>`-shaped object, the agent's own note echoed back, or nothing at all. junk_kind()
recognises these; readable_result() turns the last tool result into text a person can read,
which the agent shows (with a note that the model did not phrase an answer) rather than junk.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agent.messages import TEXTS, say
from llm.toolcalls.jsontext import decode_json, strip_fences
from llm.types import Message

_CALL_TAGS = ("<tool_call>", "</tool_call>", "<tools>", "</tools>", "<tool_response>")
_CALL_LABELS = re.compile(r"^\s*(?:Action|Action\s*Input)\s*[:：]", re.MULTILINE)
# Distinctive pieces of the turns the agent writes for the model: echoed back, they are junk.
_NOTES = tuple(
    part.strip()
    for key in ("repeat_note", "ask_answer", "ask_words", "nudge_tool")
    for text in TEXTS[key].values()
    for part in re.split(r"\{\w+\}", text)
    if len(part.strip()) >= 12
)


def junk_kind(answer: str) -> str | None:
    """ "empty", "call", "note" or "json" when the answer is not words for a person, else None.

    A bare number or a quoted string is an answer ("396"); an object, a list, true / false /
    null is not.
    """
    text = answer.strip()
    if not text:
        return "empty"
    if any(tag in text for tag in _CALL_TAGS) or _CALL_LABELS.search(text):
        return "call"
    if any(note in text for note in _NOTES):
        return "note"
    body = strip_fences(text)
    if body in ("true", "false", "null", "True", "False", "None"):
        return "json"
    if body[:1] not in "{[" or body[-1:] not in "}]":
        return None
    try:
        value, _ = decode_json(body)
    except ValueError:
        return None
    if isinstance(value, dict) and "name" in value and ({"arguments", "parameters"} & set(value)):
        return "call"
    return "json" if isinstance(value, dict | list) else None


def readable_result(text: str) -> str:
    """A tool result as lines a person reads: `key: value` for an object, one line per item
    for a list, the text itself otherwise."""
    try:
        value = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(value, dict):
        return "\n".join(f"- {k}: {_scalar(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(f"- {_scalar(v)}" for v in value)
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def fallback_answer(turn: list[Message], lang: str, key: str = "no_answer") -> str | None:
    """The last successful tool result of the turn, readable, under a note in the UI
    language; None when no tool returned anything."""
    for m in reversed(turn):
        text = str(m.get("content") or "")
        if m["role"] == "tool" and not text.startswith("Error:") and junk_kind(text) != "note":
            note = say(key, lang, tool=m.get("name") or "tool")
            return f"{note}\n\n{readable_result(text)}"
    return None
