"""`python -m eval` end to end through a tiny real transformers model: source loading,
built-in tools, the agent loop, the answer checks, table, JSON report and plot, on 2 cases.
A random model's words mean nothing, so the report's structure and the consistency of its
numbers are checked, not the values."""

from __future__ import annotations

import json
from pathlib import Path

from eval.cli import main

CASES = Path(__file__).resolve().parent.parent / "eval" / "cases.jsonl"


def test_cli_on_tiny_model(tiny_model_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("QWEN_DEMO_CACHE", str(tmp_path / "cache"))  # employee db goes here
    out, png = tmp_path / "report.json", tmp_path / "report.png"
    argv = [str(CASES), "--model", str(tiny_model_dir), "--device", "cpu"]
    argv += ["--ids", "zh-calc-01,en-clock-01", "--max-new-tokens", "12", "--max-steps", "2"]
    argv += ["--switch", "junk=on,off", "--json", str(out), "--plot", str(png)]
    argv += ["--no-progress", "--misses"]
    assert main(argv) == 0

    printed = capsys.readouterr().out
    head = printed.splitlines()[0]
    assert "right" in head and "junk" in head and "fallback" in head and "tool acc" in head
    assert "junk=on" in printed and "junk=off" in printed
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["source"] == str(tiny_model_dir)
    assert report["case_ids"] == ["zh-calc-01", "en-clock-01"]
    assert [r["label"] for r in report["runs"]] == ["junk=on", "junk=off"]
    for run in report["runs"]:
        summary, cases = run["summary"], run["cases"]
        assert summary["cases"] == 2 and summary["errors"] == 0
        for key in ("tool_accuracy", "arguments_rouge_l", "answer_right_rate", "junk_rate"):
            assert 0.0 <= summary[key] <= 1.0
        assert 1 <= summary["mean_steps"] <= 2
        assert [c["id"] for c in cases] == report["case_ids"]
        for c in cases:
            assert c["outcome"] != "error"
            assert c["answer_right"] is not None  # every shipped case is scored
            assert c["answer_right"] == (not c["answer_problems"])
            assert (c["junk"] is not None) <= (not c["answer_right"])
        assert summary["answer_right_rate"] == sum(c["answer_right"] for c in cases) / 2
        assert summary["junk_rate"] == sum(c["junk"] is not None for c in cases) / 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
