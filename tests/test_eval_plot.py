"""The eval's PNG: written from a report (fresh or loaded from JSON), from older reports
that lack the answer metrics, and through its own command for committed results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.plot import main, write_plot

PNG = b"\x89PNG\r\n\x1a\n"


def summary(**kw) -> dict:
    base = {
        "cases": 4,
        "tool_accuracy": 0.75,
        "arguments_rouge_l": 0.6,
        "false_positive_rate": 0.5,
        "final_answer_rate": 1.0,
        "answer_right_rate": 0.5,
        "junk_rate": 0.25,
        "mean_seconds": 1.5,
    }
    return base | kw


def report(model: str = "tiny", old: bool = False) -> dict:
    runs = [
        {"label": "junk=on", "summary": summary()},
        {"label": "junk=off", "summary": summary(junk_rate=0.5, answer_right_rate=0.25)},
    ]
    if old:  # reports from before the answer checks
        for run in runs:
            del run["summary"]["answer_right_rate"], run["summary"]["junk_rate"]
    return {"model": model, "case_ids": ["a", "b", "c", "d"], "runs": runs}


def test_plot_is_written_from_a_small_report(tmp_path: Path) -> None:
    out = write_plot([report()], tmp_path / "sub" / "plot.png")
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 5000


def test_several_reports_and_old_ones_plot_together(tmp_path: Path) -> None:
    out = write_plot([report("a"), report("b", old=True)], tmp_path / "both.png")
    assert out.read_bytes()[:8] == PNG


def test_an_empty_report_is_refused() -> None:
    with pytest.raises(ValueError, match="no runs"):
        write_plot([{"runs": []}], "never.png")


def test_plot_command(tmp_path: Path, capsys) -> None:
    src = tmp_path / "r.json"
    src.write_text(json.dumps(report()), encoding="utf-8")
    assert main([str(src), "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG
    assert main([str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.png")]) == 2
    assert "error:" in capsys.readouterr().err
