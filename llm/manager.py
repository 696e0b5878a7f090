"""Hot swap between models without ever holding two by accident.

A swap runs the cheap pre-flight checks first (a bad path keeps the old model serving), then
releases the old model's memory (CPU and GPU) and loads the new one. If that real load fails,
the previous model is loaded again. Swaps are refused while a generation runs, and
generations are refused while a load runs.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Iterator
from typing import Any

from llm.errors import ModelBusyError, ModelLoadError
from llm.loader import Progress
from llm.sources import open_plan, plan_source
from llm.types import ChatBackend, ModelInfo


def release_memory() -> None:
    """Collect garbage and give cached CUDA memory back, so the next model fits."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelManager:
    """The one loaded model of the app; thread-safe."""

    def __init__(self, device: str = "auto") -> None:
        self.device = device
        self._lock = threading.RLock()
        self._backend: ChatBackend | None = None
        self._source: str | None = None
        self._options: dict[str, Any] = {}
        self._loading = False
        self._active = 0

    @property
    def backend(self) -> ChatBackend | None:
        return self._backend

    @property
    def info(self) -> ModelInfo | None:
        backend = self._backend
        return backend.info if backend is not None else None

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def busy(self) -> bool:
        """A generation is running."""
        return self._active > 0

    @property
    def loading(self) -> bool:
        return self._loading

    @contextlib.contextmanager
    def generating(self) -> Iterator[ChatBackend]:
        """Wrap one agent turn: blocks swaps meanwhile; yields the loaded backend."""
        with self._lock:
            if self._loading:
                raise ModelBusyError("A model is being loaded; wait for it to finish.")
            if self._backend is None:
                raise ModelLoadError("No model is loaded; pick one first.")
            self._active += 1
            backend = self._backend
        try:
            yield backend
        finally:
            with self._lock:
                self._active -= 1

    def _claim(self, action: str) -> None:
        with self._lock:
            if self._active:
                raise ModelBusyError(
                    f"Cannot {action} while a reply is being generated; stop it or wait."
                )
            if self._loading:
                raise ModelBusyError(f"Cannot {action}: another model is being loaded.")
            self._loading = True

    def _release(self) -> None:
        """Drop the current backend and free its memory (caller holds the claim)."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()
        del backend
        release_memory()

    def load(self, source: str, progress: Progress | None = None, **options: Any) -> ModelInfo:
        """Swap to source. ModelLoadError: not loaded (old model still serving when possible)."""
        self._claim("switch models")
        try:
            return self._swap(source, progress, options)
        finally:
            with self._lock:
                self._loading = False

    def _swap(self, source: str, progress: Progress | None, options: dict[str, Any]) -> ModelInfo:
        old_info = self.info
        freed = old_info.memory_gb if old_info is not None else 0.0
        if progress is not None:
            progress(0.0, f"Checking {source}…")
        try:
            plan = plan_source(source, device=self.device, extra_free_gb=freed, **options)
        except ModelLoadError:
            raise
        except Exception as exc:  # an unexpected pre-flight failure: still keep the old model
            raise ModelLoadError(f"cannot load {source}: {type(exc).__name__}: {exc}") from exc
        prev_source, prev_options = self._source, self._options
        if old_info is not None and progress is not None:
            progress(0.05, f"Unloading {old_info.name}…")
        self._release()
        self._source, self._options = None, {}
        try:
            backend = open_plan(plan, progress)
        except Exception as exc:
            message = str(exc)
            if not isinstance(exc, ModelLoadError):
                message = f"{type(exc).__name__}: {exc}"
            release_memory()
            if prev_source is None:
                raise ModelLoadError(message) from exc
            try:
                restored = open_plan(
                    plan_source(prev_source, device=self.device, **prev_options), None
                )
            except Exception as again:
                raise ModelLoadError(
                    f"{message}. Reloading the previous model {old_info.name if old_info else ''}"
                    f" failed too ({again}); no model is loaded."
                ) from exc
            self._backend, self._source, self._options = restored, prev_source, prev_options
            raise ModelLoadError(
                f"{message}. The previous model {restored.info.name} was loaded again."
            ) from exc
        self._backend, self._source, self._options = backend, plan.source, dict(options)
        return backend.info

    def unload(self) -> None:
        """Release the current model (refused while a reply is being generated)."""
        self._claim("unload the model")
        try:
            self._release()
            self._source, self._options = None, {}
        finally:
            with self._lock:
                self._loading = False
