"""Qwen v1 -> Qwen2 conversion: exact logits against an independent v1 forward, real tokenizer.

The tiny v1 checkpoint is written here under v1's tensor names and config format. The
reference forward below is this project's own plain-torch reading of the v1 architecture
(v1's modeling_qwen.py, including its dynamic-NTK alpha), not v1's code: that code does not
import on transformers 5. Compared: logits on 14 tokens, final hidden states up to
seq_length (512 tokens), and past seq_length with dynamic NTK. logn attention is not carried
over, so the reference leaves it out.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from llm import qwen1, qwen1_tokenizer
from llm.chatml import render_chatml

HIDDEN, HEADS, LAYERS, FFN = 32, 4, 2, 96  # v1 intermediate_size is twice the MLP width
VOCAB = 151936  # real v1 vocab, so the real tokenizer's ids all exist


def v1_config(qwen_v1_dir: Path, **overrides) -> dict:
    """The shipped v1 config.json with tiny sizes."""
    config = json.loads((qwen_v1_dir / "config.json").read_text())
    config.update(
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        kv_channels=HIDDEN // HEADS,
        num_hidden_layers=LAYERS,
        intermediate_size=2 * FFN,
        vocab_size=VOCAB,
        seq_length=512,
        max_position_embeddings=512,
        rotary_emb_base=10000,
    )
    config.update(overrides)
    return config


def v1_weights(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random v1-named weights, perturbed so every mapping mistake shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    h, ffn = config["hidden_size"], config["intermediate_size"] // 2

    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    w = {"transformer.wte.weight": rnd(config["vocab_size"], h, scale=1.0)}
    for i in range(config["num_hidden_layers"]):
        p = f"transformer.h.{i}"
        w[f"{p}.ln_1.weight"] = 1 + rnd(h)
        w[f"{p}.attn.c_attn.weight"] = rnd(3 * h, h)
        w[f"{p}.attn.c_attn.bias"] = rnd(3 * h)
        w[f"{p}.attn.c_proj.weight"] = rnd(h, h)
        w[f"{p}.ln_2.weight"] = 1 + rnd(h)
        w[f"{p}.mlp.w1.weight"] = rnd(ffn, h)
        w[f"{p}.mlp.w2.weight"] = rnd(ffn, h)
        w[f"{p}.mlp.c_proj.weight"] = rnd(h, ffn)
        w[f"{p}.attn.rotary_emb.inv_freq"] = torch.zeros(4)  # a buffer some v1 saves carry
    w["transformer.ln_f.weight"] = 1 + rnd(h)
    w["lm_head.weight"] = rnd(config["vocab_size"], h)
    return w


def write_v1_checkpoint(
    directory: Path, qwen_v1_dir: Path, config: dict, weights: dict, fmt: str = "safetensors"
) -> Path:
    """Save like a v1 repo: config, two weight shards + index, qwen.tiktoken, v1 tokenizer cfg."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("generation_config.json", "tokenizer_config.json", "qwen.tiktoken", "LICENSE"):
        shutil.copy(qwen_v1_dir / name, directory / name)
    # Split so a layer's c_attn weight and bias land in different shards.
    names = list(weights)
    cut = names.index("transformer.h.0.attn.c_attn.bias")
    shards = [dict((n, weights[n]) for n in names[:cut]), {n: weights[n] for n in names[cut:]}]
    ext = "safetensors" if fmt == "safetensors" else "bin"
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-00002.{ext}"
        if fmt == "safetensors":
            save_file(shard, str(directory / fname), metadata={"format": "pt"})
        else:
            torch.save(shard, directory / fname)
        weight_map.update(dict.fromkeys(shard, fname))
    index_name = (
        "model.safetensors.index.json" if fmt == "safetensors" else "pytorch_model.bin.index.json"
    )
    (directory / index_name).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return directory


# ---------------------------------------------------------------- independent v1 forward


def _rms(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def v1_ntk_alpha(seq_len: int, seq_length: int) -> float:
    """v1's QWenModel.get_ntk_alpha: 1 up to seq_length, then 3, 7, 15... per doubling."""
    context_value = math.log(seq_len / seq_length, 2) + 1
    return max(2 ** math.ceil(context_value) - 1, 1)


def reference_v1_hidden(
    config: dict, w: dict, ids: torch.Tensor, ntk_alpha: float | None = None
) -> torch.Tensor:
    """v1 forward for one sequence up to ln_f: fused c_attn, full rotary, c_proj(w1 * silu(w2)).

    With use_dynamic_ntk, v1 raises the rope base to base * alpha ** (d / (d - 2)) for the
    whole sequence (alpha from v1_ntk_alpha); ntk_alpha overrides that alpha.
    """
    h, heads, eps = (
        config["hidden_size"],
        config["num_attention_heads"],
        config["layer_norm_epsilon"],
    )
    d = config["kv_channels"]
    t = ids.shape[0]
    if ntk_alpha is None:
        dynamic = config.get("use_dynamic_ntk")
        ntk_alpha = v1_ntk_alpha(t, config["seq_length"]) if dynamic else 1.0
    base = config["rotary_emb_base"] * ntk_alpha ** (d / (d - 2))
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2).float() / d))
    angles = torch.outer(torch.arange(t).float(), inv_freq)
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()
    mask = torch.full((t, t), float("-inf")).triu(1)
    x = w["transformer.wte.weight"][ids]
    for i in range(config["num_hidden_layers"]):
        p = f"transformer.h.{i}"
        a = _rms(x, w[f"{p}.ln_1.weight"], eps)
        qkv = a @ w[f"{p}.attn.c_attn.weight"].T + w[f"{p}.attn.c_attn.bias"]
        q, k, v = (part.view(t, heads, d).transpose(0, 1) for part in qkv.split(h, dim=-1))
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + mask, dim=-1)
        ctx = (att @ v).transpose(0, 1).reshape(t, h)
        x = x + ctx @ w[f"{p}.attn.c_proj.weight"].T
        m = _rms(x, w[f"{p}.ln_2.weight"], eps)
        gated = (m @ w[f"{p}.mlp.w1.weight"].T) * torch.nn.functional.silu(
            m @ w[f"{p}.mlp.w2.weight"].T
        )
        x = x + gated @ w[f"{p}.mlp.c_proj.weight"].T
    return _rms(x, w["transformer.ln_f.weight"], eps)


def reference_v1_logits(config: dict, w: dict, ids: torch.Tensor, **kw) -> torch.Tensor:
    return reference_v1_hidden(config, w, ids, **kw) @ w["lm_head.weight"].T


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def v1_checkpoint(qwen_v1_dir, tmp_path_factory):
    config = v1_config(qwen_v1_dir)
    weights = v1_weights(config)
    src = write_v1_checkpoint(
        tmp_path_factory.mktemp("v1") / "Qwen-Tiny-Chat", qwen_v1_dir, config, weights
    )
    return src, config, weights


@pytest.fixture(scope="module")
def converted(v1_checkpoint, tmp_path_factory):
    src, _, _ = v1_checkpoint
    return qwen1.convert_checkpoint(src, tmp_path_factory.mktemp("out") / "converted")


@pytest.fixture(scope="module")
def tokenizer(qwen_v1_dir):
    return qwen1.tokenizer_from_tiktoken(qwen_v1_dir / "qwen.tiktoken")


NTK_SEQ_LENGTH = 16  # tiny, so sequences past it stay cheap


@pytest.fixture(scope="module")
def ntk_checkpoint(qwen_v1_dir, tmp_path_factory):
    """A v1 checkpoint with dynamic NTK on (as Qwen-7B/14B-Chat ship), converted."""
    config = v1_config(
        qwen_v1_dir,
        seq_length=NTK_SEQ_LENGTH,
        max_position_embeddings=NTK_SEQ_LENGTH,
        use_dynamic_ntk=True,
        use_logn_attn=False,
    )
    weights = v1_weights(config, seed=1)
    root = tmp_path_factory.mktemp("v1-ntk")
    src = write_v1_checkpoint(root / "Qwen-Tiny-NTK", qwen_v1_dir, config, weights)
    return qwen1.convert_checkpoint(src, root / "converted"), config, weights


IDS = torch.tensor([37763, 367, 25, 151644, 872, 198, 108386, 11, 1879, 0, 151645, 42, 7, 99])


def _random_ids(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 151643, (n,), generator=torch.Generator().manual_seed(seed))


def _model(model_dir: Path):
    """A freshly loaded model: transformers' dynamic rope keeps state between calls."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)


def _logits(model_dir: Path, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return _model(model_dir)(ids[None]).logits[0]


def _hidden(model_dir: Path, ids: torch.Tensor) -> torch.Tensor:
    """Final (normed) hidden states: long sequences without a [T, 151936] logits tensor."""
    with torch.no_grad():
        return _model(model_dir).model(ids[None]).last_hidden_state[0]


# ---------------------------------------------------------------- model tests


def test_is_qwen1_config(qwen_v1_dir):
    assert qwen1.is_qwen1_config(json.loads((qwen_v1_dir / "config.json").read_text()))
    assert qwen1.is_qwen1_config({"architectures": ["QWenLMHeadModel"]})
    assert not qwen1.is_qwen1_config({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]})
    assert not qwen1.is_qwen1_config({})


def test_converted_logits_match_v1_reference(v1_checkpoint, converted):
    _, config, weights = v1_checkpoint
    expected = reference_v1_logits(config, weights, IDS)
    got = _logits(converted, IDS)
    assert got.shape == expected.shape == (len(IDS), VOCAB)
    assert expected.abs().max() > 1.0  # the comparison is not between near-zero tensors
    assert (got - expected).abs().max().item() < 1e-5


def test_converted_hidden_states_match_v1_reference_up_to_seq_length(v1_checkpoint, converted):
    """All 512 positions of seq_length: the rotary angles at large positions agree too."""
    _, config, weights = v1_checkpoint
    ids = _random_ids(config["seq_length"])
    expected = reference_v1_hidden(config, weights, ids)
    assert (_hidden(converted, ids) - expected).abs().max().item() < 1e-4


def test_wrong_mlp_mapping_differs(v1_checkpoint, tmp_path, monkeypatch):
    src, config, weights = v1_checkpoint
    swapped = {"w1": "gate_proj", "w2": "up_proj", "c_proj": "down_proj"}
    monkeypatch.setattr(qwen1, "_MLP_RENAMES", swapped)
    wrong = qwen1.convert_checkpoint(src, tmp_path / "wrong")
    diff = (_logits(wrong, IDS) - reference_v1_logits(config, weights, IDS)).abs().max().item()
    assert diff > 1e-2


def test_bin_shards_convert_identically(qwen_v1_dir, v1_checkpoint, converted, tmp_path):
    _, config, weights = v1_checkpoint
    src = write_v1_checkpoint(tmp_path / "bin", qwen_v1_dir, config, weights, fmt="bin")
    out = qwen1.convert_checkpoint(src, tmp_path / "bin-out")
    assert torch.equal(_logits(out, IDS), _logits(converted, IDS))


def test_converted_files(converted):
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["intermediate_size"] == FFN
    assert config["num_key_value_heads"] == HEADS
    assert config["max_position_embeddings"] == 512  # v1 seq_length
    assert config["rope_parameters"] == {"rope_type": "default", "rope_theta": 10000.0}
    assert config["qwen1_source"]["context_length"] == 512  # no dynamic NTK: no more
    generation = json.loads((converted / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [151645, 151643]
    assert generation["pad_token_id"] == 151643
    assert (converted / "LICENSE").is_file()
    assert len(list(converted.glob("model-*.safetensors"))) == 2
    assert not list(converted.parent.glob(".converted.*"))  # the work dir was renamed away


def test_dynamic_ntk_is_carried_into_the_rope_scaling(ntk_checkpoint):
    from transformers import AutoConfig, AutoTokenizer

    converted_dir, _, _ = ntk_checkpoint
    config = json.loads((converted_dir / "config.json").read_text())
    assert config["rope_parameters"] == {
        "rope_type": "dynamic",
        "factor": qwen1.NTK_FACTOR,
        "rope_theta": 10000.0,
    }
    assert config["max_position_embeddings"] == NTK_SEQ_LENGTH  # where NTK starts
    assert config["qwen1_source"]["use_dynamic_ntk"] is True
    assert config["qwen1_source"]["context_length"] == 4 * NTK_SEQ_LENGTH
    assert AutoTokenizer.from_pretrained(str(converted_dir)).model_max_length == 64
    loaded = AutoConfig.from_pretrained(str(converted_dir))
    assert loaded.rope_parameters["rope_type"] == "dynamic"


@pytest.mark.parametrize("length", [NTK_SEQ_LENGTH, 2 * NTK_SEQ_LENGTH, 4 * NTK_SEQ_LENGTH])
def test_dynamic_ntk_logits_match_v1_at_and_past_seq_length(ntk_checkpoint, length):
    """At 1x, 2x and 4x seq_length transformers' alpha (2L/S - 1) equals v1's (1, 3, 7)."""
    converted_dir, config, weights = ntk_checkpoint
    ids = _random_ids(length, seed=length)
    got = _hidden(converted_dir, ids)
    expected = reference_v1_hidden(config, weights, ids)
    assert (got - expected).abs().max().item() < 1e-4
    plain = reference_v1_hidden(config, weights, ids, ntk_alpha=1.0)
    if length > NTK_SEQ_LENGTH:  # the scaling really acts: without it the result differs
        assert (got - plain).abs().max().item() > 1e-2
        logits = _logits(converted_dir, ids)
        assert (logits - reference_v1_logits(config, weights, ids)).abs().max().item() < 1e-4
    else:
        assert (got - plain).abs().max().item() < 1e-4


def test_dynamic_ntk_between_powers_of_two_scales_less_than_v1(ntk_checkpoint):
    """1.5x seq_length: transformers uses alpha 2 where v1 rounds up to 3 (documented)."""
    converted_dir, config, weights = ntk_checkpoint
    length = NTK_SEQ_LENGTH * 3 // 2
    ids = _random_ids(length, seed=7)
    got = _hidden(converted_dir, ids)
    hf_alpha = qwen1.NTK_FACTOR * length / NTK_SEQ_LENGTH - (qwen1.NTK_FACTOR - 1)
    assert (hf_alpha, v1_ntk_alpha(length, NTK_SEQ_LENGTH)) == (2.0, 3)
    ours = reference_v1_hidden(config, weights, ids, ntk_alpha=hf_alpha)
    assert (got - ours).abs().max().item() < 1e-4
    assert (got - reference_v1_hidden(config, weights, ids)).abs().max().item() > 1e-3


def test_generate_with_converted_model_and_tokenizer(v1_checkpoint, converted, qwen_v1_dir):
    """Greedy generate (KV cache, step by step) picks the reference forward's argmax at every
    step, and the tokenizer decodes the new ids as tiktoken does."""
    from transformers import AutoTokenizer

    _, config, weights = v1_checkpoint
    tok = AutoTokenizer.from_pretrained(str(converted))
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "你好, who are you?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt == render_chatml([{"role": "user", "content": "你好, who are you?"}])
    ids = tok(prompt, return_tensors="pt").input_ids
    out = _model(converted).generate(
        ids, max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=151643
    )
    new = out[0, ids.shape[1] :].tolist()
    assert len(new) == 5
    seq = ids[0]
    for token in new:
        assert token == reference_v1_logits(config, weights, seq)[-1].argmax().item()
        seq = torch.cat([seq, torch.tensor([token])])
    assert tok.decode(new) == _tiktoken(qwen_v1_dir).decode(new)


def test_project_loader_converts_and_generates(v1_checkpoint, tmp_path, monkeypatch):
    from llm.loader import load_model
    from llm.types import GenerationConfig, GenerationRequest, drain

    src, _, _ = v1_checkpoint
    monkeypatch.setenv("QWEN_DEMO_CACHE", str(tmp_path / "cache"))
    backend = load_model(str(src), device="cpu")
    try:
        assert backend.info.family == "qwen1"
        request = GenerationRequest(
            messages=[{"role": "user", "content": "你好"}],
            config=GenerationConfig(max_new_tokens=4, temperature=0),
        )
        end = drain(backend.stream(request))
        assert end.error is None and 1 <= end.completion_tokens <= 4, end
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rotary_pct": 0.5}, "partial rotary"),
        ({"kv_channels": 4}, "kv_channels"),
        ({"no_bias": False}, "no_bias"),
    ],
)
def test_unsupported_configs_are_refused(qwen_v1_dir, tmp_path, change, message):
    config = v1_config(qwen_v1_dir, **change)
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text(json.dumps(config))
    shutil.copy(qwen_v1_dir / "qwen.tiktoken", src / "qwen.tiktoken")
    with pytest.raises(qwen1.Qwen1ConversionError, match=message):
        qwen1.convert_checkpoint(src, tmp_path / "dst")
    assert not (tmp_path / "dst").exists()


def test_bad_inputs_have_clear_messages(v1_checkpoint, qwen_v1_dir, tmp_path):
    src, config, weights = v1_checkpoint
    with pytest.raises(qwen1.Qwen1ConversionError, match="not a Qwen v1"):
        (tmp_path / "q2").mkdir()
        (tmp_path / "q2" / "config.json").write_text('{"model_type": "qwen2"}')
        qwen1.convert_checkpoint(tmp_path / "q2", tmp_path / "x")
    no_tok = tmp_path / "no-tok"
    shutil.copytree(src, no_tok)
    (no_tok / "qwen.tiktoken").unlink()
    with pytest.raises(qwen1.Qwen1ConversionError, match="qwen.tiktoken"):
        qwen1.convert_checkpoint(no_tok, tmp_path / "x")
    partial = {k: v for k, v in weights.items() if "h.1.mlp.w2" not in k}
    broken = write_v1_checkpoint(tmp_path / "partial", qwen_v1_dir, config, partial)
    with pytest.raises(qwen1.Qwen1ConversionError, match="model.layers.1.mlp.gate_proj"):
        qwen1.convert_checkpoint(broken, tmp_path / "partial-out")
    assert not (tmp_path / "partial-out").exists()
    with pytest.raises(qwen1.Qwen1ConversionError, match="unexpected tensor"):
        qwen1.convert_tensor("transformer.h.0.attn.c_attn.lora_A", torch.zeros(3))


def test_gptq_c_attn_split_layout():
    """qweight/scales split by output column, qzeros by packed column, g_idx shared."""
    h, rows, groups = 16, 4, 2
    qweight = torch.arange(rows * 3 * h, dtype=torch.int32).view(rows, 3 * h)
    qzeros = torch.arange(groups * 3 * h // 8, dtype=torch.int32).view(groups, 3 * h // 8)
    g_idx = torch.tensor([0, 0, 1, 1], dtype=torch.int32)
    out = dict(qwen1.convert_tensor("transformer.h.3.attn.c_attn.qweight", qweight))
    assert torch.equal(out["model.layers.3.self_attn.k_proj.qweight"], qweight[:, h : 2 * h])
    out = dict(qwen1.convert_tensor("transformer.h.3.attn.c_attn.qzeros", qzeros))
    assert torch.equal(out["model.layers.3.self_attn.v_proj.qzeros"], qzeros[:, 2 * h // 8 :])
    out = dict(qwen1.convert_tensor("transformer.h.3.attn.c_attn.g_idx", g_idx))
    assert all(torch.equal(out[f"model.layers.3.self_attn.{p}_proj.g_idx"], g_idx) for p in "qkv")


# ---------------------------------------------------------------- tokenizer tests


def test_tokenizer_ids(tokenizer):
    assert tokenizer("Observation:").input_ids == [37763, 367, 25]
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [
        151643,
        151644,
        151645,
    ]
    assert tokenizer.convert_tokens_to_ids("<|extra_0|>") == 151646
    assert tokenizer.convert_tokens_to_ids("<|extra_204|>") == 151850
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_typed_special_tokens_are_text_when_split(tokenizer):
    ids = tokenizer("<|im_start|>user", split_special_tokens=True).input_ids
    assert 151644 not in ids and len(ids) > 2
    assert tokenizer.decode(ids) == "<|im_start|>user"
    assert tokenizer("<|im_start|>user").input_ids == [151644, 872]


MIXED = (
    'Thought: 我需要查询员工数据库。\nAction: employee_db\nAction Input: {"name": "张三"}\n'
    "Observation: 张三, born 5月5日 (May 5), 业务员 (salesperson)  \n\n  Final Answer: 5月 12345 "
    "naïve café e\u0301 don't I'll 😀 \t tabs"
)


def _tiktoken(qwen_v1_dir: Path):
    """v1's own tokenizer library on the same file: the reference for ids."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(qwen_v1_dir / "qwen.tiktoken"))
    specials = {t: qwen1.SPECIAL_START_ID + i for i, t in enumerate(qwen1.SPECIAL_TOKENS)}
    return tiktoken.Encoding(
        "qwen-v1", pat_str=qwen1.QWEN1_PATTERN, mergeable_ranks=ranks, special_tokens=specials
    )


def test_round_trip_and_ids_match_tiktoken(tokenizer, qwen_v1_dir):
    reference = _tiktoken(qwen_v1_dir)
    text = "<|im_start|>user\n" + MIXED + "<|im_end|>\n"
    expected = reference.encode(qwen1.nfc(text), allowed_special="all")
    ids = tokenizer(text).input_ids
    assert ids == expected
    assert tokenizer.decode(ids) == qwen1.nfc(text)
    assert tokenizer.decode(tokenizer(MIXED).input_ids) == qwen1.nfc(MIXED)


def test_tokenizer_cache_and_save(qwen_v1_dir, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setenv("QWEN_DEMO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(qwen1_tokenizer, "_TOKENIZER_JSON", {})
    qwen1.tokenizer_from_tiktoken(qwen_v1_dir / "qwen.tiktoken", dst=tmp_path / "tok")
    assert list((tmp_path / "cache" / "qwen1-tokenizer").glob("*/tokenizer.json"))
    reloaded = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert reloaded("Observation:").input_ids == [37763, 367, 25]
    assert reloaded.chat_template == qwen1.CHATML_TEMPLATE
    with pytest.raises(qwen1.Qwen1ConversionError, match="not found"):
        qwen1.tokenizer_from_tiktoken(tmp_path / "nope.tiktoken")
