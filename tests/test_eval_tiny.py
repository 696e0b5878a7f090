"""Smoke run of `python -m agent.eval` through a tiny real transformers model: the whole path
(source loading, built-in tools, agent loop, table, JSON) on 2 cases. A random model's words
mean nothing, so only the report's structure is checked."""

from __future__ import annotations

import json
from pathlib import Path

from agent.eval import main

CASES = Path(__file__).resolve().parent.parent / "eval" / "cases.jsonl"


def test_cli_on_tiny_model(tiny_model_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("QWEN_DEMO_CACHE", str(tmp_path / "cache"))  # employee db goes here
    out = tmp_path / "report.json"
    argv = [str(CASES), "--model", str(tiny_model_dir), "--device", "cpu"]
    argv += ["--ids", "zh-calc-01,en-none-01", "--max-new-tokens", "12", "--max-steps", "2"]
    argv += ["--switch", "repair=on,off", "--json", str(out), "--no-progress"]
    assert main(argv) == 0

    table = capsys.readouterr().out
    assert "tool acc" in table and "repair=on" in table and "repair=off" in table
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["source"] == str(tiny_model_dir)
    assert report["case_ids"] == ["zh-calc-01", "en-none-01"]
    assert [r["label"] for r in report["runs"]] == ["repair=on", "repair=off"]
    for run in report["runs"]:
        summary = run["summary"]
        assert summary["cases"] == 2 and summary["errors"] == 0
        for key in ("tool_accuracy", "arguments_rouge_l", "false_positive_rate"):
            assert 0.0 <= summary[key] <= 1.0
        assert 1 <= summary["mean_steps"] <= 2
        assert [c["id"] for c in run["cases"]] == report["case_ids"]
        assert all(c["outcome"] != "error" for c in run["cases"])
