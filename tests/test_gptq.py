"""GPTQ Int4 on CPU with gptqmodel: quantise a tiny Qwen2, load it through the project's loader,
and convert a Qwen v1 Int4 (fused c_attn) checkpoint to the same logits.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from llm import gptq, qwen1

# Group size 32 needs in-features divisible by 32; kv heads = heads so a v1 layout exists.
TINY = dict(hidden_size=128, intermediate_size=256, num_attention_heads=4, num_key_value_heads=4)
PROMPT = "Thought: employee database calculator"


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> tuple[Path, Path]:
    """(fp32 source dir, 4-bit GPTQ dir), quantised on CPU once (~1 min incl. kernel compile)."""
    if importlib.util.find_spec("gptqmodel") is None:
        pytest.skip("gptqmodel is not installed")
    from tests.tiny_models import build_tiny_qwen2

    root = tmp_path_factory.mktemp("gptq")
    src = build_tiny_qwen2(root / "fp32", seed=3, **TINY)
    # gptqmodel 7.6 sizes its CPU pool as (cores + 1) // 2 but its loader wants 2 workers:
    # on a 2-core machine quantize() fails unless this is raised (loading is unaffected).
    old = os.environ.get("GPTQMODEL_CPU_WORKERS")
    os.environ["GPTQMODEL_CPU_WORKERS"] = "2"
    try:
        from gptqmodel import GPTQModel, QuantizeConfig
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(src))
        texts = [
            f"Thought: employee {i} database answer {i * 7}. Observation: ok" for i in range(16)
        ]
        calibration = [
            {"input_ids": ids, "attention_mask": [1] * len(ids)}
            for ids in (tok(t).input_ids for t in texts)
        ]
        config = QuantizeConfig(bits=4, group_size=32, desc_act=False, sym=True)
        model = GPTQModel.load(str(src), config, device="cpu")
        model.quantize(calibration, batch_size=1, calibration_data_min_length=4)
        model.save(str(root / "int4"))
    finally:
        if old is None:
            os.environ.pop("GPTQMODEL_CPU_WORKERS", None)
        else:
            os.environ["GPTQMODEL_CPU_WORKERS"] = old
    return src, root / "int4"


def _load(path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), **gptq.gptq_load_kwargs("cpu")).eval()


def _ids(path: Path) -> torch.Tensor:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))(PROMPT, return_tensors="pt").input_ids


@pytest.mark.slow
def test_quantised_model_is_int4_and_close_to_fp32(quantized):
    from transformers import AutoModelForCausalLM

    src, int4 = quantized
    config = json.loads((int4 / "config.json").read_text())
    assert gptq.is_gptq_config(config) and config["quantization_config"]["bits"] == 4
    model = _load(int4)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert not isinstance(q_proj, torch.nn.Linear)  # replaced by a gptqmodel kernel
    assert q_proj.qweight.dtype == torch.int32
    reference = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32).eval()
    ids = _ids(src)
    with torch.no_grad():
        got, want = model(ids).logits[0, -1].float(), reference(ids).logits[0, -1]
    cosine = torch.nn.functional.cosine_similarity(got, want, dim=0).item()
    assert cosine > 0.95, cosine
    assert not torch.equal(got, want)  # it really is a different (quantised) model


def _generate_through_loader(path: Path, cache: Path, monkeypatch) -> None:
    """load_model(path, device="cpu") streams a short greedy answer without error."""
    from llm.loader import load_model
    from llm.types import GenerationConfig, GenerationRequest, drain

    monkeypatch.setenv("QWEN_DEMO_CACHE", str(cache))  # where the loader converts v1 dirs
    backend = load_model(str(path), device="cpu")
    try:
        request = GenerationRequest(
            messages=[{"role": "user", "content": "Zhang San birthday?"}],
            config=GenerationConfig(max_new_tokens=6, temperature=0),
        )
        end = drain(backend.stream(request))
        assert end.error is None, end
        assert 1 <= end.completion_tokens <= 6
    finally:
        backend.close()


@pytest.mark.slow
def test_loader_loads_and_generates_gptq(quantized, tmp_path, monkeypatch):
    _generate_through_loader(quantized[1], tmp_path / "cache", monkeypatch)


# v1 Int4 layout: q|k|v fused into c_attn along the output columns.
_V1_NAMES = {
    "self_attn.o_proj": "attn.c_proj",
    "mlp.up_proj": "mlp.w1",
    "mlp.gate_proj": "mlp.w2",
    "mlp.down_proj": "mlp.c_proj",
    "input_layernorm": "ln_1",
    "post_attention_layernorm": "ln_2",
}


def _to_v1_int4(qwen2: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """Fuse a GPTQ Qwen2 state dict into v1 Int4 names (what Qwen-7B-Chat-Int4 ships)."""
    out = {
        "transformer.wte.weight": qwen2["model.embed_tokens.weight"],
        "transformer.ln_f.weight": qwen2["model.norm.weight"],
        "lm_head.weight": qwen2.get("lm_head.weight", qwen2["model.embed_tokens.weight"]).clone(),
    }
    for i in range(layers):
        p, v = f"model.layers.{i}", f"transformer.h.{i}"
        for kind, dim in (("qweight", 1), ("scales", 1), ("qzeros", 1), ("bias", 0)):
            parts = [qwen2[f"{p}.self_attn.{x}_proj.{kind}"] for x in "qkv"]
            out[f"{v}.attn.c_attn.{kind}"] = torch.cat(parts, dim=dim)
        g_idx = qwen2[f"{p}.self_attn.q_proj.g_idx"]
        assert all(torch.equal(g_idx, qwen2[f"{p}.self_attn.{x}_proj.g_idx"]) for x in "kv")
        out[f"{v}.attn.c_attn.g_idx"] = g_idx
        for name, tensor in qwen2.items():
            for new, old in _V1_NAMES.items():
                if name.startswith(f"{p}.{new}."):
                    out[f"{v}.{old}.{name.rsplit('.', 1)[1]}"] = tensor
    return out


@pytest.mark.slow
def test_qwen1_int4_checkpoint_converts_to_same_logits(
    quantized, qwen_v1_dir, tmp_path, monkeypatch
):
    from safetensors.torch import load_file, save_file

    src, int4 = quantized
    q2_config = json.loads((int4 / "config.json").read_text())
    qc = q2_config["quantization_config"]
    small_vocab, qwen1_vocab = q2_config["vocab_size"], 151936  # v1's size: its specials exist
    v1_dir = tmp_path / "Qwen-Tiny-Chat-Int4"
    v1_dir.mkdir()
    v1_config = json.loads((qwen_v1_dir / "config.json").read_text())
    v1_config.update(
        hidden_size=TINY["hidden_size"],
        num_attention_heads=TINY["num_attention_heads"],
        kv_channels=TINY["hidden_size"] // TINY["num_attention_heads"],
        intermediate_size=2 * TINY["intermediate_size"],
        num_hidden_layers=q2_config["num_hidden_layers"],
        vocab_size=qwen1_vocab,
        seq_length=2048,
        rotary_emb_base=q2_config["rope_parameters"]["rope_theta"],
        layer_norm_epsilon=q2_config["rms_norm_eps"],
        fp16=True,
        # auto-gptq style, as the Qwen *-Int4 repos have it (no checkpoint_format / meta)
        quantization_config={
            "bits": 4,
            "group_size": qc["group_size"],
            "damp_percent": 0.01,
            "desc_act": qc["desc_act"],
            "static_groups": False,
            "sym": qc["sym"],
            "true_sequential": True,
            "model_name_or_path": None,
            "model_file_base_name": "model",
            "quant_method": "gptq",
        },
    )
    (v1_dir / "config.json").write_text(json.dumps(v1_config))
    shutil.copy(qwen_v1_dir / "qwen.tiktoken", v1_dir / "qwen.tiktoken")
    fused = _to_v1_int4(load_file(str(int4 / "model.safetensors")), q2_config["num_hidden_layers"])
    for name in ("transformer.wte.weight", "lm_head.weight"):  # unquantised: pad the rows
        extra = torch.randn(qwen1_vocab - small_vocab, TINY["hidden_size"]).to(fused[name].dtype)
        fused[name] = torch.cat([fused[name], extra])
    save_file(fused, str(v1_dir / "model.safetensors"), metadata={"format": "pt"})

    converted = qwen1.convert_checkpoint(v1_dir, tmp_path / "converted")
    assert gptq.is_gptq_config(json.loads((converted / "config.json").read_text()))
    ids = _ids(src)  # token ids of the tiny vocab; the converted dir carries the v1 tokenizer
    with torch.no_grad():
        want = _load(int4)(ids).logits
        got = _load(converted)(ids).logits[..., :small_vocab]
    assert (got - want).abs().max().item() < 1e-5
    _generate_through_loader(v1_dir, tmp_path / "cache", monkeypatch)

    # A split at the wrong place (v and q swapped) must not pass unnoticed.
    wrong = dict(fused)
    for i in range(q2_config["num_hidden_layers"]):
        for kind in ("qweight", "scales", "qzeros", "bias"):
            name = f"transformer.h.{i}.attn.c_attn.{kind}"
            dim = 0 if kind == "bias" else 1
            q, k, v = wrong[name].chunk(3, dim=dim)
            wrong[name] = torch.cat([v, k, q], dim=dim)
    save_file(wrong, str(v1_dir / "model.safetensors"), metadata={"format": "pt"})
    bad = qwen1.convert_checkpoint(v1_dir, tmp_path / "wrong")
    with torch.no_grad():
        assert (_load(bad)(ids).logits[..., :small_vocab] - want).abs().max().item() > 1e-3


# ---------------------------------------------------------------- gptq_problem / kwargs


def test_gptq_problem_none_on_cpu_when_backend_installed():
    if importlib.util.find_spec("gptqmodel") is None:
        pytest.skip("gptqmodel is not installed")
    assert gptq.gptq_problem("cpu") is None


def test_gptq_problem_when_gptqmodel_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gptqmodel", None)  # makes `import gptqmodel` fail
    message = gptq.gptq_problem("cpu")
    assert message is not None
    assert "pip install gptqmodel==7.6.0" in message


def test_gptq_problem_when_optimum_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optimum" else real(name, *a)
    )
    assert "pip install optimum==2.3.0" in gptq.gptq_problem("cpu")


def test_gptq_problem_devices():
    assert "not on 'mps'" in gptq.gptq_problem("mps")
    if not torch.cuda.is_available():
        assert "sees no GPU" in gptq.gptq_problem("cuda")


def test_gptq_load_kwargs():
    assert gptq.gptq_load_kwargs("cpu") == {"dtype": torch.float32, "device_map": "cpu"}
    assert gptq.gptq_load_kwargs("cpu", dtype=torch.float16)["dtype"] == torch.float16
    assert gptq.gptq_load_kwargs("cuda:1") == {"dtype": torch.float16, "device_map": "cuda:1"}
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert gptq.gptq_load_kwargs("auto")["device_map"] == expected
    with pytest.raises(ValueError, match="mps"):
        gptq.gptq_load_kwargs("mps")


def test_is_gptq_config():
    assert gptq.is_gptq_config({"quantization_config": {"quant_method": "GPTQ", "bits": 4}})
    assert not gptq.is_gptq_config({"quantization_config": {"quant_method": "awq"}})
    assert not gptq.is_gptq_config({"model_type": "qwen2"})
