"""Re-scoring a saved report: the model's answers stay, their checks follow the case file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.cases import CaseFileError, parse_case
from eval.report import report_json
from eval.rescore import main, rescore
from eval.runner import evaluate
from eval.switches import EvalSetting
from llm.scripted import ScriptedBackend
from tests.test_eval_harness import final, react, registry, settings


def case(answer: dict, cid: str = "calc") -> object:
    data = {"id": cid, "query": "What is 37 times 89?", "expected_tool": "calculator"}
    data |= {"expected_arguments": {"expression": "37*89"}, "answer": answer}
    return parse_case(data)


def report(answer_text: str) -> dict:
    script = [react("calculator", {"expression": "37*89"}), final(answer_text)]
    s = EvalSetting("s", settings())
    results = evaluate(ScriptedBackend(script), registry(), [case({"number": 3293})], s)
    return report_json([(s, results)], {"model": "scripted", "date": results[0].started})


def test_a_changed_spec_rescores_the_saved_answer() -> None:
    saved = report("About 3293 (rounded: 3300).")
    assert saved["runs"][0]["summary"]["answer_right_rate"] == 1.0
    stricter = rescore(saved, [case({"number": 3293, "none": ["3300"]})])
    (run,) = stricter["runs"]
    assert run["cases"][0]["answer_right"] is False
    assert run["cases"][0]["answer_problems"] == ["wrong '3300'"]
    assert run["summary"]["answer_right_rate"] == 0.0
    assert saved["runs"][0]["summary"]["answer_right_rate"] == 1.0  # the input is untouched


def test_old_reports_get_their_clock_from_the_report_start() -> None:
    """No per-turn times recorded: the report's start plus the turns' seconds stand in."""
    saved = report("It is 10:00.")
    data = saved["runs"][0]["cases"][0]
    del data["started"], data["ended"]
    saved["date"] = "2026-12-02T02:00:00+00:00"  # 10:00 in Shanghai
    spec = {"clock": "Asia/Shanghai", "kind": "time"}
    assert rescore(saved, [case(spec)])["runs"][0]["cases"][0]["answer_right"] is True
    saved["date"] = "2026-12-02T03:00:00+00:00"
    assert rescore(saved, [case(spec)])["runs"][0]["cases"][0]["answer_right"] is False


def test_cases_missing_from_the_file_are_refused() -> None:
    with pytest.raises(CaseFileError, match="not in the case file"):
        rescore(report("3293"), [case({"number": 1}, cid="other")])


def test_rescore_command_rewrites_in_place(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report("3293")), encoding="utf-8")
    cases = tmp_path / "cases.jsonl"
    line = {"id": "calc", "query": "q", "expected_tool": None, "answer": {"number": 1}}
    cases.write_text(json.dumps(line), encoding="utf-8")
    assert main([str(path), "--cases", str(cases)]) == 0
    rescored = json.loads(path.read_text(encoding="utf-8"))
    assert rescored["runs"][0]["summary"]["answer_right_rate"] == 0.0 and "rescored" in rescored
