"""Replies small models really write, through the whole loop (scripted model): several
Actions in one ReAct reply, an Action Input with no Action, an answer followed by call
lines, junk answers, and the agent's own notes in the UI language."""

from __future__ import annotations

import json

import pytest

from agent import events as ev
from agent.loop import run
from agent.messages import say
from llm.scripted import ScriptedBackend
from tests.test_agent_support import SEED_QUESTION, agent_settings, collect, make_registry, of_type

OFF = {"prefill": False, "reject": False}


def _turn(script, *, family="qwen1", query=SEED_QUESTION, **settings):
    backend = ScriptedBackend(script, family=family)
    config = agent_settings(**OFF | settings)
    return backend, collect(run(backend, make_registry("clock"), [], query, config))


def _native(name, args):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


def test_two_actions_in_one_react_reply_both_run_in_order():
    script = [
        'Thought: 两件事\nAction: employee_db\nAction Input: {"name": "张三"}\n'
        'Action: calculator\nAction Input: {"expression": "10 - 2"}',
        " I now know the final answer\nFinal Answer: 8",
    ]
    backend, events = _turn(script)
    calls = of_type(events, ev.ToolCall)
    assert [(c.name, c.arguments) for c in calls] == [
        ("employee_db", {"name": "张三"}),
        ("calculator", {"expression": "10 - 2"}),
    ]
    assert [o.text for o in of_type(events, ev.Observation)][1] == "8"
    # both results went back, in order, each as its own Observation
    replay = backend.requests[1].messages[-1]["content"]
    first, second = replay.index("Observation: "), replay.rindex("Observation: 8")
    assert first < second and "Action: calculator" in replay[first:second]
    assert replay.endswith("\nThought:")
    final = events[-1]
    assert isinstance(final, ev.FinalAnswer) and final.text == "8"
    assert [m["role"] for m in final.messages] == ["user", "assistant", "tool", "tool", "assistant"]


def test_action_input_without_action_goes_back_as_an_error_not_as_the_answer():
    script = [
        'Thought: 查一下\nAction Input: {"name": "张三"}',
        'Action: employee_db\nAction Input: {"name": "张三"}',
        "Final Answer: 5月5日",
    ]
    backend, events = _turn(script)
    first = of_type(events, ev.Observation)[0]
    assert not first.ok and first.source == "agent" and "without an Action line" in first.text
    assert first.text in backend.requests[1].messages[-1]["content"]
    assert events[-1].text == "5月5日"


def test_a_final_answer_followed_by_call_lines_shows_only_the_answer():
    script = ['Final Answer: 5月5日\nAction: calculator\nAction Input: {"expression": "1"}']
    _, events = _turn(script)
    assert events[-1].text == "5月5日" and not of_type(events, ev.ToolCall)
    (discarded,) = of_type(events, ev.DiscardedObservation)
    assert discarded.text.startswith("Action: calculator")


def test_an_action_input_that_mentions_final_answer_is_not_cut():
    args = {"expression": "1+1", "note": "Final Answer: not yet"}
    script = [f"Action: calculator\nAction Input: {json.dumps(args)}", "Final Answer: 2"]
    _, events = _turn(script, repair=False)
    (call,) = of_type(events, ev.ToolCall)
    assert json.loads(call.raw_arguments) == args


def test_two_native_results_go_back_as_one_user_turn():
    script = [_native("clock", {}) + "\n" + _native("calculator", {"expression": "2"}), "done"]
    backend, _ = _turn(script, family="qwen2")
    prompt = backend.render(backend.requests[1])
    turn = prompt[prompt.rindex("<|im_start|>user") :]
    assert turn.count("<|im_start|>") == 2  # that user turn, then the assistant's
    assert turn.count("<tool_response>") == 2 and turn.count("<|im_end|>") == 1


@pytest.mark.parametrize(
    "junk",
    [
        '{"name": "张三", "birthday": "5月5日"}',
        '{"response": "136.5"}',
        "True",
        'Action: calculator\nAction Input: {"expression": "1"}',  # ReAct syntax, native format
    ],
)
def test_junk_answer_gets_one_plain_re_ask(junk):
    script = [_native("employee_db", {"name": "张三"}), junk, "张三的生日是5月5日。"]
    backend, events = _turn(script, family="qwen2")
    (fired,) = of_type(events, ev.AidFired)
    assert fired.aid == "junk" and fired.text == junk
    assert backend.requests[2].messages[-1]["content"].startswith("请用通顺的文字")
    assert events[-1].text == "张三的生日是5月5日。" and not events[-1].fallback


def test_junk_twice_shows_the_readable_tool_result_never_the_junk():
    junk = '{"response": "x"}'
    script = [_native("employee_db", {"name": "张三"}), junk, junk]
    _, events = _turn(script, family="qwen2")
    final = events[-1]
    assert isinstance(final, ev.FinalAnswer) and final.fallback
    assert junk not in final.text and final.text.startswith(say("no_answer", "en", tool="x")[:9])
    assert "- position: 业务员" in final.text


def test_without_the_junk_aid_junk_still_never_reaches_the_user():
    script = [_native("employee_db", {"name": "张三"}), '{"name": "张三"}']
    _, events = _turn(script, family="qwen2", junk=False, ask=False)
    assert events[-1].fallback and "- position: 业务员" in events[-1].text
    # a JSON reply with no tool result to show instead stays as the model wrote it
    _, events = _turn(['{"a": 1}'], family="qwen2", junk=False)
    assert events[-1].text == '{"a": 1}' and not events[-1].fallback


def test_a_number_or_a_sentence_is_not_junk():
    for answer in ["396", "张三的生日是5月5日。"]:
        _, events = _turn([_native("calculator", {"expression": "2"}), answer], family="qwen2")
        assert events[-1].text == answer and not of_type(events, ev.AidFired)


def test_notes_for_the_user_follow_the_ui_language():
    loop = 'Action: calculator\nAction Input: {"expression": "1"}'
    _, events = _turn([loop] * 3, max_steps=2, lang="zh", query="What is 1?")
    assert events[-1].message == say("step_limit", "zh", n=2)
    _, events = _turn(["Action: nope\nAction Input: {}"], retry=False, lang="zh")
    assert isinstance(events[-1], ev.AgentFailed) and "已关闭重试" in events[-1].message
    assert of_type(events, ev.StepError)[0].message.startswith("工具调用被拒绝")


def test_re_asks_to_the_model_follow_the_question_language():
    script = [_native("employee_db", {"name": "Zhang San"}), "", "May 5."]
    backend, events = _turn(script, family="qwen2", query="When is Zhang San's birthday?")
    assert backend.requests[2].messages[-1]["content"].startswith("Using the tool results above")
    assert events[-1].text == "May 5."
