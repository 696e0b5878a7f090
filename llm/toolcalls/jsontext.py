"""Finding and reading the JSON a model wrote inside other text (fences, prose around it).

Shared by both tool-call formats and the agent's argument repair, so a call is read the same
way wherever it comes from.
"""

from __future__ import annotations

import json
import re
from typing import Any

import json5

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)


def strip_fences(raw: str) -> str:
    """Remove markdown code fences or inline backticks around a payload."""
    raw = raw.strip()
    m = _FENCE.match(raw)
    if m:
        return m.group(1).strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "`":
        return raw.strip("`").strip()
    return raw


def first_json_span(text: str) -> tuple[int, int] | None:
    """(start, end) of the first balanced {...} or [...], strings and escapes respected."""
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    opener = text[start]
    closer = "}" if opener == "{" else "]"
    depth, quote, escaped = 0, "", False
    for end in range(start, len(text)):
        c = text[end]
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return start, end + 1
    return None


def first_json_block(text: str) -> Any | None:
    """The first balanced {...} or [...] that parses, ignoring text around it."""
    span = first_json_span(text)
    if span is None:
        return None
    try:
        return json5.loads(text[span[0] : span[1]])
    except ValueError:
        return None


def decode_json(text: str) -> tuple[Any, bool]:
    """(value, lenient): strict JSON first, then json5 (comments, single quotes, trailing
    commas), then the first JSON block inside the text. Raises ValueError when none reads."""
    try:
        return json.loads(text), False
    except ValueError:
        pass
    try:
        return json5.loads(text), True
    except ValueError:
        found = first_json_block(text)
        if found is None:
            raise
        return found, True
