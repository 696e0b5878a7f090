"""The harness end to end through the real agent loop, with a scripted model whose replies
produce known metrics: a correct call, a wrong tool, a false positive, a turn with no final
answer, a direct answer and a near-miss argument."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.eval import (
    Case,
    EvalSetting,
    build_settings,
    evaluate,
    format_table,
    main,
    parse_switches,
    report_json,
    score_events,
    summarise,
)
from agent.events import AidFired, FinalAnswer, Observation, StepError, ToolCall
from agent.settings import AgentSettings
from llm.scripted import ScriptedBackend
from llm.types import GenerationConfig
from tests.test_agent_support import agent_settings
from tools.registry import ToolRegistry, tool

NEEDS_CALCULATOR = r"\d\s*[-+*/]\s*\d|\btimes\b"  # what the reject aid checks
STAFF = {"张三": "业务员, 5月5日", "李四": "画师, 10月3日"}


@tool
def employee_db(name: str) -> str:
    """Look up an employee's position and birthday.

    Args:
        name: the employee's name
    """
    return STAFF.get(name, f"no employee named {name}")


@tool(needed_when=NEEDS_CALCULATOR)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: e.g. 3*(4+5)
    """
    allowed = set("0123456789+-*/(). ")
    if not set(expression) <= allowed:
        raise ValueError("only arithmetic is allowed")
    return str(eval(expression))  # noqa: S307 - characters checked above


@tool
def clock(timezone: str = "Asia/Shanghai") -> str:
    """The current time.

    Args:
        timezone: an IANA time zone name
    """
    return f"2024-02-01 10:00 {timezone}"


def registry() -> ToolRegistry:
    return ToolRegistry([employee_db, calculator, clock])


def react(action: str, args: dict) -> str:
    return (
        f"Thought: I should use {action}.\nAction: {action}\n"
        f"Action Input: {json.dumps(args, ensure_ascii=False)}\nObservation: made up"
    )


def final(text: str) -> str:
    return f"Thought: I now know the final answer\nFinal Answer: {text}"


CASES = [
    Case("right", "张三的职位是什么？", "employee_db", {"name": "张三"}, lang="zh"),
    Case("wrong-tool", "What is 37 times 89?", "calculator", {"expression": "37*89"}),
    Case("false-pos", "Hello there!", None),
    Case("no-answer", "李四的生日？", "employee_db", {"name": "李四"}),
    Case("direct", "Who wrote Hamlet?", None),
    Case("near-miss", "What is 37 times 89?", "calculator", {"expression": "37*89"}),
]

SCRIPT = [
    # right: correct call, then an answer
    react("employee_db", {"name": "张三"}),
    final("业务员"),
    # wrong-tool: asks the clock instead of the calculator
    react("clock", {"timezone": "Asia/Shanghai"}),
    final("3293"),
    # false-pos: a tool for a greeting
    react("calculator", {"expression": "1+1"}),
    final("Hi!"),
    # no-answer: keeps calling until the step limit (max_steps=2)
    react("employee_db", {"name": "李四"}),
    react("employee_db", {"name": "李四"}),
    # direct: no tool, right away
    final("Shakespeare"),
    # near-miss: right tool, one wrong digit
    react("calculator", {"expression": "37*90"}),
    final("3330"),
]


def settings(max_steps: int = 2, **kw) -> AgentSettings:
    """The scripts below are written for the bare loop: the small-model aids are off unless
    a test turns one on."""
    gen = GenerationConfig(max_new_tokens=200, temperature=0.0)
    aids_off = {"prefill": False, "reject": False, "dedupe": False}
    return agent_settings(format="react", max_steps=max_steps, generation=gen, **aids_off | kw)


def test_scripted_run_gives_exact_metrics() -> None:
    backend = ScriptedBackend(SCRIPT)
    results = evaluate(backend, registry(), CASES, EvalSetting("s", settings()))
    assert backend.remaining == 0
    by_id = {r.id: r for r in results}
    assert by_id["right"].called_tools == ("employee_db",)
    assert by_id["right"].answer == "业务员"
    assert by_id["wrong-tool"].called_tools == ("clock",)
    assert by_id["no-answer"].outcome == "step_limit"
    assert by_id["direct"].steps == 1
    assert by_id["near-miss"].arguments_rouge_l == pytest.approx(10 / 11)

    s = summarise(results)
    assert s.cases == 6
    # right, no-answer (its first call was right), direct, near-miss
    assert s.tool_accuracy == pytest.approx(4 / 6)
    # over the 4 tool cases: right 1, wrong-tool 0, no-answer 1, near-miss 10/11
    assert s.arguments_rouge_l == pytest.approx((2 + 10 / 11) / 4)
    assert s.arguments_rouge_l_selected == pytest.approx((2 + 10 / 11) / 3)
    assert s.false_positive_rate == pytest.approx(1 / 2)
    assert s.final_answer_rate == pytest.approx(5 / 6)
    assert s.mean_steps == pytest.approx((2 + 2 + 2 + 2 + 1 + 2) / 6)
    assert s.mean_seconds is not None and s.mean_seconds >= 0
    assert (s.step_errors, s.repaired_calls, s.rejected_answers, s.errors) == (0, 0, 0, 0)

    table = format_table([("s", s)])
    assert "0.667" in table and "0.500" in table and "0.833" in table
    md = format_table([("s", s)], markdown=True)
    assert md.splitlines()[0].startswith("| setting |")


def test_invalid_call_then_retry_scores_the_attempt_that_ran() -> None:
    """retry_invalid on: the unknown-parameter call is refused, the retry runs and counts."""
    script = [
        react("employee_db", {"employee": "张三"}),
        react("employee_db", {"name": "张三"}),
        final("业务员"),
    ]
    case = Case("retry", "张三的职位？", "employee_db", {"name": "张三"})
    backend = ScriptedBackend(script)
    s = EvalSetting("retry", settings(4, retry=True, repair=False))
    (result,) = evaluate(backend, registry(), [case], s)
    assert result.called_tools == ("employee_db", "employee_db")
    assert result.step_errors == 1
    assert result.arguments_rouge_l == 1.0
    assert result.tool_correct and result.final_answer and result.steps == 3


def test_reject_switch_re_asks_when_a_needed_tool_was_skipped() -> None:
    case = Case("calc", "What is 37 times 89?", "calculator", {"expression": "37*89"})
    script = [final("3000"), react("calculator", {"expression": "37*89"}), final("3293")]
    off = evaluate(ScriptedBackend(script), registry(), [case], EvalSetting("off", settings(4)))
    backend = ScriptedBackend(script)
    (s_on,) = build_settings(settings(4), parse_switches(["reject=on"]))
    on = evaluate(backend, registry(), [case], s_on)
    assert off[0].called_tools == () and off[0].answer == "3000"
    assert on[0].called_tools == ("calculator",) and on[0].answer == "3293"
    assert on[0].rejected_answers == 1 and on[0].steps == 3
    assert on[0].tool_correct and on[0].arguments_rouge_l == 1.0
    # the re-ask names the tool and carries the rejected answer in the history
    last = backend.requests[-1].messages
    text = json.dumps(last, ensure_ascii=False)
    assert "3000" in text and "Use the calculator tool" in text


def test_reject_switch_leaves_chit_chat_alone() -> None:
    case = Case("hi", "Hello there!", None)
    (r,) = evaluate(
        ScriptedBackend([final("Hi!")]),
        registry(),
        [case],
        EvalSetting("on", settings(reject=True)),
    )
    assert r.rejected_answers == 0 and r.final_answer and not r.false_positive


def test_score_defaults_and_raw_fallback() -> None:
    """Pure scoring rules: defaults fill both sides; a refused call scores its raw text."""
    case = Case("t", "time?", "clock", {"timezone": "Asia/Shanghai"})
    events = [
        ToolCall(1, "c1", "clock", {}, "{}"),
        Observation(1, "c1", "clock", "10:00", 0.0, ok=True),
        FinalAnswer("10:00", 2),
    ]
    assert score_events(case, events, 0.1).arguments_rouge_l < 1.0
    r = score_events(case, events, 0.1, defaults={"timezone": "Asia/Shanghai"})
    assert r.arguments_rouge_l == 1.0

    refused = [
        ToolCall(1, "c1", "clock", {}, '{"timezone": "Asia/Shanghai", "x": 1}'),
        StepError(1, "Error: unknown parameter"),
        Observation(1, "c1", "clock", "Error", 0.0, ok=False, source="agent"),
        FinalAnswer("?", 2),
    ]
    r = score_events(case, refused, 0.1)
    assert r.scored_arguments == '{"timezone": "Asia/Shanghai", "x": 1}'
    # all 11 reference tokens appear in order among the 17 candidate ones: P 11/17, R 1.
    assert r.arguments_rouge_l == pytest.approx(2 * (11 / 17) / (11 / 17 + 1))

    rejected = [AidFired(1, "reject", "re-asked", "x"), *events]
    r = score_events(case, rejected, 0.1)
    assert r.rejected_answers == 1 and r.steps == 2  # the terminal event counts every step


def test_an_exception_in_the_loop_is_an_error_row_not_a_crash() -> None:
    def broken_run(*args, **kwargs):
        yield ToolCall(1, "c1", "clock", {}, "{}")
        raise RuntimeError("boom")

    case = Case("t", "time?", "clock", {"timezone": "Asia/Shanghai"})
    (r,) = evaluate(None, registry(), [case], EvalSetting("x", settings()), run=broken_run)
    assert r.outcome == "error" and r.error == "RuntimeError: boom"
    assert summarise([r]).errors == 1 and summarise([r]).final_answer_rate == 0.0


def test_json_report_structure() -> None:
    results = evaluate(ScriptedBackend(SCRIPT), registry(), CASES, EvalSetting("s", settings()))
    report = report_json([(EvalSetting("s", settings()), results)], {"model": "scripted"})
    json.dumps(report)  # serialisable
    assert report["model"] == "scripted"
    (run,) = report["runs"]
    assert run["summary"]["cases"] == 6
    assert run["settings"]["format"] == "react"
    assert [c["id"] for c in run["cases"]] == [c.id for c in CASES]


def test_cli_reports_bad_input_plainly(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "none.jsonl"), "--model", "x"]) == 2
    assert "case file not found" in capsys.readouterr().err
    cases = Path(__file__).resolve().parent.parent / "eval" / "cases.jsonl"
    assert main([str(cases), "--model", "x", "--switch", "nope=on"]) == 2
    assert "unknown switch" in capsys.readouterr().err


def native(name: str, args: dict) -> str:
    body = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def test_native_format_scores_the_same_way() -> None:
    """Qwen2.5-style <tool_call> output through the native format gives the same metrics."""
    cases = [CASES[0], CASES[1], CASES[2], CASES[4]]
    script = [
        native("employee_db", {"name": "张三"}),
        "业务员",
        native("clock", {}),
        "3293",
        native("calculator", {"expression": "1+1"}),
        "Hi!",
        "Shakespeare",
    ]
    backend = ScriptedBackend(script, family="qwen2")
    s = AgentSettings(format="native", max_steps=2, generation=GenerationConfig(temperature=0))
    results = evaluate(backend, registry(), cases, EvalSetting("native", s))
    assert backend.remaining == 0
    assert backend.requests[0].tools is not None  # the native path, not ReAct text
    summary = summarise(results)
    assert summary.tool_accuracy == pytest.approx(2 / 4)
    assert summary.arguments_rouge_l == pytest.approx(1 / 2)
    assert summary.false_positive_rate == pytest.approx(1 / 2)
    assert summary.final_answer_rate == 1.0
    assert [r.answer for r in results] == ["业务员", "3293", "Hi!", "Shakespeare"]


def test_prefill_variant_starts_the_first_react_step_with_thought() -> None:
    """prompt=prefill: the first ReAct step is continued from "Thought:", later ones are not."""
    script = [
        ' I need the calculator.\nAction: calculator\nAction Input: {"expression": "37*89"}',
        final("3293"),
    ]
    case = Case("calc", "What is 37 times 89?", "calculator", {"expression": "37*89"})
    (setting,) = build_settings(settings(), parse_switches(["prompt=prefill"]))
    backend = ScriptedBackend(script)
    (r,) = evaluate(backend, registry(), [case], setting)
    first, second = backend.requests
    assert first.continue_final and first.messages[-1] == {
        "role": "assistant",
        "content": "Thought:",
    }
    assert second.messages[-1]["content"].startswith("Thought: I need the calculator.")
    assert r.transcript.startswith("--- step 1 ---\nThought: I need the calculator.")
    assert r.tool_correct and r.arguments_rouge_l == 1.0 and r.answer == "3293"
