from __future__ import annotations

import json
import shutil

import pytest
import torch

from llm import loader
from llm.loader import (
    ModelLoadError,
    choose_dtype,
    estimate_params_b,
    load_model,
    plan_load,
    read_config,
)


def test_loads_local_dir(tiny_model_dir):
    backend = load_model(str(tiny_model_dir), device="auto")
    info = backend.info
    assert info.backend == "transformers" and info.family == "qwen2"
    assert info.supports_native_tools
    assert info.source == str(tiny_model_dir.resolve())
    expected = sum(p.numel() * p.element_size() for p in backend.model.parameters()) / 1e9
    assert info.memory_gb == pytest.approx(expected, abs=1e-4)
    assert backend.model.dtype == torch.float32  # never bf16 on CPU
    if not torch.cuda.is_available():
        assert info.device == "cpu"


def test_dtype_rules(monkeypatch):
    """The GPU rule is decided here with the device's bf16 support passed in: no GPU needed."""
    assert choose_dtype("cpu") == torch.float32
    assert choose_dtype("cpu", bf16_supported=True) == torch.float32  # never bf16 on CPU
    assert choose_dtype("cpu", "gptq") == torch.float32
    for device in ("cuda", "cuda:1"):
        assert choose_dtype(device, bf16_supported=True) == torch.bfloat16
        assert choose_dtype(device, bf16_supported=False) == torch.float16
        assert choose_dtype(device, "gptq", bf16_supported=True) == torch.float16
    # without the argument the GPU itself is asked
    for supported, want in ((True, torch.bfloat16), (False, torch.float16)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert choose_dtype("cuda") == want


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing", "no such directory"),
        (lambda d: d, "no config.json"),
        (lambda d: (d / "x.txt").write_text("x") and d / "x.txt", "is a file"),
    ],
)
def test_bad_paths(tmp_path, make, message):
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(make(tmp_path)))


def test_empty_source():
    with pytest.raises(ModelLoadError, match="no model given"):
        plan_load("  ")


def test_config_without_weights_or_tokenizer(tmp_path, tiny_model_dir):
    shutil.copy(tiny_model_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        load_model(str(tmp_path))


def test_bad_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not readable JSON"):
        read_config(tmp_path)


def test_corrupt_weights_fail_cleanly(tmp_path, tiny_model_dir):
    shutil.copytree(tiny_model_dir, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage, not safetensors")
    plan = plan_load(str(tmp_path / "m"))  # the cheap checks pass...
    with pytest.raises(ModelLoadError, match="could not load"):
        loader.load_plan(plan)  # ...the real load fails with a message


def test_hub_id_offline_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError, match="not in the local cache and no hub is reachable"):
        plan_load("someone/not-a-cached-model")


def test_hub_id_from_local_cache(monkeypatch, tmp_path, tiny_model_dir):
    # Lay the tiny checkpoint out as the HF cache does; loading by hub id must then work offline.
    repo = tmp_path / "models--someone--tiny"
    snap = repo / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    backend = load_model("someone/tiny", device="cpu")
    assert backend.info.source == "someone/tiny" and backend.info.name == "someone/tiny"


def test_registry_model_without_gpu_is_refused_before_loading(monkeypatch):
    monkeypatch.setattr(loader, "gpu_memory_gb", lambda: None)
    import llm.registry as registry

    monkeypatch.setattr(registry, "gpu_memory_gb", lambda: None)
    with pytest.raises(ModelLoadError, match="needs a GPU"):
        plan_load("Qwen/Qwen-14B-Chat")
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        plan_load("qwen-7b-chat", device="cuda")


def test_unknown_device():
    with pytest.raises(ModelLoadError, match="unknown device"):
        plan_load("x", device="tpu")


def test_cpu_int8(tiny_model_dir):
    plain = load_model(str(tiny_model_dir), device="cpu")
    quant = load_model(str(tiny_model_dir), device="cpu", cpu_int8=True)
    assert quant.info.name.endswith("+ int8")
    kinds = {type(m).__module__ for m in quant.model.modules()}
    assert any("quantized" in k for k in kinds)
    assert quant.info.memory_gb < plain.info.memory_gb
    from llm.types import GenerationConfig, GenerationRequest, drain

    end = drain(
        quant.stream(
            GenerationRequest(
                messages=[{"role": "user", "content": "hi"}],
                config=GenerationConfig(max_new_tokens=4, temperature=0),
            )
        )
    )
    assert end.completion_tokens == 4


def test_qwen1_checkpoint_is_routed(tmp_path, qwen_v1_dir):
    shutil.copy(qwen_v1_dir / "config.json", tmp_path / "config.json")
    shutil.copy(qwen_v1_dir / "qwen.tiktoken", tmp_path / "qwen.tiktoken")
    (tmp_path / "model.safetensors").write_bytes(b"")
    plan = plan_load(str(tmp_path), check_memory=False)
    assert (plan.fmt, plan.family) == ("qwen1", "qwen1")


def test_gptq_checkpoint_needs_backend(tmp_path, tiny_model_dir, monkeypatch):
    shutil.copytree(tiny_model_dir, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 128}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(loader, "_gptq_problem", lambda device: "needs the gptqmodel package")
    with pytest.raises(ModelLoadError, match="gptqmodel"):
        plan_load(str(tmp_path / "m"))
    monkeypatch.setattr(loader, "_gptq_problem", lambda device: None)
    assert plan_load(str(tmp_path / "m")).fmt == "gptq"


def test_gguf_file_is_routed(tmp_path):
    gguf = tmp_path / "model-q4.gguf"
    gguf.write_bytes(b"GGUF")
    plan = plan_load(str(gguf))
    assert plan.fmt == "gguf" and plan.gguf_file == gguf.resolve()


def test_params_estimate(tiny_model_dir, qwen_v1_dir):
    backend = load_model(str(tiny_model_dir), device="cpu")
    real = backend.model.num_parameters() / 1e9
    est = estimate_params_b(read_config(tiny_model_dir))
    assert est == pytest.approx(real, rel=0.05)
    v1 = json.loads((qwen_v1_dir / "config.json").read_text())
    assert estimate_params_b(v1) == pytest.approx(72, rel=0.1)  # the example is Qwen-72B


def test_memory_refusal_for_unlisted_model(tmp_path, tiny_model_dir, monkeypatch):
    shutil.copytree(tiny_model_dir, tmp_path / "m")
    monkeypatch.setattr(loader, "ram_available_gb", lambda: 0.5)
    monkeypatch.setattr(loader, "estimate_params_b", lambda config: 7.0)
    with pytest.raises(ModelLoadError, match="GB RAM, you have 0.5 GB"):
        plan_load(str(tmp_path / "m"), device="cpu")
