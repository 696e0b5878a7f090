"""One entry point from a source string to a ChatBackend.

"scripted:<file.json>" replays a script, "openai:<model>" talks to an OpenAI-compatible
server, "embedded" is the offline default, a ".gguf" path is converted once, and anything
else (registry key, hub id, local directory) goes through the transformers loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm.errors import ModelLoadError
from llm.loader import LoadPlan, Progress, load_plan, plan_load
from llm.registry import EMBEDDED_KEY
from llm.types import ChatBackend


@dataclass(frozen=True)
class SourcePlan:
    """A checked source: either a transformers LoadPlan or a light backend kind."""

    source: str
    kind: str  # "scripted" | "openai" | "transformers"
    target: str  # file / model name / source
    options: dict[str, Any]
    load: LoadPlan | None = None
    device: str = "cpu"


def plan_source(
    source: str, *, device: str = "auto", extra_free_gb: float = 0.0, **options: Any
) -> SourcePlan:
    """Pre-flight: everything that can fail without loading weights fails here."""
    source = str(source).strip()
    if source.startswith("scripted:"):
        path = Path(source.removeprefix("scripted:")).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"scripted model file not found: {path}")
        return SourcePlan(source, "scripted", str(path), options)
    if source.startswith("openai:"):
        model = source.removeprefix("openai:").strip()
        if not model:
            raise ModelLoadError("openai: needs a model name, e.g. openai:Qwen2.5-7B-Instruct")
        if not options.get("base_url"):
            raise ModelLoadError(
                f"{source} needs a server address (base_url, e.g. http://localhost:8000/v1)"
            )
        return SourcePlan(source, "openai", model, options)
    if source == "embedded":
        source = EMBEDDED_KEY
    plan = plan_load(
        source,
        device=device,
        cpu_int8=bool(options.get("cpu_int8")),
        extra_free_gb=extra_free_gb,
    )
    return SourcePlan(source, "transformers", source, options, load=plan, device=plan.device)


def open_plan(plan: SourcePlan, progress: Progress | None = None) -> ChatBackend:
    """The heavy part of opening a checked source."""
    if plan.kind == "scripted":
        from llm.scripted import ScriptedBackend

        try:
            return ScriptedBackend.from_file(plan.target)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"bad scripted model file {plan.target}: {exc}") from exc
    if plan.kind == "openai":
        try:
            from llm.openai_backend import OpenAIBackend
        except ImportError as exc:
            raise ModelLoadError(f"the OpenAI backend is not available: {exc}") from exc
        opts = plan.options
        try:
            return OpenAIBackend(
                base_url=str(opts["base_url"]),
                api_key=str(opts.get("api_key") or "EMPTY"),
                model=plan.target,
            )
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"could not open openai:{plan.target}: {exc}") from exc
    assert plan.load is not None
    backend = load_plan(plan.load, progress)
    backend.prefix_cache = bool(plan.options.get("prefix_cache", True))
    return backend


def open_backend(
    source: str, *, device: str = "auto", progress: Progress | None = None, **options: Any
) -> ChatBackend:
    """A ChatBackend for source; ModelLoadError with a clear message when it cannot be had."""
    return open_plan(plan_source(source, device=device, **options), progress)
