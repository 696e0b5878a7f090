"""Argument repair: what small models put in Action Input, and what the tool finally gets."""

from __future__ import annotations

import pytest

from agent.errors import ArgumentError
from agent.repair import example_arguments, resolve_arguments, resolve_tool_name
from tests.test_agent_support import make_registry

REG = make_registry("clock")
EMP, CALC, CLOCK = REG.get("employee_db"), REG.get("calculator"), REG.get("clock")

SCHEMA_ECHO = (
    '{"name": "name", "description": "The employee\'s name, e.g. 张三.", "required": true, '
    '"schema": {"type": "string"}}'
)

REPAIRED = [
    ("bare_string", CALC, "3 * 4", {"expression": "3 * 4"}),
    ("bare_quoted_string", CALC, "'3 * 4'", {"expression": "3 * 4"}),
    ("json_string", EMP, '"张三"', {"name": "张三"}),
    ("bare_number_for_string_param", CALC, "42", {"expression": "42"}),
    ("comments_and_trailing_comma", CALC, '{"expression": "1+1", // sum\n}', {"expression": "1+1"}),
    ("python_literal", EMP, "{'name': '张三', 'extra': None}", {"name": "张三"}),
    ("text_after_json", CALC, '{"expression": "2*5"} I will compute this', {"expression": "2*5"}),
    ("schema_with_value", EMP, SCHEMA_ECHO[:-1] + ', "value": "张三"}', {"name": "张三"}),
    (
        "schema_list_with_value",
        CALC,
        '[{"name": "expression", "description": "d", "required": true, "value": "1+2"}]',
        {"expression": "1+2"},
    ),
    (
        "param_schema_with_example",
        CALC,
        '{"expression": {"type": "string", "example": "7*6"}}',
        {"expression": "7*6"},
    ),
    (
        "wrapped_call",
        EMP,
        '{"name": "employee_db", "arguments": {"name": "张三"}}',
        {"name": "张三"},
    ),
    ("wrapped_by_tool_name", CALC, '{"calculator": {"expression": "9"}}', {"expression": "9"}),
    ("wrong_key_single_param", CALC, '{"query": "1+1"}', {"expression": "1+1"}),
    ("extra_made_up_keys", EMP, '{"name": "张三", "description": "x"}', {"name": "张三"}),
    ("list_of_one_scalar", CALC, '["5-3"]', {"expression": "5-3"}),
]


@pytest.mark.parametrize(
    ("tool", "raw", "expected"), [c[1:] for c in REPAIRED], ids=[c[0] for c in REPAIRED]
)
def test_repairs_are_made_and_flagged(tool, raw, expected):
    resolved = resolve_arguments(tool, raw, repair=True)
    assert resolved.arguments == expected
    assert resolved.repaired


@pytest.mark.parametrize(
    ("tool", "raw", "expected"),
    [
        (EMP, '{"name": "张三"}', {"name": "张三"}),
        (EMP, '{"name": "name"}', {"name": "name"}),  # a real value that looks like a key
        (CALC, '```json\n{"expression": "1"}\n```', {"expression": "1"}),
        (CLOCK, "", {}),
        (CLOCK, "{}", {}),
    ],
)
def test_good_arguments_are_not_flagged(tool, raw, expected):
    resolved = resolve_arguments(tool, raw, repair=True)
    assert (resolved.arguments, resolved.repaired) == (expected, False)


def test_decoded_native_arguments_are_repaired_too():
    resolved = resolve_arguments(CALC, {"query": "1+1"}, repair=True)
    assert resolved.arguments == {"expression": "1+1"} and resolved.repaired
    assert not resolve_arguments(CALC, {"expression": "1"}, repair=True).repaired


@pytest.mark.parametrize(
    ("tool", "raw", "message"),
    [
        (EMP, SCHEMA_ECHO, "repeats the parameter description"),
        (
            CALC,
            '[{"name": "expression", "description": "d", "required": true, '
            '"schema": {"type": "string"}}]',
            "repeats the parameter description",
        ),
        (CALC, '{"expression": {"type": "string", "description": "d"}}', "schema of 'expression'"),
        (EMP, "", "Action Input is empty"),
        (EMP, '{"age": 3, "city": "x"}', "unknown parameter"),
        (CALC, '{"expression": [1, 2]}', "must be of type string"),
    ],
)
def test_unrepairable_input_gets_a_message_for_the_model(tool, raw, message):
    with pytest.raises(ArgumentError, match=message) as info:
        resolve_arguments(tool, raw, repair=True)
    assert example_arguments(tool) in str(info.value)  # shows the model the right shape


@pytest.mark.parametrize(
    ("tool", "raw"),
    [(CALC, "3 * 4"), (EMP, SCHEMA_ECHO), (CALC, '{"query": "1+1"}'), (EMP, '"张三"')],
)
def test_repair_switched_off_reports_instead(tool, raw):
    with pytest.raises(ArgumentError):
        resolve_arguments(tool, raw, repair=False)


def test_example_arguments_follow_the_schema():
    assert example_arguments(EMP) == '{"name": "..."}'
    assert example_arguments(CLOCK) == "{}"


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("Calculator", "calculator"),
        ("Employee Database", "employee_db"),
        ("employee-db", "employee_db"),
        ("The calculator API can be used to calculate the difference", "calculator"),  # 0.5B
        ("use employee_db then calculator", None),  # two tools: ambiguous
        ("web_search", None),
        ("calculators", None),  # a different word
    ],
)
def test_resolve_tool_name(written, meant):
    assert resolve_tool_name(written, REG) == meant
