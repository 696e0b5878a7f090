"""The model behind the UI: a local ModelManager or a remote OpenAI-compatible server.

One object per app (the weights are shared by every browser session). It remembers what is
loading or why the last load failed, so every session's status line can show it, and it loads
in a background thread at startup so the page comes up before a slow model is ready.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from llm.types import ChatBackend, ModelInfo
from ui.i18n import t

Progress = Callable[[float | None, str], None]


class NotReadyError(RuntimeError):
    """Chatting before a model is loaded; the message is for the user."""


@dataclass
class LoadState:
    loading: str | None = None  # source being loaded
    fraction: float | None = None
    message: str = ""
    error: str | None = None


class LocalModels:
    """Wraps llm.manager.ModelManager: one model at a time, swaps refused while generating."""

    remote = False

    def __init__(self, manager: Any = None, device: str = "auto"):
        if manager is None:
            from llm.manager import ModelManager

            manager = ModelManager(device=device)
        self.manager = manager
        self.state = LoadState()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def backend(self) -> ChatBackend | None:
        return self.manager.backend

    @property
    def info(self) -> ModelInfo | None:
        return self.manager.info

    @property
    def busy(self) -> bool:
        return bool(self.manager.busy)

    @contextlib.contextmanager
    def generating(self) -> Iterator[ChatBackend]:
        """The backend, marked busy so a concurrent load is refused."""
        backend = self.require_backend()
        with self.manager.generating():
            yield backend

    def require_backend(self, lang: str = "en") -> ChatBackend:
        backend = self.manager.backend
        if backend is not None and self.state.loading is None:
            return backend
        if self.state.loading is not None:
            raise NotReadyError(t("model_loading", lang))
        raise NotReadyError(t("no_model", lang))

    def load(self, source: str, progress: Progress | None = None, **options: Any) -> ModelInfo:
        """Load synchronously; errors propagate (ModelLoadError, ModelBusyError)."""
        from llm.errors import ModelBusyError

        with self._lock:
            if self.state.loading is not None and self._thread is not threading.current_thread():
                raise ModelBusyError(f"Cannot switch models: {self.state.loading} is being loaded.")
            previous = self.state
            self.state = LoadState(loading=source)

        def report(fraction: float | None, message: str) -> None:
            self.state.fraction, self.state.message = fraction, message
            if progress is not None:
                progress(fraction, message)

        try:
            info = self.manager.load(source, progress=report, **options)
        except ModelBusyError:
            self.state = previous  # a refused swap changes nothing
            raise
        except Exception as e:
            self.state = LoadState(error=str(e) or type(e).__name__)
            raise
        self.state = LoadState()
        return info

    def load_in_background(self, source: str, **options: Any) -> threading.Thread:
        """Start loading without blocking (startup); the status line shows the outcome."""

        def target() -> None:
            with contextlib.suppress(Exception):  # recorded in self.state by load()
                self.load(source, **options)

        self._thread = threading.Thread(target=target, name="model-load", daemon=True)
        self.state = LoadState(loading=source)
        self._thread.start()
        return self._thread

    def unload(self) -> None:
        self.manager.unload()
        self.state = LoadState()

    def status(self, lang: str) -> str:
        s = self.state
        if s.loading is not None:
            line = t("status_loading", lang, name=s.loading)
            if s.message:
                pct = f" {s.fraction * 100:.0f}%" if s.fraction is not None else ""
                line += f"{pct} — {s.message}"
            return line
        info = self.manager.info
        parts = []
        if s.error:
            parts.append(t("status_failed", lang, error=s.error))
        if info is not None:
            parts.append(
                t("status_loaded", lang, name=info.name, device=info.device, memory=info.memory_gb)
            )
        return "\n\n".join(parts) or t("status_none", lang)


class RemoteModels:
    """An OpenAI-compatible server: nothing to load, just pick one of its models."""

    remote = True

    def __init__(self, base_url: str, api_key: str = "", model: str | None = None):
        self.base_url = base_url
        self.api_key = api_key
        self.state = LoadState()
        self._backend: ChatBackend | None = None
        self.available: list[str] = []
        if model:
            self.select(model)

    def list_models(self) -> list[str]:
        from llm.openai_backend import list_models

        try:
            self.available = list(list_models(self.base_url, self.api_key))
            self.state.error = None
        except Exception as e:  # the server may be down; say so in the status line
            self.state.error = f"{type(e).__name__}: {e}"
            self.available = []
        return self.available

    def select(self, model: str) -> ModelInfo:
        from llm.openai_backend import OpenAIBackend

        self._backend = OpenAIBackend(self.base_url, self.api_key, model)
        self.state.error = None
        return self._backend.info

    @property
    def backend(self) -> ChatBackend | None:
        return self._backend

    @property
    def info(self) -> ModelInfo | None:
        return self._backend.info if self._backend else None

    busy = False

    @contextlib.contextmanager
    def generating(self) -> Iterator[ChatBackend]:
        yield self.require_backend()

    def require_backend(self, lang: str = "en") -> ChatBackend:
        if self._backend is None:
            raise NotReadyError(t("no_model", lang))
        return self._backend

    def status(self, lang: str) -> str:
        parts = []
        if self.state.error:
            parts.append(t("status_failed", lang, error=self.state.error))
        if self._backend is not None:
            parts.append(t("status_remote", lang, url=self.base_url, name=self._backend.info.name))
        return "\n\n".join(parts) or t("status_none", lang)


class FixedModel:
    """One backend given up front (scripted demos, embedding the UI in another app)."""

    remote = True  # nothing to load or unload

    def __init__(self, backend: ChatBackend):
        self._backend = backend
        self.state = LoadState()
        self.available = [backend.info.name]
        self._busy = 0
        self._lock = threading.Lock()

    @property
    def backend(self) -> ChatBackend:
        return self._backend

    @property
    def info(self) -> ModelInfo:
        return self._backend.info

    @property
    def busy(self) -> bool:
        return self._busy > 0

    def list_models(self) -> list[str]:
        return self.available

    def select(self, model: str) -> ModelInfo:
        return self._backend.info

    @contextlib.contextmanager
    def generating(self) -> Iterator[ChatBackend]:
        with self._lock:
            self._busy += 1
        try:
            yield self._backend
        finally:
            with self._lock:
                self._busy -= 1

    def require_backend(self, lang: str = "en") -> ChatBackend:
        return self._backend

    def status(self, lang: str) -> str:
        info = self._backend.info
        return t("status_loaded", lang, name=info.name, device=info.device, memory=info.memory_gb)


ModelService = LocalModels | RemoteModels | FixedModel
