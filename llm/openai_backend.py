"""A ChatBackend that talks to an OpenAI-compatible server (vLLM, llm.serve, llama.cpp, ...).

This is the scale-out path: the weights live on a GPU server, the demo only streams. Two
endpoints are used:

- ``/v1/chat/completions`` for ordinary turns (the server applies the model's chat template,
  ``tools`` are passed through for native function calling);
- ``/v1/completions`` for ``continue_final`` requests (ReAct steps that continue an unfinished
  assistant turn): the prompt is rendered here as ChatML with ``llm.chatml.render_chatml``,
  which every Qwen chat model (v1 and 2.x) understands. This works on any server with a
  completions endpoint, unlike vLLM's ``continue_final_message`` extra, which other servers
  silently ignore (the model would then start a new turn instead of continuing).

Native tool calls come back as ``tool_calls`` deltas where the server parses them (vLLM with
``--tool-call-parser hermes``, llm.serve); they are turned back into the
``<tool_call>\\n{json}\\n</tool_call>`` text that Qwen models write, so the agent parses one
format whichever server answered. Stop words are sent as ``stop`` and enforced again here,
because servers differ in how they cut multi-token stop words.

No exception escapes ``stream``: connection errors, timeouts and HTTP errors end the stream
with ``GenerationEnd(reason=ERROR, error=...)``. One client is shared by all threads; every
request has its own HTTP stream, so the UI may run several sessions at once.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import openai

from llm.chatml import render_chatml
from llm.errors import OpenAIServerError
from llm.stopwords import StopWordFilter
from llm.types import (
    CHATML_STOP_WORDS,
    FunctionCall,
    GenerationEnd,
    GenerationRequest,
    LLMEvent,
    ModelInfo,
    PromptFamily,
    StopReason,
    TextDelta,
)

# Qwen v1 chat models: "Qwen-7B-Chat", "Qwen/Qwen-14B-Chat-Int4" (not Qwen1.5 / Qwen2 / Qwen3).
_QWEN1_NAME = re.compile(r"(^|/)qwen-\d+(\.\d+)?b", re.IGNORECASE)
_CANCEL_POLL_S = 0.05
# <|endoftext|>, <|im_start|>, <|im_end|> in every Qwen vocabulary (v1 and 2.x).
QWEN_CHATML_TOKEN_IDS = (151643, 151644, 151645)


def guess_family(model: str) -> PromptFamily:
    """Qwen v1 names (Qwen-7B-Chat, Qwen-14B-Chat-Int4) are qwen1; everything else qwen2."""
    return "qwen1" if _QWEN1_NAME.search(model) else "qwen2"


def describe_error(exc: BaseException, base_url: str, timeout: float | None = None) -> str:
    """One clear sentence for the UI about what went wrong with the server."""
    if isinstance(exc, openai.APITimeoutError):
        limit = f" after {timeout:g} s" if timeout else ""
        return f"The model server at {base_url} did not answer{limit} (timeout)."
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {cause}" if cause else ""
        return f"Cannot connect to the model server at {base_url}{detail}."
    if isinstance(exc, openai.APIStatusError):
        msg = _status_message(exc)
        hint = {
            401: " Check the API key (--api-key / OPENAI_API_KEY).",
            403: " The API key is not allowed to use this model.",
            404: " Check the base URL (it usually ends in /v1) and the model name.",
            429: " The server is overloaded; try again shortly.",
        }.get(exc.status_code, "")
        return f"The model server at {base_url} answered HTTP {exc.status_code}: {msg}.{hint}"
    if isinstance(exc, openai.APIError):
        return f"The model server at {base_url} reported an error: {exc.message}"
    return f"Unexpected error talking to {base_url}: {type(exc).__name__}: {exc}"


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"]).rstrip(".")
        if isinstance(err, str):
            return err.rstrip(".")
        if body.get("detail"):
            return str(body["detail"]).rstrip(".")
    text = (exc.response.text or "").strip() if exc.response is not None else ""
    return (text[:300] or exc.message).rstrip(".")


def _client(base_url: str, api_key: str, timeout: float, max_retries: int) -> openai.OpenAI:
    # Local servers often need no key, but the client insists on one.
    return openai.OpenAI(
        base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout, max_retries=max_retries
    )


def list_models(base_url: str, api_key: str = "", timeout: float = 10.0) -> list[str]:
    """Model ids served at base_url (GET /v1/models). Raises OpenAIServerError with a clear
    message when the server cannot be reached or refuses."""
    client = _client(base_url, api_key, timeout, max_retries=0)
    try:
        return [m.id for m in client.models.list()]
    except openai.OpenAIError as exc:
        raise OpenAIServerError(describe_error(exc, base_url, timeout)) from exc
    finally:
        client.close()


@dataclass
class _ToolCallBuffer:
    """Streamed tool_calls deltas of one call, accumulated by index."""

    name: str = ""
    id: str = ""
    arguments: list[str] = field(default_factory=list)

    def as_call(self) -> FunctionCall:
        """The call as a structure: the agent gets it as a call, never as text to re-parse.
        Arguments that are not JSON are kept as written (the agent repairs or reports them)."""
        raw = "".join(self.arguments).strip()
        try:
            args: Any = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            args = raw
        return FunctionCall(self.name, args, raw, self.id)


class _Pump:
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


class OpenAIBackend:
    """ChatBackend over an OpenAI-compatible HTTP API. Thread-safe: one client, one HTTP
    stream per request."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        family: PromptFamily | None = None,
        timeout: float = 60,
        *,
        max_retries: int = 1,
        extra_body: dict[str, Any] | None = None,
    ):
        if not base_url or not urlsplit(base_url).scheme.startswith("http"):
            raise ValueError(f"base URL must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("a model name is required (see GET /v1/models on the server)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.extra_body = dict(extra_body or {})
        self._client = _client(self.base_url, api_key, self.timeout, max_retries)
        family = family or guess_family(model)
        self.info = ModelInfo(
            name=f"{model} @ {urlsplit(self.base_url).netloc}",
            family=family,
            backend="openai",
            device="remote",
            supports_native_tools=family == "qwen2",
            source=self.base_url,
        )

    def render(self, request: GenerationRequest) -> str:
        """The prompt as ChatML. Exact for continue_final requests (sent as raw text); for chat
        requests the server applies the model's own template, which for Qwen is this ChatML."""
        return render_chatml(request.messages, request.tools, request.continue_final)

    def close(self) -> None:
        self._client.close()

    def stream(self, request: GenerationRequest) -> Iterator[LLMEvent]:
        start = time.perf_counter()
        filt = StopWordFilter([*request.stop, *CHATML_STOP_WORDS])
        state = _StreamState()
        try:
            if request.cancel.is_set():
                state.reason = StopReason.CANCELLED
            else:
                yield from self._run(request, filt, state)
        except Exception as exc:  # every failure becomes an ERROR end
            if request.cancel.is_set():
                state.reason = StopReason.CANCELLED
            else:
                state.reason = StopReason.ERROR
                state.error = describe_error(exc, self.base_url, self.timeout)
                if state.connected and type(exc) is openai.APIConnectionError:
                    cause = exc.__cause__ or exc
                    state.error = (
                        f"The connection to the model server at {self.base_url} broke during "
                        f"the answer ({type(cause).__name__}: {cause})."
                    )
        if filt.stop_word is None and state.reason is not StopReason.ERROR:
            tail = filt.finish()
            if tail:
                yield TextDelta(tail)
        if filt.stop_word is not None and state.reason is not StopReason.ERROR:
            state.reason = StopReason.STOP_WORD
        yield GenerationEnd(
            filt.text,
            state.reason or StopReason.EOS,
            stop_word=filt.stop_word or state.server_stop_word,
            prompt_tokens=state.prompt_tokens,
            completion_tokens=state.completion_tokens,
            cached_tokens=state.cached_tokens,
            seconds=time.perf_counter() - start,
            error=state.error,
            tool_calls=tuple(state.tool_calls),
        )

    # -- one HTTP call -----------------------------------------------------------------------

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        cfg = request.config
        stop = list(dict.fromkeys([*request.stop, *CHATML_STOP_WORDS]))
        params: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": cfg.max_new_tokens,
            "temperature": max(cfg.temperature, 0.0),
            "stop": stop,
        }
        if not cfg.greedy:
            params["top_p"] = cfg.top_p
        if cfg.seed is not None:
            params["seed"] = cfg.seed
        # vLLM / llm.serve extras; other servers ignore unknown fields.
        extra = {"repetition_penalty": cfg.repetition_penalty, **self.extra_body}
        if self.info.family == "qwen1":
            # v1's EOS is <|endoftext|> only, and vLLM matches stop strings after dropping
            # special tokens, so "<|im_end|>" in `stop` alone may never fire there.
            extra.setdefault("stop_token_ids", list(QWEN_CHATML_TOKEN_IDS))
        if not cfg.greedy and cfg.top_k > 0:
            extra.setdefault("top_k", cfg.top_k)
        params["extra_body"] = extra
        return params

    def _run(
        self, request: GenerationRequest, filt: StopWordFilter, state: _StreamState
    ) -> Iterator[TextDelta]:
        params = self._params(request)

        def open_stream() -> Any:
            if request.continue_final:
                prompt = render_chatml(request.messages, request.tools, continue_final=True)
                return self._client.completions.create(prompt=prompt, **params)
            tools = {"tools": request.tools} if request.tools else {}
            return self._client.chat.completions.create(
                messages=request.messages, **params, **tools
            )

        pump = _Pump(open_stream, request.cancel)
        try:
            yield from self._consume(pump, request, filt, state)
        finally:
            state.connected = pump.connected

    def _consume(
        self,
        chunks: Iterable[Any],
        request: GenerationRequest,
        filt: StopWordFilter,
        state: _StreamState,
    ) -> Iterator[TextDelta]:
        calls: dict[int, _ToolCallBuffer] = {}
        finish: str | None = None
        stop_reason: Any = None

        def push(text: str) -> Iterator[TextDelta]:
            state.raw_tail = (state.raw_tail + text)[-1:]
            out = filt.push(text)
            if out:
                yield TextDelta(out)

        def flush_calls() -> Iterator[TextDelta]:
            for index in sorted(calls):
                state.tool_calls.append(calls.pop(index).as_call())
            yield from ()

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
                    if delta is not None and delta.content:
                        yield from push(delta.content)
                    for tc in (delta.tool_calls if delta is not None else None) or ():
                        if tc.index not in calls:
                            yield from flush_calls()  # a new call starts: earlier ones are done
                            calls[tc.index] = _ToolCallBuffer()
                        buf = calls[tc.index]
                        buf.id = buf.id or (tc.id or "")
                        if tc.function is not None:
                            buf.name += tc.function.name or ""
                            if tc.function.arguments:
                                buf.arguments.append(tc.function.arguments)
                elif getattr(choice, "text", None):  # completion chunk
                    yield from push(choice.text)
                if choice.finish_reason:
                    finish = choice.finish_reason
                    stop_reason = (choice.model_extra or {}).get("stop_reason")
                if filt.stop_word is not None:
                    state.reason = StopReason.STOP_WORD
                    return  # the pump then closes the connection: the server stops
        if finish is None and request.cancel.is_set():
            state.reason = StopReason.CANCELLED
            return
        yield from flush_calls()
        if finish is None:
            state.reason = StopReason.ERROR
            shown = f" after {len(filt.text)} characters" if filt.text else ""
            state.error = (
                f"The model server at {self.base_url} closed the stream{shown} before the "
                "answer was finished."
            )
            return
        state.reason = _finish_to_reason(finish, stop_reason, request)
        if state.reason is StopReason.STOP_WORD:
            state.server_stop_word = stop_reason


@dataclass
class _StreamState:
    reason: StopReason | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    connected: bool = False  # the server accepted the request and started streaming
    server_stop_word: str | None = None  # the server cut at this stop word
    raw_tail: str = ""  # last raw character seen
    tool_calls: list[FunctionCall] = field(default_factory=list)


def _finish_to_reason(finish: str, stop_reason: Any, request: GenerationRequest) -> StopReason:
    if finish == "length":
        return StopReason.LENGTH
    # vLLM and llm.serve report which stop string fired in the non-standard "stop_reason".
    if finish == "stop" and isinstance(stop_reason, str) and stop_reason in request.stop:
        return StopReason.STOP_WORD
    return StopReason.EOS
