"""The UI's model service wrappers over the real ModelManager (scripted sources)."""

from __future__ import annotations

import json

import pytest

from llm.manager import ModelManager
from llm.scripted import ScriptedBackend
from ui.models import FixedModel, LocalModels, NotReadyError


def test_background_load_status_then_ready(tmp_path):
    script = tmp_path / "m.json"
    script.write_text(json.dumps(["Final Answer: hi"]))
    models = LocalModels(ModelManager(device="cpu"))
    with pytest.raises(NotReadyError, match="No model is loaded"):
        models.require_backend("en")
    thread = models.load_in_background(f"scripted:{script}")
    assert "Loading" in models.status("en") or "Loaded" in models.status("en")
    thread.join(10)
    assert "✅ Loaded **scripted: m.json** on cpu" in models.status("en")
    assert "已加载" in models.status("zh")
    with models.generating() as backend:
        assert models.busy and backend.info.name == "scripted: m.json"
    assert not models.busy


def test_failed_load_is_reported_and_keeps_the_old_model(tmp_path):
    script = tmp_path / "m.json"
    script.write_text("[]")
    models = LocalModels(ModelManager(device="cpu"))
    models.load(f"scripted:{script}")
    with pytest.raises(Exception, match="not found"):
        models.load(f"scripted:{tmp_path / 'missing.json'}")
    status = models.status("en")
    assert "Load failed" in status and "not found" in status
    assert "scripted: m.json" in status  # still serving
    models.unload()
    assert models.status("en") == "No model loaded."


def test_busy_swap_is_refused_without_touching_status(tmp_path):
    from llm.manager import ModelBusyError

    script = tmp_path / "m.json"
    script.write_text("[]")
    models = LocalModels(ModelManager(device="cpu"))
    models.load(f"scripted:{script}")
    before = models.status("en")
    with models.generating(), pytest.raises(ModelBusyError):
        models.load(f"scripted:{script}")
    assert models.status("en") == before


def test_fixed_model_counts_generations():
    fixed = FixedModel(ScriptedBackend([], name="fixed"))
    assert fixed.remote and fixed.require_backend() is fixed.backend
    with fixed.generating(), fixed.generating():
        assert fixed.busy
    assert not fixed.busy
    assert "scripted: fixed" in fixed.status("en")
