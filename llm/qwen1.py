"""Qwen v1 (Qwen-7B-Chat, Qwen-14B-Chat and their Int4) as native Qwen2 checkpoints.

v1 checkpoints ship remote code written for transformers 4.32, which no longer imports on
transformers 5. The v1 architecture is Qwen2's with different tensor names: a fused c_attn
(q|k|v stacked along the output dim, with bias), key/value heads = heads, and a SwiGLU MLP
whose w2 is the gated (SiLU) branch. Renaming and splitting the tensors gives a
Qwen2ForCausalLM with identical logits; the tiktoken vocabulary becomes a fast tokenizer with
identical ids. Not carried over: logn attention and dynamic NTK, which v1 applies only beyond
seq_length, so the converted config caps max_position_embeddings at seq_length.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llm.cache import cache_dir
from llm.chatml import CHATML_TEMPLATE
from llm.errors import Qwen1ConversionError

ProgressFn = Callable[[float | None, str], None]
"""progress(fraction_done, message): llm.loader's Progress and gradio's gr.Progress shape."""

CONVERTER_VERSION = 1

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_START_ID = 151643
# v1 reserves 205 extra specials right after the ChatML ones; keep them so ids stay identical.
SPECIAL_TOKENS: tuple[str, ...] = (ENDOFTEXT, IM_START, IM_END) + tuple(
    f"<|extra_{i}|>" for i in range(205)
)
# v1's split pattern: like cl100k's but digits are split one by one (\p{N}, not \p{N}{1,3}).
QWEN1_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
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


# --------------------------------------------------------------------------- tokenizer


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_TOKENIZER_JSON: dict[str, str] = {}  # sha256 of qwen.tiktoken -> tokenizer.json text


def _tokenizer_json(tiktoken_path: Path) -> str:
    """The fast-tokenizer JSON for a qwen.tiktoken file, from memory, disk cache or built."""
    sha = _sha256(tiktoken_path)
    if sha in _TOKENIZER_JSON:
        return _TOKENIZER_JSON[sha]
    cached = cache_dir() / "qwen1-tokenizer" / sha[:16] / "tokenizer.json"
    if cached.is_file():
        text = cached.read_text(encoding="utf-8")
    else:
        from tokenizers import normalizers
        from transformers.convert_slow_tokenizer import TikTokenConverter

        try:
            tok = TikTokenConverter(
                str(tiktoken_path), pattern=QWEN1_PATTERN, extra_special_tokens=list(SPECIAL_TOKENS)
            ).converted()
        except Exception as exc:  # a corrupt or foreign file: say which one
            raise Qwen1ConversionError(
                f"{tiktoken_path} is not a readable tiktoken BPE file: {exc}"
            ) from exc
        tok.normalizer = normalizers.NFC()  # v1 NFC-normalises text before encoding
        first = tok.token_to_id(ENDOFTEXT)
        if first != SPECIAL_START_ID:
            raise Qwen1ConversionError(
                f"{tiktoken_path} has {first} ordinary tokens, expected {SPECIAL_START_ID}: "
                "not the Qwen v1 vocabulary"
            )
        text = tok.to_str()
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only cache only costs the rebuild next time
    _TOKENIZER_JSON[sha] = text
    return text


def tokenizer_from_tiktoken(
    tiktoken_path: str | Path, dst: str | Path | None = None, model_max_length: int = 8192
):
    """A fast tokenizer with v1's exact ids, ChatML specials and CHATML_TEMPLATE.

    Building from the BPE file takes a few seconds, so the result is cached (in memory and
    under cache_dir()) by the file's SHA-256. With dst, it is also saved there.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tiktoken_path = Path(tiktoken_path)
    if not tiktoken_path.is_file():
        raise Qwen1ConversionError(f"Qwen v1 tokenizer file not found: {tiktoken_path}")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(tiktoken_path)),
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML_TEMPLATE
    if dst is not None:
        fast.save_pretrained(str(dst))
    return fast


def nfc(text: str) -> str:
    """v1 normalises text to NFC before encoding; exposed for callers comparing strings."""
    return unicodedata.normalize("NFC", text)


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
        # logn attention / dynamic NTK are what let v1 go past seq_length; we do not have them.
        "max_position_embeddings": seq_length,
        "rms_norm_eps": float(v1.get("layer_norm_epsilon", 1e-6)),
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": float(v1.get("rotary_emb_base", v1.get("rope_theta", 10000))),
        },
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
        max_len = int(config["max_position_embeddings"])
        tokenizer_from_tiktoken(tiktoken_path, dst=work, model_max_length=max_len)
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
