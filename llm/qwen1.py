"""Qwen v1 (Qwen-7B-Chat, Qwen-14B-Chat and their Int4) as native Qwen2 checkpoints.

v1 checkpoints ship remote code written for transformers 4.32, which no longer imports on
transformers 5. The v1 architecture is Qwen2's with different tensor names: a fused c_attn
(q|k|v stacked along the output dim, with bias), key/value heads = heads, and a SwiGLU MLP
whose w2 is the gated (SiLU) branch. Renaming and splitting the tensors gives a
Qwen2ForCausalLM with identical logits up to seq_length; the tiktoken vocabulary becomes a
fast tokenizer with identical ids. Past seq_length v1 stretches its context with dynamic NTK
and logn attention: dynamic NTK is carried over as transformers' "dynamic" rope scaling
(see NTK_FACTOR for how exactly), logn attention is not (Qwen2 has no such scaling).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llm.chatml import CHATML_TEMPLATE
from llm.errors import Qwen1ConversionError
from llm.qwen1_tokenizer import (
    ENDOFTEXT,
    IM_END,
    IM_START,
    QWEN1_PATTERN,
    SPECIAL_START_ID,
    SPECIAL_TOKENS,
    nfc,
    tokenizer_from_tiktoken,
)

ProgressFn = Callable[[float | None, str], None]
"""progress(fraction_done, message): llm.loader's Progress and gradio's gr.Progress shape."""

CONVERTER_VERSION = 2  # 2: dynamic NTK carried over as rope scaling

# v1's dynamic NTK: for a sequence of L > seq_length tokens it multiplies the rope base by
# alpha ** (d / (d - 2)) with alpha = 2 ** ceil(log2(L / seq_length) + 1) - 1 (3 up to twice
# seq_length, 7 up to 4x, ...). transformers' "dynamic" type uses
# alpha = factor * L / seq_length - (factor - 1); with factor 2 that is 2L/seq_length - 1,
# equal to v1's at L = 2, 4, 8... x seq_length and smaller in between.
NTK_FACTOR = 2.0
# Qwen's arXiv perplexity with dynamic NTK alone (no logn): 3.78 at the 2K training length,
# 3.59 at 4K, 3.66 at 8K, 5.71 at 16K. So 4x seq_length is the context the converted model
# (which has no logn attention) is given.
NTK_CONTEXT_MULTIPLE = 4

TIKTOKEN_FILE = "qwen.tiktoken"
MARKER_FILE = "qwen1_conversion.json"


# --------------------------------------------------------------------------- detection


def is_qwen1_config(config: dict[str, Any]) -> bool:
    """True for a Qwen v1 config.json (model_type "qwen" or QWenLMHeadModel)."""
    if not isinstance(config, dict):
        return False
    if config.get("model_type") == "qwen":
        return True
    return "QWenLMHeadModel" in (config.get("architectures") or [])


def is_qwen1_dir(path: str | Path) -> bool:
    """True when path is a local directory holding a v1 config.json."""
    config_path = Path(path) / "config.json"
    if not config_path.is_file():
        return False
    try:
        return is_qwen1_config(json.loads(config_path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- config


def qwen2_config_from_qwen1(v1: dict[str, Any], dtype: str | None = None) -> dict[str, Any]:
    """The Qwen2Config dict equivalent to a v1 config.json (raises on unsupported variants)."""
    missing = [
        k
        for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size")
        if k not in v1
    ]
    if missing:
        raise Qwen1ConversionError(f"Qwen v1 config.json lacks {', '.join(missing)}")
    hidden, heads = int(v1["hidden_size"]), int(v1["num_attention_heads"])
    kv_channels = int(v1.get("kv_channels", hidden // heads))
    if kv_channels * heads != hidden:
        raise Qwen1ConversionError(
            f"kv_channels * num_attention_heads = {kv_channels * heads} differs from "
            f"hidden_size {hidden}; no released Qwen v1 model does this"
        )
    if float(v1.get("rotary_pct", 1.0)) != 1.0:
        raise Qwen1ConversionError("rotary_pct != 1.0 (partial rotary) is not supported")
    if not v1.get("no_bias", True):
        raise Qwen1ConversionError("no_bias = false (biased MLP / c_proj) is not supported")
    seq_length = int(v1.get("seq_length", v1.get("max_position_embeddings", 2048)))
    rope: dict[str, Any] = {
        "rope_type": "default",
        "rope_theta": float(v1.get("rotary_emb_base", v1.get("rope_theta", 10000))),
    }
    if v1.get("use_dynamic_ntk"):
        rope.update(rope_type="dynamic", factor=NTK_FACTOR)
    out: dict[str, Any] = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": int(v1.get("vocab_size", 151936)),
        "hidden_size": hidden,
        "intermediate_size": int(v1["intermediate_size"]) // 2,
        "num_hidden_layers": int(v1["num_hidden_layers"]),
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "hidden_act": "silu",
        # Where dynamic NTK starts scaling: v1's seq_length (transformers reads it from here).
        "max_position_embeddings": seq_length,
        "rms_norm_eps": float(v1.get("layer_norm_epsilon", 1e-6)),
        "rope_parameters": rope,
        "tie_word_embeddings": bool(v1.get("tie_word_embeddings", False)),
        "use_cache": True,
        "use_sliding_window": False,
        "attention_dropout": 0.0,
        "initializer_range": float(v1.get("initializer_range", 0.02)),
        "bos_token_id": None,
        "eos_token_id": SPECIAL_START_ID + 2,  # <|im_end|>
        "pad_token_id": SPECIAL_START_ID,  # <|endoftext|>
        "qwen1_source": {
            "seq_length": seq_length,
            "context_length": context_length(v1),
            "max_position_embeddings": v1.get("max_position_embeddings"),
            "use_dynamic_ntk": v1.get("use_dynamic_ntk"),
            "use_logn_attn": v1.get("use_logn_attn"),
            "converter_version": CONVERTER_VERSION,
        },
    }
    if dtype:
        out["dtype"] = dtype
    if v1.get("quantization_config"):
        out["quantization_config"] = _quantization_config(v1["quantization_config"])
    return out


def context_length(v1: dict[str, Any]) -> int:
    """Tokens the converted model is given: seq_length, or 4x with dynamic NTK (no logn)."""
    seq_length = int(v1.get("seq_length", v1.get("max_position_embeddings", 2048)))
    return seq_length * (NTK_CONTEXT_MULTIPLE if v1.get("use_dynamic_ntk") else 1)


_QUANT_MODULE_RENAMES = {
    "attn.c_attn": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
    "attn.c_proj": ["self_attn.o_proj"],
    "mlp.w1": ["mlp.up_proj"],
    "mlp.w2": ["mlp.gate_proj"],
    "mlp.c_proj": ["mlp.down_proj"],
}


def _quantization_config(qc: dict[str, Any]) -> dict[str, Any]:
    """Carry an auto-gptq style config over, translating v1 module names where listed."""
    qc = dict(qc)
    method = str(qc.get("quant_method", "gptq")).lower()
    if method != "gptq":
        raise Qwen1ConversionError(
            f"Qwen v1 checkpoints quantised with {method!r} are not supported"
        )
    if qc.get("block_name_to_quantize") == "transformer.h":
        qc["block_name_to_quantize"] = "model.layers"
    groups = qc.get("modules_in_block_to_quantize")
    if groups:
        qc["modules_in_block_to_quantize"] = [
            [new for name in group for new in _QUANT_MODULE_RENAMES.get(name, [name])]
            for group in groups
        ]
    return qc


# --------------------------------------------------------------------------- tensors

# v1 MLP: c_proj(w1(x) * silu(w2(x))), so w2 is Qwen2's gate_proj (the SiLU branch).
_MLP_RENAMES = {"w1": "up_proj", "w2": "gate_proj", "c_proj": "down_proj"}
_LAYER_RE = re.compile(r"^transformer\.h\.(\d+)\.(.+)$")
_DROPPED = re.compile(r"\.(rotary_emb\.inv_freq|attn\.masked_bias|attn\.bias)$")
_FUSED_ROW_SPLIT = {"weight", "bias"}  # [3h, in] / [3h]: split along dim 0
_FUSED_COL_SPLIT = {"qweight", "qzeros", "scales"}  # GPTQ [rows, 3h * packing]: dim 1
_FUSED_SHARED = {"g_idx"}  # per input row, same for q, k and v


def convert_tensor(name: str, tensor) -> list[tuple[str, Any]]:
    """Map one v1 tensor to its Qwen2 tensor(s); [] for buffers Qwen2 recomputes."""
    if _DROPPED.search(name):
        return []
    simple = {
        "transformer.wte.weight": "model.embed_tokens.weight",
        "transformer.ln_f.weight": "model.norm.weight",
        "lm_head.weight": "lm_head.weight",
    }
    if name in simple:
        return [(simple[name], tensor)]
    match = _LAYER_RE.match(name)
    if not match:
        raise Qwen1ConversionError(f"unexpected tensor {name!r} in a Qwen v1 checkpoint")
    prefix, rest = f"model.layers.{match.group(1)}", match.group(2)
    module, _, kind = rest.rpartition(".")
    if module == "ln_1":
        return [(f"{prefix}.input_layernorm.{kind}", tensor)]
    if module == "ln_2":
        return [(f"{prefix}.post_attention_layernorm.{kind}", tensor)]
    if module == "attn.c_proj":
        return [(f"{prefix}.self_attn.o_proj.{kind}", tensor)]
    if module.startswith("mlp.") and module[4:] in _MLP_RENAMES:
        return [(f"{prefix}.mlp.{_MLP_RENAMES[module[4:]]}.{kind}", tensor)]
    if module == "attn.c_attn":
        names = [f"{prefix}.self_attn.{p}_proj.{kind}" for p in "qkv"]
        if kind in _FUSED_SHARED:
            return [(n, tensor.clone()) for n in names]
        dim = 0 if kind in _FUSED_ROW_SPLIT else 1 if kind in _FUSED_COL_SPLIT else None
        if dim is None:
            raise Qwen1ConversionError(f"unexpected tensor {name!r} in a Qwen v1 checkpoint")
        if tensor.shape[dim] % 3:
            raise Qwen1ConversionError(f"{name} has shape {tuple(tensor.shape)}: not q|k|v fused")
        return [
            (n, part.contiguous()) for n, part in zip(names, tensor.chunk(3, dim=dim), strict=True)
        ]
    raise Qwen1ConversionError(f"unexpected tensor {name!r} in a Qwen v1 checkpoint")


def _weight_shards(src: Path) -> list[Path]:
    """The checkpoint's weight files in index order (safetensors preferred over .bin)."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = src / index_name
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            return [src / f for f in dict.fromkeys(sorted(set(weight_map.values())))]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (src / single).is_file():
            return [src / single]
    found = sorted(src.glob("*.safetensors")) or sorted(src.glob("*.bin"))
    if found:
        return found
    raise Qwen1ConversionError(f"no weights (*.safetensors or *.bin) in {src}")


def _iter_tensors(shard: Path) -> Iterator[tuple[str, Any]]:
    """Tensors of one shard, one at a time (safetensors lazily, .bin memory-mapped)."""
    if shard.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():
                yield key, f.get_tensor(key)
    else:
        import torch

        state = torch.load(str(shard), map_location="cpu", weights_only=True, mmap=True)
        for key in list(state):
            yield key, state.pop(key)


# --------------------------------------------------------------------------- conversion


def convert_checkpoint(
    src: str | Path, dst: str | Path, progress: ProgressFn | None = None
) -> Path:
    """Convert a local v1 checkpoint directory into a Qwen2 checkpoint at dst; return dst.

    Streams shard by shard (peak memory about one shard), writes into a temporary sibling
    and renames it into place, so an interrupted run never leaves a half checkpoint at dst.
    """
    import torch
    from safetensors.torch import save_file

    src, dst = Path(src), Path(dst)
    report = progress or (lambda fraction, message: None)
    config_path = src / "config.json"
    if not config_path.is_file():
        raise Qwen1ConversionError(f"no config.json in {src}")
    v1 = json.loads(config_path.read_text(encoding="utf-8"))
    if not is_qwen1_config(v1):
        raise Qwen1ConversionError(f"{src} is not a Qwen v1 checkpoint (model_type is not 'qwen')")
    tiktoken_path = src / TIKTOKEN_FILE
    if not tiktoken_path.is_file():
        raise Qwen1ConversionError(f"{src} lacks {TIKTOKEN_FILE}, the Qwen v1 tokenizer file")
    if dst.exists() and any(dst.iterdir()):
        raise Qwen1ConversionError(f"destination {dst} exists and is not empty")
    qwen2_config_from_qwen1(v1)  # fail on unsupported variants before touching weights
    shards = _weight_shards(src)

    dst.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        weight_map: dict[str, str] = {}
        total_size, dtype = 0, None
        seen: set[str] = set()
        for i, shard in enumerate(shards):
            report(i / (len(shards) + 1), f"converting {shard.name} ({i + 1}/{len(shards)})")
            out_name = (
                "model.safetensors"
                if len(shards) == 1
                else f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            )
            converted: dict[str, torch.Tensor] = {}
            for name, tensor in _iter_tensors(shard):
                for new_name, new_tensor in convert_tensor(name, tensor):
                    if new_name in seen:
                        raise Qwen1ConversionError(f"{new_name} appears twice in {src}")
                    seen.add(new_name)
                    converted[new_name] = new_tensor.contiguous()
                    weight_map[new_name] = out_name
                    total_size += new_tensor.numel() * new_tensor.element_size()
                    if new_name == "model.embed_tokens.weight":
                        dtype = str(new_tensor.dtype).removeprefix("torch.")
            save_file(converted, str(work / out_name), metadata={"format": "pt"})
            del converted
        _check_complete(seen, v1)
        if len(shards) > 1:
            index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
            (work / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))

        report(len(shards) / (len(shards) + 1), "writing config and tokenizer")
        config = qwen2_config_from_qwen1(v1, dtype=dtype)
        (work / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        generation = {
            "eos_token_id": [SPECIAL_START_ID + 2, SPECIAL_START_ID],  # <|im_end|>, <|endoftext|>
            "pad_token_id": SPECIAL_START_ID,
            "bos_token_id": None,
        }
        (work / "generation_config.json").write_text(json.dumps(generation, indent=2))
        tokenizer_from_tiktoken(tiktoken_path, dst=work, model_max_length=context_length(v1))
        for extra in ("LICENSE", "NOTICE", "quantize_config.json"):
            if (src / extra).is_file():
                shutil.copy2(src / extra, work / extra)
        marker = {"source": str(src), "converter_version": CONVERTER_VERSION}
        (work / MARKER_FILE).write_text(json.dumps(marker, indent=2))
        if dst.exists():
            dst.rmdir()  # empty, checked above
        os.replace(work, dst)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report(1.0, "converted")
    return dst


def _check_complete(seen: set[str], v1: dict[str, Any]) -> None:
    """Every Qwen2 weight must have come from somewhere; name the first missing one."""
    needed = ["model.embed_tokens.weight", "model.norm.weight"]
    if not v1.get("tie_word_embeddings", False):
        needed.append("lm_head.weight")
    quantized = bool(v1.get("quantization_config"))
    linear = ("qweight",) if quantized else ("weight",)
    for layer in range(int(v1["num_hidden_layers"])):
        p = f"model.layers.{layer}"
        needed += [f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight"]
        needed += [f"{p}.self_attn.{x}_proj.bias" for x in "qkv"]
        for proj in (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ):
            needed += [f"{p}.{proj}.{kind}" for kind in linear]
    for name in needed:
        if name not in seen:
            raise Qwen1ConversionError(f"the v1 checkpoint has no tensor for {name}")


__all__ = [
    "CHATML_TEMPLATE",
    "CONVERTER_VERSION",
    "ENDOFTEXT",
    "IM_END",
    "IM_START",
    "NTK_FACTOR",
    "QWEN1_PATTERN",
    "SPECIAL_START_ID",
    "SPECIAL_TOKENS",
    "Qwen1ConversionError",
    "context_length",
    "convert_checkpoint",
    "convert_tensor",
    "is_qwen1_config",
    "is_qwen1_dir",
    "nfc",
    "qwen2_config_from_qwen1",
    "tokenizer_from_tiktoken",
]
