"""Running a blocking ChatBackend from asyncio.

backend.stream runs in a worker thread, at most `limit` at a time (a local model runs one
generation at once; others queue), and its events are handed to the event loop. When the
consumer stops early (the client left, or the response ended), the request's cancel event
is set, which stops the model within a token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator

from llm.types import ChatBackend, GenerationEnd, GenerationRequest, LLMEvent, StopReason


class Runner:
    def __init__(self, backend: ChatBackend, limit: int):
        self.backend = backend
        self._slots = threading.BoundedSemaphore(max(1, limit))

    async def events(self, request: GenerationRequest) -> AsyncGenerator[LLMEvent, None]:
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


async def first_event(
    events: AsyncIterator[LLMEvent], timeout: float
) -> tuple[LLMEvent | None, asyncio.Future[LLMEvent] | None]:
    """Wait up to `timeout` for the first event: (event, None), or (None, pending) when the
    model is slow or queued, so a stream can start (with keep-alive pings) meanwhile."""
    pending = asyncio.ensure_future(anext(events))
    done, _ = await asyncio.wait({pending}, timeout=timeout)
    if not done:
        return None, pending
    try:
        return pending.result(), None
    except StopAsyncIteration:
        return None, None
