"""The ASGI app: routes, auth, body limits, and answering whole or as server-sent events.

Streams use sse-starlette's EventSourceResponse with keep-alive pings (a comment every
`keepalive_s`), so clients' read timeouts do not fire while a request is queued behind
another generation or waits for a slow first token; it also notices a client that left,
which cancels the generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent

from llm.serve.errors import BadRequest, error_body, from_validation
from llm.serve.requests import ChatRequest, CompletionRequest, Sampling, ServeLimits
from llm.serve.responses import Shape, stream_payloads
from llm.serve.runner import Runner, first_event
from llm.types import ChatBackend, GenerationEnd, GenerationRequest, LLMEvent, StopReason


def create_app(
    backend: ChatBackend,
    *,
    served_model_name: str | None = None,
    api_key: str | None = None,
    max_concurrent: int = 1,
    keepalive_s: float = 5.0,
    limits: ServeLimits | None = None,
) -> FastAPI:
    """An ASGI app serving backend. api_key: require ``Authorization: Bearer KEY``.
    max_concurrent: generations run at once (1 for a local model; more for thread-safe ones).
    keepalive_s: streamed responses get an SSE comment this often. limits: what one request
    may ask for (body size, max_tokens, stop strings)."""
    model_id = served_model_name or backend.info.name
    aliases = {model_id, backend.info.name, backend.info.source} - {""}
    limits = limits or ServeLimits()
    runner = Runner(backend, max_concurrent)
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

    async def parse(request: Request, kind: type[Sampling]) -> Any:
        raw = await read_limited(request, limits.max_body_bytes)
        try:
            body = kind.model_validate_json(raw)
        except ValidationError as exc:
            raise from_validation(exc) from None
        if body.model not in aliases:
            raise BadRequest(
                f"The model `{body.model}` does not exist. This server serves `{model_id}`.",
                status=404,
                param="model",
            )
        return body

    supports_constraints = backend.info.supports_constraints

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        body: ChatRequest = await parse(request, ChatRequest)
        gen = body.generation(limits, supports_constraints)
        shape = Shape("chatcmpl-" + uuid.uuid4().hex, model_id, chat=True)
        return await respond(gen, body, shape, body.parse_tools)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body: CompletionRequest = await parse(request, CompletionRequest)
        gen = body.generation(limits, supports_constraints)
        shape = Shape("cmpl-" + uuid.uuid4().hex, model_id, chat=False)
        return await respond(gen, body, shape, parse_tools=False)

    async def respond(gen: GenerationRequest, body: Sampling, shape: Shape, parse_tools: bool):
        if body.stream:
            events = runner.events(gen)
            # Wait briefly for the first event so a model that fails at once gets a real HTTP
            # 500; a queued or slow request starts streaming (with pings) instead.
            first, pending = await first_event(events, keepalive_s)
            if isinstance(first, GenerationEnd) and first.reason is StopReason.ERROR:
                await events.aclose()
                return JSONResponse(error_body(first.error or "generation failed", 500), 500)
            payloads = stream_payloads(
                _resume(first, pending, events), shape, parse_tools, body.include_usage
            )
            return EventSourceResponse(
                payloads,
                ping=keepalive_s,
                sep="\n",
                ping_message_factory=lambda: ServerSentEvent(comment="keep-alive", sep="\n"),
            )
        end: GenerationEnd | None = None
        async for event in runner.events(gen):
            if isinstance(event, GenerationEnd):
                end = event
        if end is None or end.reason is StopReason.ERROR:
            msg = end.error if end and end.error else "generation ended without a result"
            return JSONResponse(error_body(msg, 500), 500)
        return JSONResponse(shape.whole(end, parse_tools))

    return app


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""

    def too_large(size: str) -> BadRequest:
        return BadRequest(
            f"the request body is {size} bytes; this server takes at most {limit} "
            "(llm.serve --max-body-mb)",
            status=413,
        )

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(declared)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"more than {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


async def _resume(
    first: LLMEvent | None,
    pending: asyncio.Future[LLMEvent] | None,
    events: AsyncGenerator[LLMEvent, None],
) -> AsyncIterator[LLMEvent]:
    """The events of a stream whose first event was awaited (or is still pending)."""
    try:
        if pending is not None:
            try:
                first = await pending
            except StopAsyncIteration:
                return
        if first is not None:
            yield first
        async for event in events:
            yield event
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        await events.aclose()
