"""Qwen2.5 / Qwen3 native tool calls: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

The one parser and renderer of that wire format, shared by the agent (which reads a reply
whole), the OpenAI-compatible server (which splits a stream into content and calls, as
vLLM's hermes parser does) and the ChatML renderer. Also read: an unclosed last block, JSON
in fences, double-encoded arguments, "parameters" for "arguments", an OpenAI-shaped
{"function": {...}} object, and Qwen2.5-Coder's `<tools>...</tools>` wrapping (one or several
calls inside, possibly several such blocks in one reply).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from llm.stopwords import partial_suffix
from llm.toolcalls.jsontext import decode_json, first_json_span, strip_fences
from llm.types import FunctionCall

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
# Qwen2.5-Coder sometimes writes its calls inside the tag its prompt lists the tools in.
ALT_OPEN, ALT_CLOSE = "<tools>", "</tools>"
_CLOSERS = {TOOL_OPEN: TOOL_CLOSE, ALT_OPEN: ALT_CLOSE}
RESPONSE_TAG = "<tool_response>"
CALL_FORMAT = '<tool_call>{"name": <tool name>, "arguments": {...}}</tool_call>'
_NAME = re.compile(r"""["']name["']\s*:\s*["']([^"']+)["']""")
_FENCED = re.compile(r"```[\w-]*[ \t]*\n?(.*?)```", re.DOTALL)


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


def render_tool_call(name: str, arguments: Any) -> str:
    """One call as the Qwen2.5 chat template writes it (arguments as a JSON object)."""
    payload = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_OPEN}\n{payload}\n{TOOL_CLOSE}"


def to_openai(call: FunctionCall) -> dict[str, Any]:
    """The OpenAI `tool_calls` entry for a call (arguments as a JSON string)."""
    args = call.arguments
    text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return {
        "id": call.id or new_call_id(),
        "type": "function",
        "function": {"name": call.name, "arguments": text},
    }


def _decoded_arguments(args: Any) -> Any:
    if isinstance(args, str):  # double-encoded arguments
        try:
            return decode_json(args)[0] if args.strip() else {}
        except ValueError:
            return args
    return args


def call_from_value(value: Any, raw: str, *, repaired: bool = False) -> FunctionCall:
    """A call from a decoded JSON value; error set when it is not shaped like a call."""
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"]  # OpenAI-shaped {"function": {"name", "arguments"}}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        error = f"the tool call needs a name. Write {CALL_FORMAT}"
        return FunctionCall("", raw, raw, new_call_id(), error=error)
    args = _decoded_arguments(value.get("arguments", value.get("parameters", {})))
    return FunctionCall(value["name"].strip(), args, raw, new_call_id(), repaired=repaired)


def parse_call(body: str) -> FunctionCall:
    """One block's JSON. An unreadable block is a call with `error` (its name when found)."""
    body = strip_fences(body.strip())
    try:
        value, _lenient = decode_json(body)
    except ValueError as e:
        m = _NAME.search(body)
        error = f"the tool call is not valid JSON ({e}). Write {CALL_FORMAT}"
        return FunctionCall(m.group(1) if m else "", body, body, new_call_id(), error=error)
    return call_from_value(value, body)


def _looks_like_call(value: Any) -> bool:
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"]
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and ("arguments" in value or "parameters" in value)
    )


def _calls_in_block(opener: str, body: str) -> list[FunctionCall]:
    if opener == TOOL_OPEN:
        return [parse_call(body)]
    # <tools>: one object, a list, or one object per line
    text = strip_fences(body.strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        items = [json.loads(line) for line in lines]  # one call per line
        if len(items) == 1 and isinstance(items[0], list):
            items = items[0]
    except ValueError:
        try:
            value, _ = decode_json(text)
        except ValueError:
            return [parse_call(text)]
        items = value if isinstance(value, list) else [value]
    if not items:
        return [parse_call(text)]
    return [call_from_value(v, json.dumps(v, ensure_ascii=False), repaired=True) for v in items]


class ToolCallStream:
    """Splits (streamed) model text into content pieces and tool calls.

    Text that could be the start of a call tag is held back, as is whitespace right before a
    call; whitespace between and after calls is dropped. broken="text": a block that does
    not read as a call stays content, tags and all (a server never loses what the model
    wrote); broken="call": it becomes a call with `error`, for the agent to send back.
    """

    def __init__(self, broken: Literal["text", "call"] = "text") -> None:
        self._broken = broken
        self._buf = ""
        self._open: str | None = None
        self.calls: list[FunctionCall] = []

    def push(self, text: str) -> list[str | FunctionCall]:
        self._buf += text
        out: list[str | FunctionCall] = []
        while True:
            if self._open is not None:
                close = _CLOSERS[self._open]
                end = self._buf.find(close)
                again = self._buf.find(self._open)  # a new block before this one closed
                if again != -1 and (end == -1 or again < end):
                    body, self._buf = self._buf[:again], self._buf[again:]
                    opener, self._open = self._open, None
                    out.extend(self._close(opener, body, closed=False))
                    continue
                if end == -1:
                    return out
                body, self._buf = self._buf[:end], self._buf[end + len(close) :]
                opener, self._open = self._open, None
                out.extend(self._close(opener, body, closed=True))
                continue
            found = [(i, tag) for tag in _CLOSERS if (i := self._buf.find(tag)) != -1]
            if not found:
                keep = max(partial_suffix(self._buf, tag) for tag in _CLOSERS)
                text_part = self._buf[: len(self._buf) - keep]
                stripped = text_part.rstrip()
                keep += len(text_part) - len(stripped)  # hold whitespace before a call
                out.extend(self._content(self._buf[: len(self._buf) - keep]))
                self._buf = self._buf[len(self._buf) - keep :]
                return out
            start, tag = min(found)
            out.extend(self._content(self._buf[:start].rstrip()))
            self._buf = self._buf[start + len(tag) :]
            self._open = tag

    def finish(self) -> list[str | FunctionCall]:
        """Generation ended: an unterminated block still counts if its JSON is complete."""
        buf, self._buf = self._buf, ""
        if self._open is not None:
            opener, self._open = self._open, None
            return self._close(opener, buf, closed=False)
        return self._content(buf)

    def _close(self, opener: str, body: str, closed: bool) -> list[str | FunctionCall]:
        calls = _calls_in_block(opener, body)
        if self._broken == "text" and any(c.error for c in calls):
            raw = opener + body + (_CLOSERS[opener] if closed else "")
            return self._content(raw, force=True)
        self.calls.extend(calls)
        return list(calls)

    def _content(self, text: str, force: bool = False) -> list[str | FunctionCall]:
        if not text or (self.calls and not force and not text.strip()):
            return []
        if self.calls and not force:
            text = text.lstrip()
        return [text]


def split_tool_calls(text: str) -> tuple[str, list[FunctionCall]]:
    """Whole-text, server flavour: (content, readable calls); broken blocks stay content."""
    stream = ToolCallStream(broken="text")
    items = stream.push(text) + stream.finish()
    return "".join(i for i in items if isinstance(i, str)), stream.calls


@dataclass(frozen=True)
class HermesReply:
    content: str  # text outside the tool calls (the model's thought, or its answer)
    calls: tuple[FunctionCall, ...]
    discarded: str = ""  # a <tool_response> the model wrote itself


def parse_reply(text: str, tool_names: Collection[str] = ()) -> HermesReply:
    """Whole-text, agent flavour: every call (broken ones with `error`), the content, and a
    <tool_response> the model wrote itself split off. tool_names: the enabled tools; given,
    calls written as bare or fenced JSON without tags are read too (flagged repaired)."""
    discarded = ""
    cut = text.find(RESPONSE_TAG)
    if cut >= 0:
        text, discarded = text[:cut], text[cut:].strip()
    stream = ToolCallStream(broken="call")
    items = stream.push(text) + stream.finish()
    if not stream.calls and tool_names:
        untagged = _untagged_calls(text, tool_names)
        if untagged is not None:
            return HermesReply(untagged.content, untagged.calls, discarded)
    content = "\n".join(i.strip() for i in items if isinstance(i, str) and i.strip())
    return HermesReply(content, tuple(stream.calls), discarded)


def _untagged_calls(text: str, tool_names: Collection[str]) -> HermesReply | None:
    """Calls written as bare or fenced JSON, no tags: small models do this (Qwen2.5-0.5B).

    Only JSON shaped like a call to an enabled tool counts, so an answer showing JSON stays
    an answer.
    """
    spans = [(m.start(), m.end(), m.group(1)) for m in _FENCED.finditer(text)]
    if not spans and (bare := first_json_span(text)) is not None:
        spans = [(bare[0], bare[1], text[bare[0] : bare[1]])]
    calls: list[FunctionCall] = []
    outside, pos = [], 0
    for start, end, body in spans:
        try:
            value, _ = decode_json(body.strip())
        except ValueError:
            continue
        items = value if isinstance(value, list) else [value]
        if not items or not all(_looks_like_call(v) for v in items):
            continue
        found = [call_from_value(v, body.strip(), repaired=True) for v in items]
        if any(c.name not in tool_names for c in found):
            continue
        calls.extend(found)
        outside.append(text[pos:start])
        pos = end
    if not calls:
        return None
    outside.append(text[pos:])
    return HermesReply("".join(outside).strip(), tuple(calls))
