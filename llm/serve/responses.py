"""Response objects and the streamed chunks of OpenAI's chat.completion / text_completion.

Whole answers and SSE chunks come from one Shape per request. Tool calls are split out of
the model's text by llm.toolcalls.hermes (as vLLM's hermes parser does); a backend's
ThinkingDelta events become `reasoning_content` deltas (vLLM / SGLang / DeepSeek style),
and GenerationEnd.thinking the message's `reasoning_content`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from llm.serve.errors import error_body
from llm.toolcalls.hermes import ToolCallStream, split_tool_calls, to_openai
from llm.types import (
    FunctionCall,
    GenerationEnd,
    LLMEvent,
    StopReason,
    TextDelta,
    ThinkingDelta,
)


def usage(end: GenerationEnd | None) -> dict[str, Any]:
    p = end.prompt_tokens if end else 0
    c = end.completion_tokens if end else 0
    out: dict[str, Any] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    if end is not None and end.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": end.cached_tokens}
    return out


def finish_reason(end: GenerationEnd, has_calls: bool) -> str:
    if has_calls:
        return "tool_calls"
    return "length" if end.reason is StopReason.LENGTH else "stop"


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True)
class Shape:
    """Builds response objects for chat (chat.completion) or text (text_completion)."""

    ident: str
    model: str
    chat: bool

    def _base(self, chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion" if self.chat else "text_completion") + (
            ".chunk" if chunk and self.chat else ""
        )
        return {"id": self.ident, "object": kind, "created": int(time.time()), "model": self.model}

    def whole(self, end: GenerationEnd, parse_tools: bool) -> dict[str, Any]:
        text = end.text
        calls: list[FunctionCall] = []
        if parse_tools:
            text, calls = split_tool_calls(text)
        choice: dict[str, Any] = {
            "index": 0,
            "finish_reason": finish_reason(end, bool(calls)),
            "stop_reason": end.stop_word,
            "logprobs": None,
        }
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if end.thinking:
                message["reasoning_content"] = end.thinking
            if calls:
                message["tool_calls"] = [to_openai(c) for c in calls]
            choice["message"] = message
        else:
            choice["text"] = text
        return {**self._base(False), "choices": [choice], "usage": usage(end)}

    def chunk(self, delta: dict[str, Any] | str, finish: str | None = None, **extra: Any) -> str:
        """One SSE data payload (JSON text)."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None, **extra}
        if self.chat:
            choice["delta"] = delta
        else:
            choice["text"] = delta
        return _json({**self._base(True), "choices": [choice]})

    def usage_chunk(self, end: GenerationEnd | None) -> str:
        return _json({**self._base(True), "choices": [], "usage": usage(end)})


async def stream_payloads(
    events: AsyncIterator[LLMEvent],
    shape: Shape,
    parse_tools: bool,
    include_usage: bool,
) -> AsyncIterator[str]:
    """The SSE data payloads of one streamed answer, ending with "[DONE]". A generation that
    fails mid-stream ends with an OpenAI error object (the status line is already sent)."""
    parser = ToolCallStream() if parse_tools else None
    end: GenerationEnd | None = None
    if shape.chat:
        yield shape.chunk({"role": "assistant", "content": ""})
    async for event in events:
        if isinstance(event, TextDelta):
            items: list[str | FunctionCall] = parser.push(event.text) if parser else [event.text]
            for payload in _items(items, shape, parser):
                yield payload
        elif isinstance(event, ThinkingDelta):
            if shape.chat and event.text:
                yield shape.chunk({"reasoning_content": event.text})
        elif isinstance(event, GenerationEnd):
            end = event
    if end is not None and end.reason is StopReason.ERROR:
        yield _json(error_body(end.error or "generation failed", 500))
        return
    if parser is not None:
        for payload in _items(parser.finish(), shape, parser):
            yield payload
    if end is not None:
        finish = finish_reason(end, bool(parser and parser.calls))
        yield shape.chunk({} if shape.chat else "", finish, stop_reason=end.stop_word)
    if include_usage:
        yield shape.usage_chunk(end)
    yield "[DONE]"


def _items(
    items: list[str | FunctionCall], shape: Shape, parser: ToolCallStream | None
) -> Iterator[str]:
    for item in items:
        if isinstance(item, str):
            yield shape.chunk({"content": item} if shape.chat else item)
            continue
        index = parser.calls.index(item) if parser else 0
        # First the call's id and name, then its arguments, as OpenAI streams them.
        head = {"index": index, "id": item.id, "type": "function"}
        head["function"] = {"name": item.name, "arguments": ""}
        yield shape.chunk({"tool_calls": [head]})
        args = {"index": index, "function": {"arguments": to_openai(item)["function"]["arguments"]}}
        yield shape.chunk({"tool_calls": [args]})
