from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Never reach a hub from tests; keep torch to one thread (2 busy cores collapse otherwise).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ARTIFACTS = ROOT / "test-artifacts"
QWEN_V1_DATA = ROOT / "tests" / "data" / "qwen-v1"


@pytest.fixture(autouse=True, scope="session")
def _project_cache(tmp_path_factory) -> Iterator[Path]:
    """$QWEN_DEMO_CACHE -> one temporary directory for the whole session.

    Tests never read or write the user's cache (~/.cache/qwen-agent-demo). Session scope, so
    what is expensive to build there (the assembled GGUF and its checkpoint, converted v1
    checkpoints, tokenizers) is built once per session; it is set before any module or
    session fixture runs, and subprocesses the tests start inherit it.
    """
    from llm.cache import CACHE_ENV

    path = tmp_path_factory.mktemp("qwen-demo-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture(autouse=True)
def _employee_db_per_test(monkeypatch, tmp_path_factory):
    """The default employee database is a fresh file for each test that reaches it."""
    from tools.builtin import employee_db

    made: list[Path] = []

    def per_test_path() -> Path:
        if not made:
            made.append(tmp_path_factory.mktemp("employee-db") / "employees.sqlite")
        return made[0]

    monkeypatch.setattr(employee_db, "default_db_path", per_test_path)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2 checkpoint + ChatML tokenizer, built once per session."""
    from tests.tiny_models import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def qwen_v1_dir() -> Path:
    """The real Qwen v1 tokenizer file, licence and example configs, shipped in tests/data."""
    return QWEN_V1_DATA


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
