"""The ReAct prompt: exact snapshot for the seed example, strict rendering, history replay."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.history import assistant_tool_calls, tool_call_entry, tool_message
from agent.prompt import (
    REACT_PROMPT,
    TemplateError,
    react_prompt,
    render_template,
    replay_react,
)
from llm.toolcalls.react import arguments_text
from tests.test_agent_support import SEED_QUESTION, seed_tools

SNAPSHOT = Path(__file__).parent / "snapshots" / "react_prompt.txt"
UPDATE = os.environ.get("UPDATE_AGENT_SNAPSHOTS") == "1"


def test_seed_prompt_matches_snapshot():
    text = react_prompt(seed_tools(), SEED_QUESTION)
    if UPDATE:
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.exists(), "run with UPDATE_AGENT_SNAPSHOTS=1 once to create the snapshot"
    assert text == SNAPSHOT.read_text(encoding="utf-8")


def test_seed_prompt_has_qwen_tool_lines():
    text = react_prompt(seed_tools(), SEED_QUESTION)
    line = (
        "calculator: Call this tool to interact with the Calculator API. What is the Calculator"
        " API useful for? Evaluate an arithmetic expression. Parameters: "
    )
    assert line in text
    assert "should be one of [employee_db,calculator]" in text
    assert text.startswith("Answer the following questions as best you can.")
    assert text.endswith(f"Begin!\n\nQuestion: {SEED_QUESTION}")
    # tools separated by one blank line; parameters as Qwen's JSON list, Chinese unescaped
    assert "Format the arguments as a JSON object.\n\ncalculator:" in text
    params = json.loads(text.split("Parameters: ")[1].split(" Format the arguments")[0])
    assert params == [
        {
            "name": "name",
            "description": "The employee's name, e.g. 张三.",
            "required": True,
            "schema": {"type": "string"},
        }
    ]
    assert "张三." in text


def test_only_enabled_tools_appear():
    text = react_prompt(seed_tools()[1:], "1+1?")
    assert "employee_db" not in text and "[calculator]" in text


def test_render_template_is_strict():
    assert render_template("a {x} b", x="{y}") == "a {y} b"  # values are not re-parsed
    with pytest.raises(TemplateError, match="missing"):
        render_template(REACT_PROMPT, tool_descs="", tool_names="")
    with pytest.raises(TemplateError, match="unused"):
        render_template("{x}", x="1", extra="2")
    with pytest.raises(TemplateError):
        react_prompt([], "q")


def _tool_turn(name: str, args: dict, result: str, thought: str = "") -> list[dict]:
    call = tool_call_entry("c1", name, args)
    return [assistant_tool_calls(thought, [call]), tool_message("c1", name, result)]


def test_replay_multi_turn_the_way_qwen_openai_api_does():
    tools = seed_tools()
    history = [
        {"role": "user", "content": "张三是谁？"},
        *_tool_turn("employee_db", {"name": "张三"}, '{"position": "工程师"}', "查一下"),
        {"role": "assistant", "content": "张三是工程师。"},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！"},
    ]
    msgs, cont = replay_react("SYS", history, [{"role": "user", "content": "1+1?"}], tools)
    assert not cont
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"] == "SYS"
    assert msgs[1]["content"] == "张三是谁？"  # the instruction is on the latest turn only
    assert msgs[2]["content"] == (
        'Thought: 查一下\nAction: employee_db\nAction Input: {"name": "张三"}\n'
        'Observation: {"position": "工程师"}\n'
        "Thought: I now know the final answer.\nFinal Answer: 张三是工程师。"
    )
    assert msgs[4]["content"] == "Thought: I now know the final answer.\nFinal Answer: 你好！"
    assert msgs[5]["content"] == react_prompt(tools, "1+1?")


def test_replay_current_turn_continues_after_observation():
    turn = [
        {"role": "user", "content": "q"},
        *_tool_turn("calculator", {"expression": "1+1"}, "2", "算一下"),
    ]
    msgs, cont = replay_react("S", [], turn, seed_tools())
    assert cont
    assert msgs[-1] == {
        "role": "assistant",
        "content": 'Thought: 算一下\nAction: calculator\nAction Input: {"expression": "1+1"}\n'
        "Observation: 2\nThought:",
    }


def test_replay_without_tools_is_plain_chat():
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    msgs, cont = replay_react("S", history, [{"role": "user", "content": "q"}], [])
    assert not cont
    assert [m["content"] for m in msgs] == ["S", "hi", "hello", "q"]


def test_replay_several_calls_pairs_each_result_with_its_call():
    calls = [
        tool_call_entry("a", "calculator", {"expression": "1+1"}),
        tool_call_entry("b", "calculator", {"expression": "2+2"}),
    ]
    turn = [
        {"role": "user", "content": "q"},
        assistant_tool_calls("two sums", calls),
        tool_message("b", "calculator", "4"),  # results may come in any order
        tool_message("a", "calculator", "2"),
    ]
    msgs, _ = replay_react("S", [], turn, seed_tools())
    body = msgs[-1]["content"]
    assert body.index('"1+1"') < body.index("Observation: 2") < body.index('"2+2"')
    assert body.index('"2+2"') < body.index("Observation: 4")


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ('{"a": 1}', '{"a": 1}'),
        ('"3*4"', "3*4"),  # a raw string the model wrote, stored as a JSON string
        ("not json", "not json"),
        ({"a": "张"}, '{"a": "张"}'),
    ],
)
def test_arguments_text(stored, shown):
    assert arguments_text(stored) == shown
