"""A ChatBackend that talks to an OpenAI-compatible server (vLLM, llm.serve, llama.cpp, ...).

This is the scale-out path: the weights live on a GPU server, the demo only streams.
Every request goes to ``/v1/chat/completions`` as chat messages; the server applies the
model's chat template and ``tools`` are passed through for native function calling.
ReAct steps that continue an unfinished assistant message (``continue_final``) send vLLM's
``continue_final_message: true, add_generation_prompt: false`` (llm.serve and SGLang take
the same fields). For servers without them (llama.cpp's ``llama_cpp.server``)
``continuation="completions"`` renders the prompt here as ChatML and sends it to
``/v1/completions`` instead.

Message text never becomes control tokens: `<|im_start|>`-style markers in it are escaped
(llm.openai_wire), since most servers tokenise the rendered template with special tokens on.
Native tool calls come back as structures (llm.openai_stream); thinking (`reasoning_content`
/ `reasoning`) as ThinkingDelta; ``GenerationRequest.thinking`` is sent as vLLM's
``chat_template_kwargs: {"enable_thinking": ...}``.

No exception escapes ``stream``: connection errors, timeouts and HTTP errors end the stream
with ``GenerationEnd(reason=ERROR, error=...)``. One client is shared by all threads; every
request has its own HTTP stream, so the UI may run several sessions at once.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urlsplit

import openai

from llm.constrain.wire import REFUSED_STATUS, Sent, refused_note, response_format, structure_seen
from llm.errors import OpenAIServerError
from llm.openai_stream import Pump, StreamState, consume
from llm.openai_wire import (
    completion_prompt,
    describe_error,
    outgoing_messages,
    request_params,
)
from llm.stopwords import StopWordFilter
from llm.types import (
    CHATML_STOP_WORDS,
    GenerationEnd,
    GenerationRequest,
    LLMEvent,
    ModelInfo,
    PromptFamily,
    StopReason,
    TextDelta,
    ThinkingDelta,
)

# Qwen v1 chat models: "Qwen-7B-Chat", "Qwen/Qwen-14B-Chat-Int4" (not Qwen1.5 / Qwen2 / Qwen3).
_QWEN1_NAME = re.compile(r"(^|/)qwen-\d+(\.\d+)?b", re.IGNORECASE)
_QWEN3_NAME = re.compile(r"qwen3", re.IGNORECASE)
# Models that think before they answer: Qwen3 (not its -Instruct releases), QwQ, R1 distills.
_THINKING_NAME = re.compile(r"qwen3(?!.*instruct)|qwq|deepseek-r1", re.IGNORECASE)

Continuation = Literal["chat", "completions"]


def guess_family(model: str) -> PromptFamily:
    """Qwen v1 names (Qwen-7B-Chat, Qwen-14B-Chat-Int4) are qwen1, Qwen3 names qwen3,
    everything else qwen2 (<tool_call> function calling)."""
    if _QWEN1_NAME.search(model):
        return "qwen1"
    return "qwen3" if _QWEN3_NAME.search(model) else "qwen2"


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


class OpenAIBackend:
    """ChatBackend over an OpenAI-compatible HTTP API. Thread-safe: one client, one HTTP
    stream per request.

    continuation: how continue_final requests travel ("chat": continue_final_message on the
    chat endpoint; "completions": a ChatML prompt rendered here). escape_control_tokens:
    escape `<|...|>` markers in message text (off only for a server known to tokenise
    message text as text, such as llm.serve). constraints: send GenerationRequest.constraint
    as `response_format` (llm.constrain.wire); a server that refuses it turns it off.
    """

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
        continuation: Continuation = "chat",
        escape_control_tokens: bool = True,
        constraints: bool = True,
    ):
        if not base_url or not urlsplit(base_url).scheme.startswith("http"):
            raise ValueError(f"base URL must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("a model name is required (see GET /v1/models on the server)")
        if continuation not in ("chat", "completions"):
            raise ValueError(f"continuation must be 'chat' or 'completions', not {continuation!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.extra_body = dict(extra_body or {})
        self.continuation = continuation
        self.escape_control_tokens = escape_control_tokens
        self._client = _client(self.base_url, api_key, self.timeout, max_retries)
        family = family or guess_family(model)
        self.info = ModelInfo(
            name=f"{model} @ {urlsplit(self.base_url).netloc}",
            family=family,
            backend="openai",
            device="remote",
            supports_native_tools=family in ("qwen2", "qwen3"),
            source=self.base_url,
            thinking=bool(_THINKING_NAME.search(model)),
            supports_constraints=constraints,
        )

    def _via_completions(self, request: GenerationRequest) -> bool:
        return request.continue_final and self.continuation == "completions"

    def render(self, request: GenerationRequest) -> str:
        """The prompt as ChatML, with message text as sent. Exact for requests sent as raw
        text; for chat requests the server applies the model's own template, which for Qwen
        is this ChatML."""
        return completion_prompt(request, self.escape_control_tokens)

    def close(self) -> None:
        self._client.close()

    def stream(self, request: GenerationRequest) -> Iterator[LLMEvent]:
        start = time.perf_counter()
        filt = StopWordFilter([*request.stop, *CHATML_STOP_WORDS])
        state = StreamState()
        sent = Sent()
        try:
            if request.cancel.is_set():
                state.reason = StopReason.CANCELLED
            else:
                yield from self._run(request, filt, state, sent)
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
            thinking="".join(state.thinking),
            constrained=bool(sent.constraint)
            and structure_seen(sent.constraint, filt.text, state.tool_calls),
            notes=tuple(sent.notes),
        )

    def _refuse_constraints(self, sent: Sent, note: str) -> None:
        if note not in sent.notes:
            sent.notes.append(note)
            self.info = dataclasses.replace(self.info, supports_constraints=False)

    def _run(
        self, request: GenerationRequest, filt: StopWordFilter, state: StreamState, sent: Sent
    ) -> Iterator[TextDelta | ThinkingDelta]:
        raw = self._via_completions(request)
        params: dict[str, Any] = request_params(
            request, self.model, self.info.family, self.extra_body, chat=not raw
        )
        if request.constraint is not None and self.info.supports_constraints:
            sent.constraint = request.constraint
            params["extra_body"]["response_format"] = response_format(request.constraint)

        def open_stream() -> Any:
            escape = self.escape_control_tokens
            if raw:
                prompt = completion_prompt(request, escape)
                return self._client.completions.create(prompt=prompt, **params)
            body = {**params, "messages": outgoing_messages(request.messages, escape)}
            if request.tools:
                body["tools"] = request.tools
            return self._client.chat.completions.create(**body)

        pump = Pump(open_stream, request.cancel)
        try:
            try:
                yield from consume(pump, request, filt, state, self.base_url)
            except openai.APIStatusError as exc:
                if not sent.constraint or not _refuses_constraint(exc):
                    raise
                # refused before any text: the same request again without it; once the
                # server takes that, the constraint was the problem and stays off
                sent.constraint = None
                params["extra_body"].pop("response_format")
                pump = Pump(open_stream, request.cancel)
                refused = refused_note(self.base_url, describe_error(exc, self.base_url))
                for item in consume(pump, request, filt, state, self.base_url):
                    self._refuse_constraints(sent, refused)
                    yield item
                if pump.connected:
                    self._refuse_constraints(sent, refused)
        finally:
            state.connected = pump.connected


def _refuses_constraint(exc: openai.APIStatusError) -> bool:
    """The server refused the request because of its response_format: a 400/422, or a 500
    whose message names the field (llama_cpp.server answers a validation error that way)."""
    if exc.status_code in REFUSED_STATUS:
        return True
    return exc.status_code >= 500 and "response_format" in str(exc)
