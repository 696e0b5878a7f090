"""Reading an OpenAI-compatible stream: chunks in, TextDelta / ThinkingDelta out.

Content goes through the stop-word filter (servers differ in how they cut multi-token stop
words, and some ignore them); `reasoning_content` (vLLM before 0.9, SGLang, DeepSeek) or
`reasoning` (newer vLLM, OpenRouter) deltas become ThinkingDelta events; streamed
`tool_calls` deltas are accumulated by index into FunctionCalls, so the agent gets calls
as structures, never as text to re-parse.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llm.stopwords import StopWordFilter
from llm.types import FunctionCall, GenerationRequest, StopReason, TextDelta, ThinkingDelta

_CANCEL_POLL_S = 0.05
_REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass
class ToolCallBuffer:
    """Streamed tool_calls deltas of one call, accumulated by index."""

    name: str = ""
    id: str = ""
    arguments: list[str] = field(default_factory=list)

    def as_call(self) -> FunctionCall:
        """Arguments that are not JSON are kept as written (the agent repairs or reports)."""
        raw = "".join(self.arguments).strip()
        try:
            args: Any = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            args = raw
        return FunctionCall(self.name, args, raw, self.id)


@dataclass
class StreamState:
    reason: StopReason | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    connected: bool = False  # the server accepted the request and started streaming
    server_stop_word: str | None = None  # the server cut at this stop word
    tool_calls: list[FunctionCall] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)


class Pump:
    """Runs the HTTP call and reads its stream in a worker thread.

    A blocked socket read cannot be interrupted from another thread, so the caller waits on
    a queue instead and can walk away the moment request.cancel is set (or it has seen a stop
    word). The worker then closes the connection at its next chunk, which makes the server
    stop generating, or at the read timeout if the server has gone silent.
    """

    def __init__(self, open_stream: Callable[[], Any], cancel: threading.Event):
        self._open, self._cancel = open_stream, cancel
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._abandoned = threading.Event()
        self.connected = False
        threading.Thread(target=self._work, name="openai-stream", daemon=True).start()

    def _work(self) -> None:
        try:
            response = self._open()
            try:
                if self._abandoned.is_set():  # cancelled while waiting for the headers
                    return
                self._queue.put(("open", None))
                for chunk in response:
                    if self._abandoned.is_set():
                        break
                    self._queue.put(("chunk", chunk))
            finally:
                response.close()
            self._queue.put(("end", None))
        except BaseException as exc:  # handed to the caller's thread
            self._queue.put(("error", exc))

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                try:
                    kind, value = self._queue.get(timeout=_CANCEL_POLL_S)
                except queue.Empty:
                    if self._cancel.is_set():
                        return
                    continue
                if kind == "open":
                    self.connected = True
                elif kind == "chunk":
                    yield value
                    if self._cancel.is_set():
                        return
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            self._abandoned.set()


def _reasoning(delta: Any) -> str:
    extra = getattr(delta, "model_extra", None) or {}
    for name in _REASONING_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def consume(
    chunks: Iterable[Any],
    request: GenerationRequest,
    filt: StopWordFilter,
    state: StreamState,
    base_url: str,
) -> Iterator[TextDelta | ThinkingDelta]:
    """Turn chunks into events, filling `state` (usage, calls, why it ended)."""
    calls: dict[int, ToolCallBuffer] = {}
    finish: str | None = None
    stop_reason: Any = None

    def flush_calls() -> None:
        for index in sorted(calls):
            state.tool_calls.append(calls.pop(index).as_call())

    def text(piece: str) -> Iterator[TextDelta]:
        out = filt.push(piece)
        if out:
            yield TextDelta(out)

    for chunk in chunks:
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            state.prompt_tokens = usage.prompt_tokens or 0
            state.completion_tokens = usage.completion_tokens or 0
            details = getattr(usage, "prompt_tokens_details", None)
            state.cached_tokens = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        for choice in chunk.choices or ():
            if hasattr(choice, "delta"):  # chat completion chunk
                delta = choice.delta
                if delta is not None and (thought := _reasoning(delta)):
                    state.thinking.append(thought)
                    yield ThinkingDelta(thought)
                if delta is not None and delta.content:
                    yield from text(delta.content)
                for tc in (delta.tool_calls if delta is not None else None) or ():
                    if tc.index not in calls:
                        flush_calls()  # a new call starts: earlier ones are done
                        calls[tc.index] = ToolCallBuffer()
                    buf = calls[tc.index]
                    buf.id = buf.id or (tc.id or "")
                    if tc.function is not None:
                        buf.name += tc.function.name or ""
                        if tc.function.arguments:
                            buf.arguments.append(tc.function.arguments)
            elif getattr(choice, "text", None):  # completion chunk
                yield from text(choice.text)
            if choice.finish_reason:
                finish = choice.finish_reason
                stop_reason = (choice.model_extra or {}).get("stop_reason")
            if filt.stop_word is not None:
                state.reason = StopReason.STOP_WORD
                return  # the pump then closes the connection: the server stops
    if finish is None and request.cancel.is_set():
        state.reason = StopReason.CANCELLED
        return
    flush_calls()
    if finish is None:
        state.reason = StopReason.ERROR
        shown = f" after {len(filt.text)} characters" if filt.text else ""
        state.error = (
            f"The model server at {base_url} closed the stream{shown} before the "
            "answer was finished."
        )
        return
    state.reason = finish_to_reason(finish, stop_reason, request)
    if state.reason is StopReason.STOP_WORD:
        state.server_stop_word = stop_reason


def finish_to_reason(finish: str, stop_reason: Any, request: GenerationRequest) -> StopReason:
    if finish == "length":
        return StopReason.LENGTH
    # vLLM and llm.serve report which stop string fired in the non-standard "stop_reason".
    if finish == "stop" and isinstance(stop_reason, str) and stop_reason in request.stop:
        return StopReason.STOP_WORD
    return StopReason.EOS
