"""Load a chat model the way users run Qwen: a hub id or a local directory.

Loading is split in two so a model swap never loses the working model to a cheap mistake:
plan_load() does the checks that need no weights (source resolvable, config readable, backend
package present, GPU present for GPU-only formats, memory estimate) and load_plan() does the
heavy part. Every failure is a ModelLoadError with a message a user can act on.

dtype: bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU (bf16 on CPU is very
slow); GPTQ fp16 on a GPU and fp32 on CPU, pinned to one device. device_map="auto" on a GPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm.cache import cache_dir
from llm.errors import ModelLoadError
from llm.registry import (
    EMBEDDED_KEY,
    ModelSpec,
    find,
    fit_message,
    gpu_memory_gb,
    ram_available_gb,
    resolve_device,
)
from llm.types import ModelInfo, PromptFamily

Progress = Callable[[float | None, str], None]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CONFIG_FILES = ["*.json", "*.tiktoken", "*.model", "*.txt", "*.jinja", "*.py"]
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "qwen.tiktoken")
_WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt", "*.safetensors.index.json")


@dataclass(frozen=True)
class LoadPlan:
    """What plan_load found out, enough for load_plan to do the heavy part."""

    source: str  # as the user gave it
    fmt: str  # "hf" | "gptq" | "qwen1" | "gguf" | "embedded"
    family: PromptFamily
    device: str  # "cuda" | "cpu"
    name: str  # display name
    spec: ModelSpec | None = None
    path: Path | None = None  # local dir (config-only for a hub id not yet downloaded)
    hub_id: str | None = None
    gguf_file: Path | None = None
    cpu_int8: bool = False
    estimate_gb: float | None = None
    gptq: bool = False  # GPTQ-quantised weights (also Qwen v1 Int4): loaded in fp16


def _report(progress: Progress | None, fraction: float | None, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def choose_dtype(device: str, fmt: str = "hf", *, bf16_supported: bool | None = None) -> Any:
    """bf16 where the GPU supports it, fp16 on older GPUs and for GPTQ, fp32 on CPU.

    bf16_supported: whether the GPU has bf16 (None: ask torch.cuda); passed in by tests.
    """
    import torch

    if fmt == "gptq":  # GPTQ kernels are fp16 on a GPU; on CPU fp32 is as fast and safer
        return torch.float16 if device.startswith("cuda") else torch.float32
    if device.startswith("cuda"):
        if bf16_supported is None:
            bf16_supported = torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16_supported else torch.float16
    return torch.float32


def resolve_hub_id(hub_id: str, *, config_only: bool, progress: Progress | None = None) -> Path:
    """A hub id's snapshot directory: the local HF cache first, then the hub unless offline."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover
        raise ModelLoadError("loading a hub id needs huggingface_hub installed") from exc
    patterns = _CONFIG_FILES if config_only else None
    try:
        return Path(snapshot_download(hub_id, local_files_only=True, allow_patterns=patterns))
    except Exception:  # not (fully) cached: try the hub below
        pass
    unreachable = (
        f"{hub_id} is not in the local cache and no hub is reachable; pass a local directory"
    )
    if _offline():
        raise ModelLoadError(unreachable)
    _report(progress, None, f"Downloading {hub_id}{' (config)' if config_only else ''}…")
    try:
        return Path(snapshot_download(hub_id, allow_patterns=patterns))
    except Exception as exc:
        text = str(exc)
        if "404" in text or "RepositoryNotFound" in type(exc).__name__:
            raise ModelLoadError(f"{hub_id}: no such model on the hub") from exc
        raise ModelLoadError(f"{unreachable} ({type(exc).__name__})") from exc


def read_config(path: Path) -> dict[str, Any]:
    config = path / "config.json"
    if not config.is_file():
        raise ModelLoadError(f"{path} is not a model directory: it has no config.json")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{config} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{config} is not a model config (expected a JSON object)")
    return data


def _is_qwen1(config: dict[str, Any]) -> bool:
    try:
        from llm.qwen1 import is_qwen1_config
    except ImportError:
        return config.get("model_type") == "qwen"
    return bool(is_qwen1_config(config))


def _gptq_problem(device: str) -> str | None:
    try:
        from llm.gptq import gptq_problem
    except ImportError:
        if importlib.util.find_spec("gptqmodel") is None:
            return "Int4 (GPTQ) models need the gptqmodel package: pip install gptqmodel==7.6.0"
        return None
    return gptq_problem(device)


def _need_module(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ModelLoadError(f"{what} needs the {module} module, which is not available")


def estimate_params_b(config: dict[str, Any]) -> float | None:
    """Parameter count (billions) from a config, None when its fields are unknown."""
    cfg = config.get("text_config", config)
    try:
        h = int(cfg["hidden_size"])
        layers = int(cfg.get("num_hidden_layers") or cfg["n_layer"])
        vocab = int(cfg.get("vocab_size") or cfg["padded_vocab_size"])
        inter = int(cfg.get("intermediate_size") or 4 * h)
    except (KeyError, TypeError, ValueError):
        return None
    if config.get("model_type") == "qwen":  # v1 stores twice the MLP width
        inter //= 2
    heads = int(cfg.get("num_attention_heads") or 1)
    kv_dim = h * int(cfg.get("num_key_value_heads") or heads) // max(heads, 1)
    per_layer = 2 * h * h + 2 * h * kv_dim + 3 * h * inter
    embed = vocab * h * (1 if cfg.get("tie_word_embeddings") else 2)
    return (layers * per_layer + embed) / 1e9


def _memory_problem(params_b: float, fmt: str, device: str, extra_free_gb: float) -> str | None:
    per_param = 0.9 if fmt == "gptq" else (2.0 if device.startswith("cuda") else 4.0)
    need = params_b * per_param * 1.05 + (0.8 if device.startswith("cuda") else 1.0)
    if device.startswith("cuda"):
        gpu = gpu_memory_gb()
        free = (gpu[0] if gpu else 0.0) + extra_free_gb
        if need > free:
            return f"needs ~{need:.0f} GB GPU, you have {free:.1f} GB free"
        return None
    free = ram_available_gb() + extra_free_gb
    if need > free:
        return f"needs ~{need:.0f} GB RAM, you have {free:.1f} GB available"
    return None


def plan_load(
    source: str,
    *,
    device: str = "auto",
    cpu_int8: bool = False,
    extra_free_gb: float = 0.0,
    check_memory: bool = True,
) -> LoadPlan:
    """Cheap pre-flight checks (no weights loaded). Raises ModelLoadError."""
    source = str(source).strip()
    if not source:
        raise ModelLoadError("no model given: pass a registry key, hub id or local directory")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ModelLoadError(f"unknown device {device!r}: use auto, cpu or cuda")
    target = resolve_device(device)
    if target.startswith("cuda") and gpu_memory_gb() is None:
        raise ModelLoadError(f"device={device!r} was asked for, but no CUDA GPU was found")
    spec = find(source)
    int8 = cpu_int8 and target == "cpu"

    if spec is not None and spec.needs_gpu and device == "auto" and target == "cpu":
        raise ModelLoadError(
            f"{fit_message(spec, device)}. Pick the embedded {EMBEDDED_KEY} model, "
            "or start with device=cpu to try anyway."
        )
    if spec is not None and check_memory:
        problem = fit_message(spec, target, extra_free_gb)
        if problem is not None:
            raise ModelLoadError(problem)

    if spec is not None and spec.fmt == "gguf":
        _need_module("gguf", f"{spec.label} (GGUF)")
        if _gguf_spec(spec.key) is None:
            raise ModelLoadError(f"{spec.label} is not available in this build")
        name = spec.label + (" + int8" if int8 else "")
        return LoadPlan(source, "embedded", "qwen2", target, name, spec=spec, cpu_int8=int8)

    path: Path | None = None
    hub_id: str | None = None
    local = Path(source).expanduser()
    if spec is not None:
        hub_id = spec.hub_id
    elif local.exists():
        path = local.resolve()
    elif _HUB_ID.match(source) and not source.startswith((".", "~")):
        hub_id = source
    else:
        raise ModelLoadError(
            f"{source}: no such directory, and not a hub id like Qwen/Qwen-7B-Chat"
        )

    if path is not None and path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(f"{path} is a file; pass a model directory or a .gguf file")
        _need_module("gguf", "loading a .gguf file")
        name = path.name + (" + int8" if int8 else "")
        return LoadPlan(source, "gguf", "qwen2", target, name, gguf_file=path, cpu_int8=int8)
    if path is not None and not (path / "config.json").exists():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            _need_module("gguf", "loading a .gguf file")
            name = ggufs[0].name + (" + int8" if int8 else "")
            gguf = ggufs[0]
            return LoadPlan(source, "gguf", "qwen2", target, name, gguf_file=gguf, cpu_int8=int8)

    if hub_id is not None:
        path = resolve_hub_id(hub_id, config_only=True)
    assert path is not None
    config = read_config(path)
    if hub_id is None:
        if not any(any(path.glob(g)) for g in _WEIGHT_GLOBS):
            raise ModelLoadError(f"{path} has a config.json but no weights (*.safetensors, *.bin)")
        if not any((path / f).exists() for f in _TOKENIZER_FILES):
            raise ModelLoadError(f"{path} has no tokenizer files (tokenizer.json / qwen.tiktoken)")

    quant = config.get("quantization_config") or {}
    gptq = isinstance(quant, dict) and str(quant.get("quant_method", "")).lower() == "gptq"
    if _is_qwen1(config):
        fmt, family = "qwen1", "qwen1"
        _need_module("llm.qwen1", "a Qwen v1 checkpoint")
    else:
        fmt, family = ("gptq" if gptq else "hf"), "qwen2"
    if gptq:
        problem = _gptq_problem(target)
        if problem is not None:
            raise ModelLoadError(problem)

    estimate = None
    if spec is None:
        params_b = estimate_params_b(config)
        if params_b is not None:
            estimate = round(params_b, 3)
            problem = _memory_problem(params_b, "gptq" if gptq else fmt, target, extra_free_gb)
            if problem is not None and check_memory:
                raise ModelLoadError(f"{source} {problem}")
    name = spec.label if spec is not None else (hub_id or path.name)
    if int8:
        name += " + int8"
    return LoadPlan(
        source, fmt, family, target, name, spec=spec, path=path, hub_id=hub_id,
        cpu_int8=int8, estimate_gb=estimate, gptq=gptq,
    )  # fmt: skip


def _qwen1_native_dir(src: Path, progress: Progress | None) -> Path:
    """Convert a Qwen v1 checkpoint once; cached by source path + mtime + converter version."""
    from llm.qwen1 import CONVERTER_VERSION, convert_checkpoint

    mtime = max((p.stat().st_mtime_ns for p in src.iterdir()), default=0)
    key = hashlib.sha256(f"{src.resolve()}:{mtime}:{CONVERTER_VERSION}".encode()).hexdigest()[:16]
    dst = cache_dir() / "qwen1" / f"{src.name}-{key}"
    if (dst / "config.json").exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    _report(progress, None, f"Converting Qwen v1 checkpoint {src.name} (once)…")
    return Path(convert_checkpoint(src, dst, progress=progress))  # writes atomically


def _gguf_spec(key: str) -> Any:
    """The llm.embedded GgufSpec named key, or None when this build does not ship it."""
    try:
        from llm import embedded
    except ImportError as exc:
        raise ModelLoadError(f"the embedded model support is missing: {exc}") from exc
    for value in vars(embedded).values():
        if type(value).__name__ == "GgufSpec" and getattr(value, "name", None) == key:
            return value
    return None


def _checkpoint_dir(plan: LoadPlan, progress: Progress | None) -> Path:
    if plan.fmt == "embedded":
        from llm.embedded import ensure_checkpoint

        assert plan.spec is not None
        gguf_spec = _gguf_spec(plan.spec.key)
        if gguf_spec is None:
            raise ModelLoadError(f"{plan.spec.label} is not available in this build")
        return Path(ensure_checkpoint(progress=progress, spec=gguf_spec))
    if plan.fmt == "gguf":
        from llm.embedded import checkpoint_from_gguf

        assert plan.gguf_file is not None
        return Path(checkpoint_from_gguf(plan.gguf_file, progress=progress))
    path = plan.path
    if plan.hub_id is not None:
        path = resolve_hub_id(plan.hub_id, config_only=False, progress=progress)
    assert path is not None
    if plan.fmt == "qwen1":
        path = _qwen1_native_dir(path, progress)
    return path


def _memory_gb(model: Any) -> float:
    total = sum(t.numel() * t.element_size() for t in model.parameters())
    total += sum(t.numel() * t.element_size() for t in model.buffers())
    return total / 1e9


def _quantize_int8(model: Any) -> tuple[Any, float]:
    """Dynamic int8 on CPU Linear layers; returns (model, weight bytes saved).

    Measured on the 0.5B model (bench/bench_cpu.py): decode ~2.8x faster, but the outputs of
    a small model change (it left the ReAct format), so it stays opt-in. The saving is in
    tensor bytes; process RSS does not fall (the fp32 checkpoint stays memory-mapped).
    """
    import torch
    from torch import nn

    linear_bytes = sum(
        m.weight.numel() * m.weight.element_size()
        for m in model.modules()
        if isinstance(m, nn.Linear)
    )
    with warnings.catch_warnings():  # torch marks quantized tensors deprecated; still works
        warnings.simplefilter("ignore", UserWarning)
        model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return model, linear_bytes * 0.75


def _load_dir(plan: LoadPlan, path: Path, progress: Progress | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm.local import TransformersBackend

    dtype = choose_dtype(plan.device, "gptq" if plan.gptq else plan.fmt)
    device_map: Any = "auto" if plan.device.startswith("cuda") else "cpu"
    if plan.gptq:  # pinned to one device: accelerate's "auto" could offload Int4 layers to disk
        try:
            from llm.gptq import gptq_load_kwargs

            kwargs = gptq_load_kwargs(plan.device, dtype)
            dtype, device_map = kwargs["dtype"], kwargs["device_map"]
        except ImportError:
            device_map = "cuda:0" if plan.device.startswith("cuda") else "cpu"
    dtype_name = str(dtype).removeprefix("torch.")
    _report(progress, 0.3, f"Loading {plan.name} ({dtype_name}, {plan.device})…")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map=device_map)
    model.eval()
    memory = _memory_gb(model)
    if plan.cpu_int8:
        _report(progress, 0.9, "Quantising Linear layers to int8 (CPU)…")
        model, saved = _quantize_int8(model)
        memory -= saved / 1e9
    device = "cuda" if plan.device.startswith("cuda") else "cpu"
    info = ModelInfo(
        name=plan.name,
        family=plan.family,
        backend="transformers",
        device=device,
        memory_gb=round(memory, 4),
        supports_native_tools=plan.family == "qwen2",
        source=plan.hub_id or str(plan.path or plan.gguf_file or plan.source),
    )
    return TransformersBackend(model, tokenizer, info)


def load_plan(plan: LoadPlan, progress: Progress | None = None):
    """The heavy part: download/convert if needed, load weights. Raises ModelLoadError."""
    try:
        path = _checkpoint_dir(plan, progress)
        backend = _load_dir(plan, path, progress)
    except ModelLoadError:
        raise
    except ImportError as exc:
        raise ModelLoadError(f"could not load {plan.name}: a package is missing ({exc})") from exc
    except MemoryError as exc:
        raise ModelLoadError(f"could not load {plan.name}: out of memory") from exc
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":
            raise ModelLoadError(f"could not load {plan.name}: out of GPU memory") from exc
        raise ModelLoadError(f"could not load {plan.name}: {type(exc).__name__}: {exc}") from exc
    _report(progress, 1.0, f"Loaded {plan.name}")
    return backend


def load_model(
    source: str, *, device: str = "auto", progress: Progress | None = None, **options: Any
):
    """plan_load + load_plan: a TransformersBackend for source, or ModelLoadError."""
    plan = plan_load(source, device=device, cpu_int8=bool(options.get("cpu_int8")))
    backend = load_plan(plan, progress)
    backend.prefix_cache = bool(options.get("prefix_cache", True))
    return backend


__all__ = [
    "LoadPlan",
    "ModelLoadError",
    "cache_dir",
    "choose_dtype",
    "estimate_params_b",
    "load_model",
    "load_plan",
    "plan_load",
    "read_config",
    "resolve_hub_id",
]
