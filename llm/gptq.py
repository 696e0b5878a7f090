"""GPTQ (Int4) checkpoints on transformers 5: what must be installed, and how to load them.

transformers 5 loads GPTQ weights only through gptqmodel (quantizers/quantizer_gptq.py; via
optimum). auto-gptq, which the Qwen *-Int4 model cards name, is archived and does not import
on transformers 5, so it is not an option. gptqmodel 7.6.0 is the newest release that keeps
torch 2.13 (7.7 requires torch>=2.14.1 and pulls a CUDA torch build).
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata
from typing import Any

GPTQMODEL_PIN = "gptqmodel==7.6.0"
OPTIMUM_PIN = "optimum==2.3.0"
# Minimums transformers 5.23's GPTQ quantizer checks.
MIN_GPTQMODEL = "1.4.3"
MIN_OPTIMUM = "1.24.0"


def is_gptq_config(config: dict[str, Any]) -> bool:
    """True when a config.json dict describes a GPTQ-quantised checkpoint."""
    qc = config.get("quantization_config") if isinstance(config, dict) else None
    return isinstance(qc, dict) and str(qc.get("quant_method", "")).lower() == "gptq"


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _device_kind(device: str) -> str:
    return str(device).split(":")[0].strip().lower() or "cpu"


def gptq_problem(device: str) -> str | None:
    """None when a GPTQ checkpoint can load on device here; else what is wrong and the fix.

    Imports gptqmodel (a few seconds, once per process): an installed but broken package is
    exactly the failure to catch early.
    """
    kind = _device_kind(device)
    if kind not in ("cpu", "cuda", "auto"):
        return f"GPTQ (Int4) models run on 'cpu' or 'cuda' here, not on {device!r}."
    if kind in ("cuda", "auto"):
        import torch

        if not torch.cuda.is_available():
            if kind == "cuda":
                return (
                    "GPTQ (Int4) on 'cuda' needs a CUDA build of torch and a GPU; this torch "
                    f"({torch.__version__}) sees no GPU. Choose device 'cpu' (slow) or install a "
                    "CUDA torch."
                )
    if importlib.util.find_spec("optimum") is None:
        return f"GPTQ (Int4) models need optimum: pip install {OPTIMUM_PIN}"
    optimum_version = metadata.version("optimum")
    if _version_tuple(optimum_version) < _version_tuple(MIN_OPTIMUM):
        return (
            f"optimum {optimum_version} is too old for GPTQ on transformers 5: "
            f"pip install {OPTIMUM_PIN}"
        )
    auto_gptq_note = ""
    if importlib.util.find_spec("auto_gptq") is not None:
        auto_gptq_note = " (auto-gptq is installed but does not work with transformers 5)"
    try:
        importlib.import_module("gptqmodel")
    except ImportError as exc:
        if getattr(exc, "name", None) == "gptqmodel" or "gptqmodel" in str(exc):
            return (
                f"GPTQ (Int4) models need the gptqmodel package{auto_gptq_note}: "
                f"pip install {GPTQMODEL_PIN}  (newer releases require torch>=2.14.1)"
            )
        return f"gptqmodel is installed but fails to import ({exc}); reinstall {GPTQMODEL_PIN}"
    except Exception as exc:  # broken native extension, wrong torch: surface it, do not crash
        return f"gptqmodel is installed but fails to import ({exc}); reinstall {GPTQMODEL_PIN}"
    version = metadata.version("gptqmodel")
    if _version_tuple(version) < _version_tuple(MIN_GPTQMODEL):
        return f"gptqmodel {version} is too old for transformers 5: pip install {GPTQMODEL_PIN}"
    return None


def gptq_load_kwargs(device: str, dtype: Any = None) -> dict[str, Any]:
    """from_pretrained kwargs for a GPTQ checkpoint on device.

    CPU: float32 activations by default (measured: fp16, bf16 and fp32 all load and generate
    on CPU with gptqmodel's TorchAtenLinear; half precision matmuls on this CPU torch are no
    faster, and fp32 avoids fp16 overflow); pass dtype=torch.float16 to halve the memory of the
    unquantised embeddings. CUDA: float16, the dtype GPTQ kernels are written for.
    device_map pins every module to one device; accelerate's "auto" would offload to disk.
    """
    import torch

    kind = _device_kind(device)
    if kind == "auto":
        kind = device = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return {"dtype": dtype or torch.float32, "device_map": "cpu"}
    if kind == "cuda":
        return {"dtype": dtype or torch.float16, "device_map": device}
    raise ValueError(f"GPTQ (Int4) models run on 'cpu' or 'cuda', not on {device!r}")
