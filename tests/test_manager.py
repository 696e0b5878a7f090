from __future__ import annotations

import gc
import json
import shutil
import threading
import weakref

import pytest

from llm.loader import ModelLoadError
from llm.manager import ModelBusyError, ModelManager
from llm.sources import open_backend
from llm.types import GenerationConfig, GenerationRequest, StopReason, drain

SHORT = GenerationConfig(max_new_tokens=3, temperature=0)


def ask() -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "hi"}], config=SHORT)


@pytest.fixture(scope="module")
def second_model_dir(tmp_path_factory):
    from tests.tiny_models import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-b"), seed=1)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(["Final Answer: hello"]))
    return path


def test_load_and_generate(tiny_model_dir):
    mgr = ModelManager()
    assert mgr.backend is None and mgr.info is None and not mgr.busy
    seen = []
    info = mgr.load(str(tiny_model_dir), progress=lambda f, m: seen.append((f, m)))
    assert info is mgr.info and info.backend == "transformers"
    assert seen[-1][0] == 1.0 and "Loaded" in seen[-1][1]
    with mgr.generating() as backend:
        assert mgr.busy
        assert drain(backend.stream(ask())).completion_tokens == 3
    assert not mgr.busy


def test_swap_releases_old_model(tiny_model_dir, second_model_dir):
    mgr = ModelManager(device="cpu")
    mgr.load(str(tiny_model_dir))
    old_backend = mgr.backend
    old_model = weakref.ref(old_backend.model)
    del old_backend
    info = mgr.load(str(second_model_dir))
    gc.collect()
    assert old_model() is None  # memory released, not two models resident
    assert info.source == str(second_model_dir.resolve())
    mgr.unload()
    assert mgr.backend is None and mgr.info is None


def test_old_model_freed_even_if_backend_is_still_referenced(tiny_model_dir, script):
    mgr = ModelManager()
    mgr.load(str(tiny_model_dir))
    kept = mgr.backend  # e.g. a UI object still holding the backend
    model = weakref.ref(kept.model)
    mgr.load(f"scripted:{script}")
    gc.collect()
    assert model() is None
    assert drain(kept.stream(ask())).reason == StopReason.ERROR  # says "unloaded"


def test_swap_refused_while_generating(tiny_model_dir, second_model_dir):
    mgr = ModelManager()
    mgr.load(str(tiny_model_dir))
    with mgr.generating():
        with pytest.raises(ModelBusyError, match="being generated"):
            mgr.load(str(second_model_dir))
        with pytest.raises(ModelBusyError):
            mgr.unload()
    assert mgr.info.source == str(tiny_model_dir.resolve())


def test_generation_refused_while_loading(tiny_model_dir):
    mgr = ModelManager()
    errors = []

    def progress(fraction, message):
        if fraction == 0.3:  # inside the load
            try:
                with mgr.generating():
                    pass
            except ModelBusyError as exc:
                errors.append(exc)
            try:
                mgr.load(str(tiny_model_dir))
            except ModelBusyError as exc:
                errors.append(exc)

    mgr.load(str(tiny_model_dir), progress=progress)
    assert len(errors) == 2 and "loaded" in str(errors[0])
    assert not mgr.loading


def test_generating_without_model():
    with pytest.raises(ModelLoadError, match="No model"):
        with ModelManager().generating():
            pass


def test_failed_preflight_keeps_previous_model(tiny_model_dir, tmp_path):
    mgr = ModelManager()
    mgr.load(str(tiny_model_dir))
    backend = mgr.backend
    for bad in [str(tmp_path / "nope"), str(tmp_path), "scripted:/no/such.json"]:
        with pytest.raises(ModelLoadError):
            mgr.load(bad)
        assert mgr.backend is backend  # never unloaded: the cheap checks failed first
    with mgr.generating() as b:
        assert drain(b.stream(ask())).completion_tokens == 3


def test_failed_real_load_reloads_previous(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    mgr = ModelManager()
    mgr.load(str(tiny_model_dir))
    with pytest.raises(ModelLoadError, match="was loaded again"):
        mgr.load(str(broken))
    assert mgr.info.source == str(tiny_model_dir.resolve())
    assert mgr.source == str(tiny_model_dir)
    with mgr.generating() as b:
        assert drain(b.stream(ask())).completion_tokens == 3


def test_failed_first_load_leaves_nothing(tmp_path, tiny_model_dir):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    mgr = ModelManager()
    with pytest.raises(ModelLoadError, match="could not load"):
        mgr.load(str(broken))
    assert mgr.backend is None and not mgr.loading


def test_concurrent_generations_block_swap(tiny_model_dir, second_model_dir):
    mgr = ModelManager()
    mgr.load(str(tiny_model_dir))
    inside, release = threading.Event(), threading.Event()

    def turn():
        with mgr.generating():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=turn)
    worker.start()
    inside.wait(10)
    try:
        with pytest.raises(ModelBusyError):
            mgr.load(str(second_model_dir))
    finally:
        release.set()
        worker.join()
    mgr.load(str(second_model_dir))  # fine once the turn is over


def test_sources_scripted_and_errors(script):
    backend = open_backend(f"scripted:{script}")
    assert backend.info.backend == "scripted"
    request = GenerationRequest(messages=[{"role": "user", "content": "hi"}])
    assert drain(backend.stream(request)).text == "Final Answer: hello"
    with pytest.raises(ModelLoadError, match="base_url"):
        open_backend("openai:qwen2.5-7b-instruct")
    with pytest.raises(ModelLoadError, match="not found"):
        open_backend("scripted:/no/such/file.json")


def test_sources_openai(monkeypatch):
    backend = open_backend(
        "openai:Qwen2.5-7B-Instruct", base_url="http://127.0.0.1:9/v1", api_key="k"
    )
    assert backend.info.backend == "openai" and backend.info.family == "qwen2"


def test_manager_swaps_to_scripted_and_back(tiny_model_dir, script):
    mgr = ModelManager()
    mgr.load(f"scripted:{script}")
    assert mgr.info.backend == "scripted"
    mgr.load(str(tiny_model_dir))
    assert mgr.info.backend == "transformers"
