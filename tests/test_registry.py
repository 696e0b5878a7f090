from __future__ import annotations

import pytest

from llm import registry
from llm.registry import (
    DEFAULT_GPU_KEY,
    EMBEDDED_KEY,
    REGISTRY,
    default_source,
    estimate_memory_gb,
    find,
    fit_message,
    lookup,
)

REQUIRED = [
    "Qwen/Qwen-7B-Chat",
    "Qwen/Qwen-7B-Chat-Int4",
    "Qwen/Qwen-14B-Chat",
    "Qwen/Qwen-14B-Chat-Int4",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4",
    "Qwen/Qwen2.5-14B-Instruct-GPTQ-Int4",
]


@pytest.mark.parametrize("hub_id", REQUIRED)
def test_required_hub_ids_present(hub_id):
    spec = find(hub_id)
    assert spec is not None and spec.hub_id == hub_id
    assert find(spec.key) is spec
    assert find(hub_id.lower()) is spec


def test_keys_unique_and_defaults_exist():
    keys = [s.key for s in REGISTRY]
    assert len(keys) == len(set(keys))
    assert find(DEFAULT_GPU_KEY).hub_id == "Qwen/Qwen-7B-Chat"
    embedded = find(EMBEDDED_KEY)
    assert (embedded.fmt, embedded.precision, embedded.size) == ("gguf", "Q4_K_M", "0.5B")
    assert not embedded.needs_gpu
    assert find("qwen2.5-coder-1.5b").size == "1.5B"
    assert find("no-such-model") is None


@pytest.mark.parametrize(
    ("size", "precision", "generation", "key", "family", "fmt"),
    [
        ("7B", "BF16", "qwen1", "qwen-7b-chat", "qwen1", "qwen1"),
        ("7B", "Int4", "qwen1", "qwen-7b-chat-int4", "qwen1", "qwen1"),
        ("14B", "BF16", "qwen1", "qwen-14b-chat", "qwen1", "qwen1"),
        ("14B", "Int4", "qwen1", "qwen-14b-chat-int4", "qwen1", "qwen1"),
        ("7B", "BF16", "qwen2", "qwen2.5-7b-instruct", "qwen2", "hf"),
        ("14B", "Int4", "qwen2", "qwen2.5-14b-instruct-gptq-int4", "qwen2", "gptq"),
        ("0.5B", "Q4_K_M", "qwen1", "qwen2.5-coder-0.5b", "qwen2", "gguf"),
    ],
)
def test_lookup_size_by_precision(size, precision, generation, key, family, fmt):
    spec = lookup(size, precision, generation)
    assert spec is not None
    assert (spec.key, spec.family, spec.fmt) == (key, family, fmt)


def test_lookup_unknown_is_none():
    assert lookup("72B", "BF16") is None


def test_memory_estimates_match_published_needs():
    # Qwen's published generation memory: 7B BF16 ~17 GB, 14B BF16 ~30 GB, Int4 7B ~8 GB.
    assert estimate_memory_gb(find("qwen-7b-chat")) == pytest.approx(17, abs=1)
    assert estimate_memory_gb(find("qwen-14b-chat")) == pytest.approx(30.5, abs=1.5)
    assert estimate_memory_gb(find("qwen-7b-chat-int4")) == pytest.approx(8.2, abs=1)
    assert estimate_memory_gb(find(EMBEDDED_KEY), "cpu") < 4
    # fp32 on CPU costs more than bf16 on a GPU
    spec = find("qwen2.5-7b-instruct")
    assert estimate_memory_gb(spec, "cpu") > estimate_memory_gb(spec, "cuda")


def test_fit_message_small_gpu(monkeypatch):
    monkeypatch.setattr(registry, "gpu_memory_gb", lambda: (10.0, 24.0))
    msg = fit_message(find("qwen-7b-chat"))
    assert msg is not None and "needs ~17 GB GPU, you have 10.0 GB" in msg
    assert fit_message(find("qwen-7b-chat-int4")) is None
    # memory freed by unloading the current model counts
    assert fit_message(find("qwen-7b-chat"), extra_free_gb=10) is None


def test_fit_message_big_gpu(monkeypatch):
    monkeypatch.setattr(registry, "gpu_memory_gb", lambda: (70.0, 80.0))
    assert all(fit_message(spec) is None for spec in REGISTRY)


def test_fit_message_without_gpu(monkeypatch):
    monkeypatch.setattr(registry, "gpu_memory_gb", lambda: None)
    monkeypatch.setattr(registry, "ram_available_gb", lambda: 16.0)
    msg = fit_message(find("qwen-14b-chat"))
    assert msg is not None and "needs a GPU" in msg and "none was found" in msg
    assert fit_message(find(EMBEDDED_KEY)) is None
    msg = fit_message(find("qwen2.5-coder-1.5b"), "cpu")
    assert msg is None
    monkeypatch.setattr(registry, "ram_available_gb", lambda: 2.0)
    msg = fit_message(find(EMBEDDED_KEY))
    assert msg is not None and "GB RAM, you have 2.0 GB" in msg
    msg = fit_message(find("qwen-7b-chat"), "cuda")
    assert msg is not None and "no CUDA GPU" in msg


def test_default_source():
    assert default_source(cpu_only=True) == EMBEDDED_KEY
    assert default_source(cpu_only=False) == DEFAULT_GPU_KEY
