"""The shipped case file, the case loader's error messages, and switch parsing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent.aids import AID_KEYS
from agent.aids.reject import needed_tool
from agent.errors import AgentInputError
from agent.settings import AgentSettings
from eval.cases import CaseFileError, load_cases, select_cases
from eval.switches import PROMPT_VARIANTS, build_settings, known_switches, parse_switches
from tools.builtin import default_registry

CASES = Path(__file__).resolve().parent.parent / "eval" / "cases.jsonl"
BUILTIN = {"employee_db", "calculator", "clock", "python"}


def test_shipped_cases_cover_the_issue() -> None:
    cases = load_cases(CASES)
    assert len(cases) >= 60
    langs = Counter(c.lang for c in cases)
    assert langs["zh"] >= 25 and langs["en"] >= 25
    assert sum(c.expected_tool is None for c in cases) >= 12  # false positives are measured
    multi = [c for c in cases if c.expected_sequence and len(c.expected_sequence) > 1]
    assert len(multi) >= 6
    for c in cases:
        assert c.expected_tool is None or c.expected_tool in BUILTIN, c.id
        assert set(c.tools or ()) <= BUILTIN, c.id
    assert {c.expected_tool for c in cases} == BUILTIN | {None}
    assert all(c.answer is not None for c in cases)  # every answer is scored
    clock = [c for c in cases if c.answer and c.answer.clock]
    assert len(clock) >= 10  # time questions are checked against the real clock


def test_guard_rule_never_fires_on_no_tool_cases() -> None:
    """The reject switch must not turn a chit-chat case into a forced tool call."""
    for c in load_cases(CASES):
        if c.expected_tool is None:
            tools = [t for t in default_registry() if t.name in (c.tools or BUILTIN)]
            assert needed_tool(c.query, tools) is None, c.id


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "cases.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


GOOD = {
    "id": "a",
    "query": "q",
    "expected_tool": "calculator",
    "expected_arguments": {"x": 1},
    "answer": {"number": 2},
}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", ":1: not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({**GOOD, "query": ""}), "'query' must be a non-empty string"),
        (json.dumps({"id": "a", "query": "q"}), "'expected_tool' is required"),
        (json.dumps({**GOOD, "expected_arguments": None}), "'expected_arguments' must be"),
        (json.dumps({**GOOD, "tools": ["clock"]}), "is not among its tools"),
        (json.dumps({**GOOD, "expected_sequence": ["clock"]}), "must start with the expected"),
        (json.dumps({**GOOD, "tools": "calculator"}), "'tools' must be a list"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "answer"}), "'answer' is required"),
        (json.dumps({**GOOD, "answer": {"number": "2"}}), ":1: answer: 'number' must be"),
        (json.dumps({**GOOD, "answer": {"kind": "time"}}), "answer: 'kind', 'months_until'"),
    ],
)
def test_bad_case_lines_name_the_problem(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(CaseFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_cases(_write(tmp_path, [line]))


def test_loader_skips_comments_and_rejects_duplicates(tmp_path: Path) -> None:
    ok = _write(tmp_path, ["# comment", "", json.dumps(GOOD)])
    assert [c.id for c in load_cases(ok)] == ["a"]
    with pytest.raises(CaseFileError, match="duplicate case id 'a'"):
        load_cases(_write(tmp_path, [json.dumps(GOOD), json.dumps(GOOD)]))
    with pytest.raises(CaseFileError, match="no cases"):
        load_cases(_write(tmp_path, ["# nothing"]))
    with pytest.raises(CaseFileError, match="not found"):
        load_cases(tmp_path / "missing.jsonl")


def test_switch_product_builds_settings() -> None:
    base = AgentSettings(max_steps=3)
    settings = build_settings(
        base, parse_switches(["repair=on,off", "reject=off,on", "max_steps=5"])
    )
    assert [s.label for s in settings] == [
        "repair=on reject=off max_steps=5",
        "repair=on reject=on max_steps=5",
        "repair=off reject=off max_steps=5",
        "repair=off reject=on max_steps=5",
    ]
    assert [("repair" in s.settings.aids) for s in settings] == [True, True, False, False]
    assert [("reject" in s.settings.aids) for s in settings] == [False, True, False, True]
    assert all(s.settings.max_steps == 5 for s in settings)
    assert build_settings(base, [])[0].label == "default"
    assert build_settings(base, [])[0].settings is base


def test_robust_switch_sets_all_three() -> None:
    off, on = build_settings(AgentSettings(), parse_switches(["robust=off,on"]))
    assert (("repair" in off.settings.aids), ("retry" in off.settings.aids)) == (False, False)
    assert (("repair" in on.settings.aids), ("retry" in on.settings.aids)) == (True, True)
    assert (("reject" in off.settings.aids), ("reject" in on.settings.aids)) == (False, True)
    # the other aids keep the base settings' values
    assert (
        ("prefill" in off.settings.aids)
        == ("prefill" in on.settings.aids)
        == ("prefill" in AgentSettings().aids)
    )


def test_aids_switch_sets_every_aid() -> None:
    base = AgentSettings().with_aids(prefill=False, dedupe=True)
    off, on = build_settings(base, parse_switches(["aids=off,on"]))
    assert off.settings.aids == frozenset() and on.settings.aids == set(AID_KEYS)


def test_short_switch_names_map_to_settings_fields() -> None:
    (s,) = build_settings(
        AgentSettings(), parse_switches(["prefill=off", "dedupe=off", "reject=on"])
    )
    assert (("prefill" in s.settings.aids), ("dedupe" in s.settings.aids)) == (False, False)
    assert "reject" in s.settings.aids


def test_prompt_switch_sets_the_system_prompt() -> None:
    default, tool_first = build_settings(
        AgentSettings(), parse_switches(["prompt=default,tool-first"])
    )
    assert default.settings.system_prompt == AgentSettings().system_prompt
    assert tool_first.settings.system_prompt == PROMPT_VARIANTS["tool-first"]
    # the variant decides the prefill: only prompt=prefill starts ReAct with "Thought:"
    assert "prefill" not in default.settings.aids and "prefill" not in tool_first.settings.aids
    base = AgentSettings().with_aids(prefill=False)
    (prefill,) = build_settings(base, parse_switches(["prompt=prefill"]))
    assert "prefill" in prefill.settings.aids
    assert prefill.settings.system_prompt == base.system_prompt


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("repair", "expected NAME=VALUE"),
        ("bogus=on", "unknown switch"),
        ("prompt=shouty", "unknown variant"),
    ],
)
def test_bad_switches(spec: str, message: str) -> None:
    with pytest.raises(AgentInputError, match=message):
        parse_switches([spec])


def test_bad_switch_values() -> None:
    with pytest.raises(AgentInputError, match="expected on/off"):
        build_settings(AgentSettings(), parse_switches(["retry=maybe"]))
    with pytest.raises(AgentInputError, match="expected an integer"):
        build_settings(AgentSettings(), parse_switches(["max_steps=many"]))


def test_every_aid_is_a_switch() -> None:
    """The switch list comes from agent.aids: a new aid is a switch without touching eval/."""
    assert set(AID_KEYS) <= set(known_switches())
    for key in AID_KEYS:
        off, on = build_settings(AgentSettings(), parse_switches([f"{key}=off,on"]))
        assert key not in off.settings.aids and key in on.settings.aids
        assert off.settings.aids | {key} == on.settings.aids  # the others untouched


def test_format_is_a_switch_and_checked_before_any_model_loads() -> None:
    react, native = build_settings(AgentSettings(), parse_switches(["format=react,native"]))
    assert (react.settings.format, native.settings.format) == ("react", "native")
    with pytest.raises(AgentInputError, match="format must be one of"):
        build_settings(AgentSettings(), parse_switches(["format=xml"]))


def test_select_cases_by_id_tool_and_limit() -> None:
    cases = load_cases(CASES)
    picked = select_cases(cases, ids=["en-none-01", "zh-calc-01"])
    assert [c.id for c in picked] == ["en-none-01", "zh-calc-01"]
    with pytest.raises(CaseFileError, match="unknown case id"):
        select_cases(cases, ids=["nope"])
    calc = select_cases(cases, tools=["calculator"])
    assert {c.expected_tool for c in calc} == {"calculator", None}
    assert all(c.tools == ("calculator",) for c in calc if c.id != "en-subset-01")
    assert len(select_cases(cases, limit=3)) == 3
