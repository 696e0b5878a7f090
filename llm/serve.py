"""An OpenAI-compatible HTTP server for any ChatBackend: ``python -m llm.serve --model SOURCE``.

It lets one machine with the weights serve many demo front-ends (or any OpenAI client):
GET /v1/models, POST /v1/chat/completions and POST /v1/completions, streamed as server-sent
events or answered whole. Generations to one backend are serialised (a local model runs one
at a time); a client that disconnects cancels its generation.

Native tool calls: when a request carries ``tools``, ``<tool_call>{json}</tool_call>`` blocks
in the generated text are parsed into OpenAI ``tool_calls`` (as vLLM's hermes parser does),
streamed or not, and ``finish_reason`` is ``"tool_calls"``.

/v1/completions takes raw text, which a ChatBackend cannot: a ChatML prompt is parsed back
into messages (an open assistant turn at the end becomes a ``continue_final`` message), so a
prompt rendered by llm.chatml round-trips exactly. Any other text is continued as an unfinished
assistant message, i.e. wrapped in ChatML: there is no "bare" completion.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from llm.toolcalls.hermes import ToolCallStream, split_tool_calls, to_openai
from llm.types import (
    ChatBackend,
    FunctionCall,
    GenerationConfig,
    GenerationEnd,
    GenerationRequest,
    LLMEvent,
    Message,
    StopReason,
    TextDelta,
)

_DEFAULTS = GenerationConfig()


class BadRequest(ValueError):
    """A client error; answered as HTTP 400 (or the given status) in OpenAI's error format."""

    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


def error_body(message: str, status: int, param: str | None = None) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
    }.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


# -- ChatML prompts for /v1/completions ----------------------------------------------------

_IM_START, _IM_END = "<|im_start|>", "<|im_end|>"
_ROLE = re.compile(r"(system|user|assistant)\n")


def chatml_to_messages(prompt: str) -> tuple[list[Message], bool]:
    """Parse a ChatML prompt into (messages, continue_final).

    An open assistant turn at the end is continued; a prompt ending in a closed turn gets a
    new assistant turn. Text that is not ChatML becomes an assistant message to continue.
    """
    fallback: tuple[list[Message], bool] = ([{"role": "assistant", "content": prompt}], True)
    head, *turns = prompt.split(_IM_START)
    if head.strip() or not turns:
        return fallback
    messages: list[Message] = []
    for i, turn in enumerate(turns):
        m = _ROLE.match(turn)
        if m is None:
            return fallback
        role, body = m.group(1), turn[m.end() :]
        last = i == len(turns) - 1
        if body.endswith(_IM_END + "\n"):
            body = body[: -len(_IM_END) - 1]
        elif last and body.endswith(_IM_END):
            body = body[: -len(_IM_END)]
        elif last and role == "assistant":
            messages.append({"role": role, "content": body})
            return messages, True
        else:
            return fallback
        if _IM_END in body:
            return fallback
        messages.append({"role": role, "content": body})
    return messages, False


# -- request parsing -----------------------------------------------------------------------


def _text_content(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                raise BadRequest(f"{where}: only text content parts are supported", param=where)
        return "".join(parts)
    raise BadRequest(f"{where}: content must be a string or a list of text parts", param=where)


def _messages(raw: Any) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'messages' must be a non-empty list", param="messages")
    out: list[Message] = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
            raise BadRequest(f"{where}: role must be system, user, assistant or tool", param=where)
        msg: Message = {"role": m["role"], "content": _text_content(m.get("content"), where)}
        if m.get("tool_calls"):
            msg["tool_calls"] = m["tool_calls"]
        for key in ("name", "tool_call_id"):
            if m.get(key):
                msg[key] = m[key]
        out.append(msg)
    return out


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise BadRequest(f"'{key}' must be a number between {lo:g} and {hi:g}", param=key)
    return float(value)


def _config(body: dict[str, Any]) -> GenerationConfig:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = _DEFAULTS.max_new_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("'max_tokens' must be a positive integer", param="max_tokens")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest("'seed' must be an integer", param="seed")
    return GenerationConfig(
        max_new_tokens=max_tokens,
        temperature=_number(body, "temperature", _DEFAULTS.temperature, 0, 2),
        top_p=_number(body, "top_p", _DEFAULTS.top_p, 0, 1) or _DEFAULTS.top_p,
        top_k=int(_number(body, "top_k", _DEFAULTS.top_k, -1, 1e9)),
        repetition_penalty=_number(
            body, "repetition_penalty", _DEFAULTS.repetition_penalty, 0.01, 10
        ),
        seed=seed,
    )


def _stop(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return [s for s in stop if s]
    raise BadRequest("'stop' must be a string or a list of strings", param="stop")


def _common(body: dict[str, Any]) -> None:
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported", param="n")


# -- running a backend from asyncio ---------------------------------------------------------


class _Runner:
    """Runs backend.stream in a worker thread, at most `limit` at a time, and hands the events
    to the event loop. Cancelling the request (client gone) stops the generation."""

    def __init__(self, backend: ChatBackend, limit: int):
        self.backend = backend
        self._slots = threading.BoundedSemaphore(limit)

    async def events(self, request: GenerationRequest) -> AsyncIterator[LLMEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[LLMEvent | None] = asyncio.Queue()

        def put(item: LLMEvent | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (server shutting down)
                request.cancel.set()

        def work() -> None:
            try:
                with self._slots:
                    if request.cancel.is_set():
                        put(GenerationEnd("", StopReason.CANCELLED))
                        return
                    try:
                        for event in self.backend.stream(request):
                            put(event)
                    except Exception as exc:  # a backend must not raise; report it if it does
                        error = f"{type(exc).__name__}: {exc}"
                        put(GenerationEnd("", StopReason.ERROR, error=error))
            finally:
                put(None)

        threading.Thread(target=work, name="llm-serve-generate", daemon=True).start()
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            request.cancel.set()  # harmless when finished; stops the model when the client left


def _usage(end: GenerationEnd | None) -> dict[str, Any]:
    p = end.prompt_tokens if end else 0
    c = end.completion_tokens if end else 0
    usage: dict[str, Any] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    if end is not None and end.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": end.cached_tokens}
    return usage


def _finish_reason(end: GenerationEnd, has_calls: bool) -> str:
    if has_calls:
        return "tool_calls"
    return "length" if end.reason is StopReason.LENGTH else "stop"


def _sse(data: dict[str, Any] | str) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n"


# -- the app -------------------------------------------------------------------------------


def create_app(
    backend: ChatBackend,
    *,
    served_model_name: str | None = None,
    api_key: str | None = None,
    max_concurrent: int = 1,
    keepalive_s: float = 5.0,
) -> FastAPI:
    """An ASGI app serving backend. api_key: require ``Authorization: Bearer KEY``.
    max_concurrent: generations run at once (1 for a local model; more for thread-safe ones).
    keepalive_s: a streamed request with no event for this long gets an SSE comment."""
    model_id = served_model_name or backend.info.name
    aliases = {model_id, backend.info.name, backend.info.source} - {""}
    runner = _Runner(backend, max(1, max_concurrent))
    created = int(time.time())
    app = FastAPI(title="Qwen demo OpenAI-compatible server", docs_url=None, redoc_url=None)
    app.state.backend = backend

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return JSONResponse(error_body("Invalid or missing API key.", 401), 401)
        return await call_next(request)

    @app.exception_handler(BadRequest)
    async def _bad_request(_: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse(error_body(str(exc), exc.status, exc.param), exc.status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {"id": model_id, "object": "model", "created": created, "owned_by": "qwen-demo"}
        return {"object": "list", "data": [card]}

    async def read_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        model = body.get("model")
        if model not in aliases:
            raise BadRequest(
                f"The model `{model}` does not exist. This server serves `{model_id}`.",
                status=404,
                param="model",
            )
        _common(body)
        return body

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        body = await read_body(request)
        tools = body.get("tools") or None
        if tools is not None and not isinstance(tools, list):
            raise BadRequest("'tools' must be a list", param="tools")
        if body.get("tool_choice") == "none":
            tools_parsed = False
        else:
            tools_parsed = bool(tools)
        gen = GenerationRequest(
            messages=_messages(body.get("messages")),
            stop=_stop(body),
            tools=tools,
            continue_final=bool(body.get("continue_final_message", False)),
            config=_config(body),
        )
        if gen.continue_final and gen.messages[-1]["role"] != "assistant":
            raise BadRequest(
                "continue_final_message needs an assistant message last", param="messages"
            )
        return await _respond(
            runner,
            gen,
            body,
            model_id,
            chat=True,
            parse_tools=tools_parsed,
            keepalive_s=keepalive_s,
        )

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await read_body(request)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise BadRequest("'prompt' must be one string", param="prompt")
        if body.get("echo"):
            raise BadRequest("echo is not supported", param="echo")
        messages, continue_final = chatml_to_messages(prompt)
        gen = GenerationRequest(
            messages=messages,
            stop=_stop(body),
            continue_final=continue_final,
            config=_config(body),
        )
        return await _respond(
            runner, gen, body, model_id, chat=False, parse_tools=False, keepalive_s=keepalive_s
        )

    return app


async def _respond(
    runner: _Runner,
    gen: GenerationRequest,
    body: dict[str, Any],
    model_id: str,
    *,
    chat: bool,
    parse_tools: bool,
    keepalive_s: float,
) -> Any:
    ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
    shape = _Shape(ident, model_id, chat)
    if body.get("stream"):
        events = _paced(runner.events(gen), keepalive_s)
        # Wait briefly for the first event so a model that fails at once gets a real HTTP
        # 500; a queued or slow request starts streaming (keep-alive comments) instead.
        first = await events.__anext__()
        if isinstance(first, GenerationEnd) and first.reason is StopReason.ERROR:
            await events.aclose()
            return JSONResponse(error_body(first.error or "generation failed", 500), 500)
        opts = body.get("stream_options") or {}
        usage = bool(opts.get("include_usage")) if isinstance(opts, dict) else False
        stream = _stream_body(first, events, shape, parse_tools, usage)
        return StreamingResponse(stream, media_type="text/event-stream")
    end: GenerationEnd | None = None
    async for event in runner.events(gen):
        if isinstance(event, GenerationEnd):
            end = event
    if end is None or end.reason is StopReason.ERROR:
        msg = end.error if end and end.error else "generation ended without a result"
        return JSONResponse(error_body(msg, 500), 500)
    return JSONResponse(shape.whole(end.text, end, parse_tools))


@dataclass(frozen=True)
class _Shape:
    """Builds response objects for chat (chat.completion) or text (text_completion)."""

    ident: str
    model: str
    chat: bool

    def _base(self, chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion" if self.chat else "text_completion") + (
            ".chunk" if chunk and self.chat else ""
        )
        return {"id": self.ident, "object": kind, "created": int(time.time()), "model": self.model}

    def whole(self, text: str, end: GenerationEnd, parse_tools: bool) -> dict[str, Any]:
        calls: list[FunctionCall] = []
        if parse_tools:
            text, calls = split_tool_calls(text)
        choice: dict[str, Any] = {
            "index": 0,
            "finish_reason": _finish_reason(end, bool(calls)),
            "stop_reason": end.stop_word,
            "logprobs": None,
        }
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = [to_openai(c) for c in calls]
            choice["message"] = message
        else:
            choice["text"] = text
        return {**self._base(False), "choices": [choice], "usage": _usage(end)}

    def chunk(self, delta: dict[str, Any] | str, finish: str | None = None, **extra: Any) -> str:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None, **extra}
        if self.chat:
            choice["delta"] = delta
        else:
            choice["text"] = delta
        return _sse({**self._base(True), "choices": [choice]})

    def usage_chunk(self, end: GenerationEnd | None) -> str:
        return _sse({**self._base(True), "choices": [], "usage": _usage(end)})


async def _paced(
    events: AsyncIterator[LLMEvent], interval: float
) -> AsyncIterator[LLMEvent | None]:
    """events, with None whenever `interval` seconds pass without one (time for a keep-alive,
    so clients' read timeouts do not fire while a request waits for the model)."""
    pending: asyncio.Future[LLMEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            task, pending = pending, None
            try:
                yield task.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await events.aclose()


async def _stream_body(
    first: LLMEvent | None,
    events: AsyncIterator[LLMEvent | None],
    shape: _Shape,
    parse_tools: bool,
    include_usage: bool,
) -> AsyncIterator[str]:
    parser = ToolCallStream() if parse_tools else None
    end: GenerationEnd | None = None
    try:
        if shape.chat:
            yield shape.chunk({"role": "assistant", "content": ""})

        async def all_events() -> AsyncIterator[LLMEvent | None]:
            yield first
            async for event in events:
                yield event

        async for event in all_events():
            if event is None:
                yield ": keep-alive\n\n"
            elif isinstance(event, TextDelta):
                items = parser.push(event.text) if parser else [event.text]
                for piece in _stream_items(items, shape, parser):
                    yield piece
            elif isinstance(event, GenerationEnd):
                end = event
        if end is not None and end.reason is StopReason.ERROR:
            yield _sse(error_body(end.error or "generation failed", 500))
            return
        if parser is not None:
            for piece in _stream_items(parser.finish(), shape, parser):
                yield piece
        if end is not None:
            has_calls = bool(parser and parser.calls)
            finish = _finish_reason(end, has_calls)
            yield shape.chunk({} if shape.chat else "", finish, stop_reason=end.stop_word)
        if include_usage:
            yield shape.usage_chunk(end)
        yield _sse("[DONE]")
    finally:
        await events.aclose()


def _stream_items(
    items: list[str | FunctionCall], shape: _Shape, parser: ToolCallStream | None
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


# -- running it -----------------------------------------------------------------------------


class ServerThread:
    """Runs an app with uvicorn in a background thread (tests, or serving beside the UI).

    port=0 picks a free port; ``url`` is the OpenAI base URL (ending in /v1)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 20.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.host}:{self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def open_backend(source: str, device: str = "auto") -> ChatBackend:
    """Load a backend the way the demo does (llm.sources); scripted:PATH works without it."""
    try:
        from llm.sources import open_backend as _open
    except ImportError:
        _open = None
    if _open is not None:
        return _open(source, device=device)
    if source.startswith("scripted:"):
        from llm.scripted import ScriptedBackend

        return ScriptedBackend.from_file(source.removeprefix("scripted:"))
    raise ValueError(f"cannot open {source!r}: llm.sources is not available; use scripted:PATH")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m llm.serve", description="Serve a model over an OpenAI-compatible API."
    )
    parser.add_argument("--model", required=True, help="model source: hub id, dir, scripted:PATH")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", help="model id clients use (default: its name)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LLM_SERVE_API_KEY"),
        help="require this bearer key (env LLM_SERVE_API_KEY)",
    )
    parser.add_argument(
        "--max-concurrent", type=int, default=1, help="generations at once (1 for a local model)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import uvicorn

    try:
        backend = open_backend(args.model, device=args.device)
    except Exception as exc:  # a bad source is the user's input: say why, no traceback
        raise SystemExit(f"llm.serve: cannot load {args.model!r}: {exc}") from exc
    app = create_app(
        backend,
        served_model_name=args.served_model_name,
        api_key=args.api_key,
        max_concurrent=args.max_concurrent,
    )
    name = args.served_model_name or backend.info.name
    print(f"Serving {name!r} at http://{args.host}:{args.port}/v1", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        backend.close()


if __name__ == "__main__":
    main()
