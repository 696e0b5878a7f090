"""The models the demo offers by name, and what each one needs before anyone tries to load it.

The UI presents size x precision; every entry also knows its prompt family and loader so the
right code path is picked, and a rough memory need so the UI can warn before a 15 GB download.
Any other hub id or local directory still loads; it just has no entry here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from llm.types import PromptFamily


@dataclass(frozen=True)
class ModelSpec:
    key: str  # "qwen-7b-chat", "qwen-7b-chat-int4", ..., "qwen2.5-coder-0.5b"
    hub_id: str  # "Qwen/Qwen-7B-Chat"
    label: str  # "Qwen-7B-Chat (BF16)"
    size: str  # "7B" | "14B" | "0.5B" | "1.5B"
    precision: str  # "BF16" | "Int4" | "Q4_K_M"
    family: PromptFamily
    fmt: str  # "hf" | "gptq" | "gguf" | "qwen1"
    params_b: float  # billions of parameters
    needs_gpu: bool  # practical only on a GPU (CPU load is refused unless device="cpu")


def _v1(size: str, params_b: float, int4: bool) -> ModelSpec:
    name = f"Qwen-{size}-Chat" + ("-Int4" if int4 else "")
    return ModelSpec(
        key=name.lower(),
        hub_id=f"Qwen/{name}",
        label=f"Qwen-{size}-Chat ({'Int4' if int4 else 'BF16'})",
        size=size,
        precision="Int4" if int4 else "BF16",
        family="qwen1",
        fmt="qwen1",
        params_b=params_b,
        needs_gpu=True,
    )


def _v25(size: str, params_b: float, int4: bool) -> ModelSpec:
    name = f"Qwen2.5-{size}-Instruct" + ("-GPTQ-Int4" if int4 else "")
    return ModelSpec(
        key=name.lower(),
        hub_id=f"Qwen/{name}",
        label=f"Qwen2.5-{size}-Instruct ({'Int4' if int4 else 'BF16'})",
        size=size,
        precision="Int4" if int4 else "BF16",
        family="qwen2",
        fmt="gptq" if int4 else "hf",
        params_b=params_b,
        needs_gpu=True,
    )


def _gguf(size: str, params_b: float) -> ModelSpec:
    return ModelSpec(
        key=f"qwen2.5-coder-{size.lower()}",
        hub_id=f"Qwen/Qwen2.5-Coder-{size}-Instruct-GGUF",
        label=f"Qwen2.5-Coder-{size}-Instruct (Q4_K_M, offline)",
        size=size,
        precision="Q4_K_M",
        family="qwen2",
        fmt="gguf",
        params_b=params_b,
        needs_gpu=False,
    )


REGISTRY: tuple[ModelSpec, ...] = (
    _v1("7B", 7.72, int4=False),
    _v1("7B", 7.72, int4=True),
    _v1("14B", 14.17, int4=False),
    _v1("14B", 14.17, int4=True),
    _v25("7B", 7.62, int4=False),
    _v25("7B", 7.62, int4=True),
    _v25("14B", 14.77, int4=False),
    _v25("14B", 14.77, int4=True),
    _gguf("0.5B", 0.49),
    _gguf("1.5B", 1.54),
)

DEFAULT_GPU_KEY = "qwen-7b-chat"
EMBEDDED_KEY = "qwen2.5-coder-0.5b"

# Bytes per parameter as loaded. Int4 keeps embeddings and scales in fp16, hence > 0.5.
# The GGUF checkpoints are dequantised (fp32 on CPU, bf16/fp16 on a GPU).
_BYTES_GPU = {"BF16": 2.0, "Int4": 0.9, "Q4_K_M": 2.0}
_BYTES_CPU = {"BF16": 4.0, "Int4": 1.0, "Q4_K_M": 4.0}
_OVERHEAD_GB_GPU = 0.8  # CUDA context, KV cache and activations for ~2k tokens
_OVERHEAD_GB_CPU = 1.0


def find(key_or_hub_id: str) -> ModelSpec | None:
    """The entry for a registry key or hub id (case-insensitive), else None."""
    wanted = key_or_hub_id.strip().lower()
    for spec in REGISTRY:
        if wanted in (spec.key, spec.hub_id.lower()):
            return spec
    return None


def lookup(size: str, precision: str, generation: str = "qwen1") -> ModelSpec | None:
    """The entry for a size x precision choice; generation "qwen1" (v1) or "qwen2" (2.5)."""
    family = "qwen1" if generation == "qwen1" else "qwen2"
    for spec in REGISTRY:
        if spec.size.lower() == size.strip().lower() and spec.precision.lower() == (
            precision.strip().lower()
        ):
            if spec.fmt == "gguf" or spec.family == family:
                return spec
    return None


def estimate_memory_gb(spec: ModelSpec, device: str = "cuda") -> float:
    """Rough memory to load and chat with spec on device ("cuda" or "cpu"), in GB."""
    on_cpu = device == "cpu"
    per_param = (_BYTES_CPU if on_cpu else _BYTES_GPU)[spec.precision]
    overhead = _OVERHEAD_GB_CPU if on_cpu else _OVERHEAD_GB_GPU
    return round(spec.params_b * per_param * 1.05 + overhead, 1)


def gpu_memory_gb() -> tuple[float, float] | None:
    """(free, total) GB on the current CUDA device, or None without one."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    return free / 1e9, total / 1e9


def ram_available_gb() -> float:
    """Memory the OS can still give this process, in GB."""
    try:
        import psutil

        return psutil.virtual_memory().available / 1e9
    except ImportError:  # pragma: no cover
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / 1e9
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")) / 1e9


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device != "auto":
        return device
    return "cuda" if gpu_memory_gb() is not None else "cpu"


def fit_message(spec: ModelSpec, device: str = "auto", extra_free_gb: float = 0.0) -> str | None:
    """Why spec will not fit here ("needs ~17 GB GPU, you have 8.0 GB"), or None when it fits.

    extra_free_gb: memory that will be freed first (the model currently loaded).
    """
    gpu = gpu_memory_gb()
    target = resolve_device(device)
    if target.startswith("cuda"):
        need = estimate_memory_gb(spec, "cuda")
        if gpu is None:
            return f"{spec.label} needs ~{need:.0f} GB GPU, and no CUDA GPU was found"
        free = gpu[0] + extra_free_gb
        if need > free:
            return (
                f"{spec.label} needs ~{need:.0f} GB GPU, you have {free:.1f} GB free "
                f"(of {gpu[1]:.1f} GB)"
            )
        return None
    need = estimate_memory_gb(spec, "cpu")
    if spec.needs_gpu and device == "auto":
        gpu_need = estimate_memory_gb(spec, "cuda")
        return (
            f"{spec.label} needs a GPU with ~{gpu_need:.0f} GB, and none was found "
            f"(on CPU it would need ~{need:.0f} GB RAM and be very slow)"
        )
    free = ram_available_gb() + extra_free_gb
    if need > free:
        return f"{spec.label} needs ~{need:.0f} GB RAM, you have {free:.1f} GB available"
    return None


def default_source(cpu_only: bool) -> str:
    """The model to start with: the embedded one without a GPU, Qwen-7B-Chat with one."""
    return EMBEDDED_KEY if cpu_only else DEFAULT_GPU_KEY
