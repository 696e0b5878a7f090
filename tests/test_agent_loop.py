"""The agent loop against a scripted model: every path a turn can take."""

from __future__ import annotations

import json
import threading

import pytest

from agent import events as ev
from agent.errors import AgentInputError, HistoryError
from agent.loop import preview_prompt, run
from agent.settings import AgentSettings
from llm.scripted import ScriptedBackend
from llm.types import CHATML_STOP_WORDS, GenerationConfig
from tests.test_agent_support import (
    SEED_QUESTION,
    NoStopBackend,
    agent_settings,
    collect,
    make_registry,
    of_type,
)
from tools.registry import ToolRegistry, make_tool

SEED_SCRIPT = [
    'Thought: 先查张三的生日。\nAction: employee_db\nAction Input: {"name": "张三"}',
    ' 生日是5月，现在是2月。\nAction: calculator\nAction Input: {"expression": "5 - 2"}',
    " I now know the final answer\nFinal Answer: 不是，张三的生日在5月，还有3个月。",
]


# The bare loop: the small-model aids (tests/test_agent_aids.py) are off unless a test says so.
AIDS_OFF = {"prefill": False, "reject": False, "dedupe": False}


def _turn(script, *, tools=None, history=(), query=SEED_QUESTION, family="qwen1", **settings):
    backend = ScriptedBackend(script, family=family)
    tools = make_registry() if tools is None else tools
    config = agent_settings(**AIDS_OFF | settings)
    events = collect(run(backend, tools, list(history), query, config))
    return backend, events


def _terminal(events):
    terminals = [e for e in events if ev.is_terminal(e)]
    assert len(terminals) == 1 and events[-1] is terminals[0]
    messages = terminals[0].messages
    assert messages[0]["role"] == "user"
    return terminals[0]


def test_seed_multi_step_react_turn():
    backend, events = _turn(SEED_SCRIPT)
    final = _terminal(events)
    assert isinstance(final, ev.FinalAnswer)
    assert final.text == "不是，张三的生日在5月，还有3个月。" and final.steps == 3
    kinds = [ev.event_type(e) for e in events if not isinstance(e, ev.TextDelta)]
    assert kinds == [
        *("step_started", "model_call_end", "thought", "tool_call", "observation"),
        *("step_started", "model_call_end", "thought", "tool_call", "observation"),
        *("step_started", "model_call_end", "thought", "final_answer"),
    ]
    calls = of_type(events, ev.ToolCall)
    assert [(c.name, c.arguments) for c in calls] == [
        ("employee_db", {"name": "张三"}),
        ("calculator", {"expression": "5 - 2"}),
    ]
    obs = of_type(events, ev.Observation)
    assert json.loads(obs[0].text)["birthday"] == "5月5日" and obs[1].text == "3"
    assert [o.call_id for o in obs] == [c.call_id for c in calls]
    # every model call got Qwen's ReAct stop words; steps >= 2 continue the assistant turn
    assert all(list(r.stop) == ["Observation:", "Observation:\n"] for r in backend.requests)
    assert [r.continue_final for r in backend.requests] == [False, True, True]
    last = backend.requests[-1].messages[-1]
    assert last["role"] == "assistant"
    assert last["content"].endswith("Observation: 3\nThought:")
    assert 'Action Input: {"name": "张三"}\nObservation: {' in last["content"]
    # streamed text per step is exactly what the model wrote (stop words withheld)
    step2 = "".join(e.text for e in of_type(events, ev.TextDelta) if e.step == 2)
    assert step2 == SEED_SCRIPT[1]
    # the turn's messages in OpenAI format
    roles = [m["role"] for m in final.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    call = final.messages[1]["tool_calls"][0]
    assert call["function"] == {"name": "employee_db", "arguments": '{"name": "张三"}'}
    assert final.messages[2]["tool_call_id"] == call["id"]
    assert final.messages[1]["content"] == "先查张三的生日。"
    assert final.messages[-1]["content"] == final.text


def test_step_prompts_are_what_the_backend_renders():
    backend, events = _turn(SEED_SCRIPT)
    prompts = [e.prompt for e in of_type(events, ev.StepStarted)]
    assert prompts == [backend.render(r) for r in backend.requests]
    bare = agent_settings(**AIDS_OFF)
    text, stops = preview_prompt(backend, make_registry(), [], SEED_QUESTION, bare)
    assert text == prompts[0]
    assert stops == ["Observation:", "Observation:\n", *CHATML_STOP_WORDS]
    assert "Question: " + SEED_QUESTION in text


def test_unknown_tool_goes_back_to_the_model():
    script = [
        'Action: web_search\nAction Input: {"q": "x"}',
        'Action: calculator\nAction Input: {"expression": "1+1"}',
        "Final Answer: 2",
    ]
    backend, events = _turn(script)
    obs = of_type(events, ev.Observation)
    assert not obs[0].ok and obs[0].source == "agent"
    assert "unknown tool 'web_search'" in obs[0].text and "employee_db, calculator" in obs[0].text
    # the trace's note for the user says the same, in the UI language
    assert of_type(events, ev.StepError)[0].message == "Tool call refused: " + obs[0].text[7:]
    assert obs[1].ok and obs[1].text == "2"
    assert obs[0].text in backend.requests[1].messages[-1]["content"]
    assert isinstance(_terminal(events), ev.FinalAnswer)


def test_bad_arguments_become_an_error_observation_then_the_model_fixes_them():
    schema_echo = (
        '{"name": "name", "description": "The employee\'s name", "required": true, '
        '"schema": {"type": "string"}}'
    )
    script = [
        f"Action: employee_db\nAction Input: {schema_echo}",
        'Action: employee_db\nAction Input: {"name": "张三"}',
        "Final Answer: ok",
    ]
    backend, events = _turn(script)
    first, second = of_type(events, ev.Observation)
    assert first.source == "agent" and "repeats the parameter description" in first.text
    assert '{"name": "..."}' in first.text
    assert second.ok
    final = _terminal(events)
    bad_call = final.messages[1]["tool_calls"][0]["function"]
    assert json.loads(bad_call["arguments"]) == schema_echo  # what the model wrote, kept
    assert "Observation: Error:" in backend.requests[1].messages[-1]["content"]


def test_repairs_are_flagged_and_can_be_switched_off():
    script = ["Action: calculator\nAction Input: 6 * 7", "Final Answer: 42"]
    _, events = _turn(script)
    call = of_type(events, ev.ToolCall)[0]
    assert call.repaired and call.arguments == {"expression": "6 * 7"}
    assert call.raw_arguments == "6 * 7"
    assert of_type(events, ev.Observation)[0].text == "42"

    _, events = _turn(script, repair=False)
    obs = of_type(events, ev.Observation)[0]
    assert not obs.ok and "not valid JSON" in obs.text


def test_retry_invalid_off_ends_the_turn():
    backend, events = _turn(["Action: nope\nAction Input: {}", "Final Answer: x"], retry=False)
    failed = _terminal(events)
    assert isinstance(failed, ev.AgentFailed) and "unknown tool 'nope'" in failed.message
    assert len(backend.requests) == 1
    assert [m["role"] for m in failed.messages] == ["user", "assistant", "tool"]


def test_tool_exception_and_timeout_are_observations():
    script = [
        'Action: boom\nAction Input: {"text": "x"}',
        'Action: slow\nAction Input: {"seconds": 3}',
        "Final Answer: sorry",
    ]
    backend, events = _turn(script, tools=make_registry("boom", "slow"))
    boom, slow = of_type(events, ev.Observation)
    assert (boom.ok, boom.source) == (False, "tool") and "RuntimeError" in boom.text
    assert (slow.ok, slow.source) == (False, "tool") and "timed out" in slow.text
    assert not of_type(events, ev.StepError)  # the calls were valid; the tools failed
    assert isinstance(_terminal(events), ev.FinalAnswer)


def test_hallucinated_observation_is_discarded_and_never_fed_back():
    fake = (
        "Observation: 张三的生日是10月1日\n"
        "Thought: I now know the final answer\nFinal Answer: 8个月"
    )
    inner = ScriptedBackend(
        [
            f'Thought: 查\nAction: employee_db\nAction Input: {{"name": "张三"}}\n{fake}',
            "Final Answer: 3个月",
        ]
    )
    backend = NoStopBackend(inner)
    events = collect(run(backend, make_registry(), [], SEED_QUESTION))
    discarded = of_type(events, ev.DiscardedObservation)
    assert [d.text for d in discarded] == [fake]
    assert of_type(events, ev.Observation)[0].text.startswith('{"name": "张三"')
    second_prompt = backend.requests[1].messages[-1]["content"]
    assert "10月1日" not in second_prompt and "5月5日" in second_prompt
    assert _terminal(events).text == "3个月"


def test_step_limit_ends_a_runaway_loop():
    loop_step = 'Action: calculator\nAction Input: {"expression": "1"}'
    backend, events = _turn([loop_step] * 10, max_steps=3)
    limit = _terminal(events)
    assert isinstance(limit, ev.StepLimitReached)
    assert limit.steps == 3 and len(backend.requests) == 3
    assert "3 model calls" in limit.message and "step limit" in limit.message
    assert limit.messages[-1] == {"role": "assistant", "content": limit.message}


def test_generation_error_fails_the_turn():
    backend, events = _turn([SEED_SCRIPT[0], RuntimeError("CUDA out of memory")])
    failed = _terminal(events)
    assert isinstance(failed, ev.AgentFailed)
    assert failed.steps == 2 and "CUDA out of memory" in failed.message
    assert [m["role"] for m in failed.messages] == ["user", "assistant", "tool"]
    assert of_type(events, ev.ModelCallEnd)[-1].reason == "error"


class _RaisingBackend(ScriptedBackend):
    def stream(self, request):
        raise ConnectionError("server went away")


def test_a_backend_that_raises_fails_the_turn_without_crashing():
    backend = _RaisingBackend(["x"])
    events = collect(run(backend, make_registry(), [], "hi"))
    failed = _terminal(events)
    assert isinstance(failed, ev.AgentFailed) and "server went away" in failed.message


def test_cancel_before_a_step_stops_the_turn():
    cancel = threading.Event()
    cancel.set()
    backend = ScriptedBackend(SEED_SCRIPT)
    events = collect(run(backend, make_registry(), [], "q", cancel=cancel))
    assert events == [ev.Stopped(0, "", ({"role": "user", "content": "q"},))]
    assert backend.requests == []


def test_cancel_during_generation_stops_with_the_partial_text():
    cancel = threading.Event()
    backend = ScriptedBackend(SEED_SCRIPT)
    events = []
    for event in run(backend, make_registry(), [], SEED_QUESTION, cancel=cancel):
        events.append(event)
        if isinstance(event, ev.TextDelta) and event.step == 2:
            cancel.set()  # the user presses Stop while step 2 streams
    assert backend.requests[1].cancel is cancel
    stopped = _terminal(events)
    assert isinstance(stopped, ev.Stopped) and stopped.steps == 2
    assert stopped.partial_text and SEED_SCRIPT[1].startswith(stopped.partial_text)
    assert of_type(events, ev.ModelCallEnd)[-1].reason == "cancelled"
    assert [m["role"] for m in stopped.messages] == ["user", "assistant", "tool", "assistant"]
    assert len(backend.requests) == 2


def test_cancel_while_a_tool_runs_stops_before_the_next_model_call():
    cancel = threading.Event()

    def press_stop(text: str) -> str:
        """Sets the cancel event (the user pressed Stop while the tool ran).

        Args:
            text: Anything.
        """
        cancel.set()
        return "ok"

    tools = ToolRegistry([make_tool(press_stop, name="press_stop")])
    backend = ScriptedBackend(
        ['Action: press_stop\nAction Input: {"text": "x"}', "Final Answer: no"]
    )
    events = collect(run(backend, tools, [], "q", cancel=cancel))
    stopped = _terminal(events)
    assert isinstance(stopped, ev.Stopped) and stopped.steps == 1
    assert [m["role"] for m in stopped.messages] == ["user", "assistant", "tool"]
    assert len(backend.requests) == 1


def test_plain_chat_without_tools():
    backend, events = _turn(["你好！我是通义千问。"], tools=ToolRegistry(), query="你好")
    final = _terminal(events)
    assert final.text == "你好！我是通义千问。" and final.steps == 1
    request = backend.requests[0]
    assert list(request.stop) == [] and request.tools is None
    assert request.messages[-1] == {"role": "user", "content": "你好"}
    assert "".join(e.text for e in of_type(events, ev.TextDelta)) == final.text
    assert final.messages == (
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！我是通义千问。"},
    )


def test_history_replay_shape_across_turns():
    _, events = _turn(SEED_SCRIPT)
    history = list(_terminal(events).messages)
    backend, events = _turn(["Final Answer: 不客气"], history=history, query="谢谢")
    msgs = backend.requests[0].messages
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1]["content"] == SEED_QUESTION  # earlier question without the instruction
    replay = msgs[2]["content"]
    assert replay.startswith("Thought: 先查张三的生日。\nAction: employee_db\nAction Input: ")
    assert '"业务员"}\nThought: 生日是5月，现在是2月。\nAction: calculator' in replay
    assert "\nObservation: 3\nThought: I now know the final answer.\n" in replay
    assert replay.endswith(
        "Thought: I now know the final answer.\nFinal Answer: 不是，张三的生日在5月，还有3个月。"
    )
    assert msgs[3]["content"].startswith("Answer the following questions")
    assert msgs[3]["content"].endswith("Question: 谢谢")
    assert _terminal(events).text == "不客气"


def test_native_turn_runs_several_calls_from_one_reply():
    script = [
        "我来算两个数。\n"
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "1+1"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "employee_db", "arguments": {"name": "张三"}}\n</tool_call>',
        "1+1=2，张三是工程师。",
    ]
    backend, events = _turn(script, family="qwen2", query="1+1？张三是谁？")
    final = _terminal(events)
    assert final.text == "1+1=2，张三是工程师。" and final.steps == 2
    assert [e.text for e in of_type(events, ev.Thought)] == ["我来算两个数。"]
    assert [c.name for c in of_type(events, ev.ToolCall)] == ["calculator", "employee_db"]
    assert [o.ok for o in of_type(events, ev.Observation)] == [True, True]
    first = backend.requests[0]
    assert [t["function"]["name"] for t in first.tools] == ["employee_db", "calculator"]
    assert first.tools[0] == make_registry().get("employee_db").openai_schema()
    assert not first.continue_final and "Observation:" not in first.stop
    second = backend.requests[1].messages
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool"]
    assert [m["content"] for m in second[3:]][0] == "2"
    assert second[2]["content"] == "我来算两个数。" and len(second[2]["tool_calls"]) == 2
    assert [m["role"] for m in final.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert "<tool_response>\n2\n</tool_response>" in backend.render(backend.requests[1])


def test_native_bad_calls_go_back_as_tool_messages():
    script = [
        '<tool_call>{"name": "calculator", "arguments": {"expression": </tool_call>'
        '<tool_call>{"name": "web", "arguments": {}}</tool_call>',
        "抱歉。",
    ]
    backend, events = _turn(script, family="qwen2", query="q")
    obs = of_type(events, ev.Observation)
    assert [o.source for o in obs] == ["agent", "agent"]
    assert "not valid JSON" in obs[0].text and "unknown tool 'web'" in obs[1].text
    tool_msgs = [m for m in backend.requests[1].messages if m["role"] == "tool"]
    assert [m["content"] for m in tool_msgs] == [o.text for o in obs]
    backend.render(backend.requests[1])  # the stored broken call still renders
    assert isinstance(_terminal(events), ev.FinalAnswer)


def test_native_made_up_tool_response_is_discarded():
    inner = ScriptedBackend(
        ['<tool_call>{"name": "clock", "arguments": {}}</tool_call><tool_response>9:00', "10:00"],
        family="qwen2",
    )
    events = collect(run(NoStopBackend(inner), make_registry("clock"), [], "time?"))
    assert [d.text for d in of_type(events, ev.DiscardedObservation)] == ["<tool_response>9:00"]
    assert of_type(events, ev.Observation)[0].text == "2025-02-14 10:00"


@pytest.mark.parametrize(
    ("family", "fmt", "expected"),
    [("qwen1", "auto", "react"), ("qwen2", "auto", "native"), ("qwen2", "react", "react")],
)
def test_format_is_picked_by_family_unless_forced(family, fmt, expected):
    backend = ScriptedBackend(["Final Answer: x"], family=family)
    collect(run(backend, make_registry(), [], "q", AgentSettings(format=fmt)))
    request = backend.requests[0]
    assert (request.tools is not None) == (expected == "native")
    assert ("Observation:" in request.stop) == (expected == "react")


def test_generation_settings_reach_the_backend():
    config = GenerationConfig(max_new_tokens=7, temperature=0)
    backend, _ = _turn(["Final Answer: x"], generation=config, system_prompt="Be brief.")
    assert backend.requests[0].config == config
    assert backend.requests[0].messages[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"query": "  "}, AgentInputError, "empty"),
        ({"history": [{"role": "robot", "content": "x"}]}, HistoryError, "role"),
        ({"history": "hi"}, HistoryError, "list"),
        ({"history": [{"role": "user", "content": 3}]}, HistoryError, "content"),
        ({"tools": ["calculator"]}, AgentInputError, "ToolRegistry"),
    ],
)
def test_misuse_raises_at_call_time(kwargs, error, match):
    args = {"tools": make_registry(), "history": [], "query": "q", **kwargs}
    backend = ScriptedBackend(["x"])
    with pytest.raises(error, match=match):
        run(backend, args["tools"], args["history"], args["query"])  # no iteration needed


def test_bad_settings_raise():
    with pytest.raises(AgentInputError):
        AgentSettings(max_steps=0)
    with pytest.raises(AgentInputError):
        AgentSettings(format="xml")  # type: ignore[arg-type]


def test_history_from_gradio_parts_and_system_messages_is_accepted():
    history = [
        {"role": "system", "content": "old system"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": None},
    ]
    backend, _ = _turn(["hello"], tools=ToolRegistry(), history=history, query="q")
    assert [m["content"] for m in backend.requests[0].messages] == [
        "You are a helpful assistant.",
        "hi",
        "",
        "q",
    ]


def test_native_call_without_tags_from_a_small_model_is_repaired():
    fenced = '```json\n{"name": "employee_db", "arguments": {"name": "张三"}}\n```'
    backend, events = _turn([fenced, "张三的生日是5月5日。"], family="qwen2")
    call = of_type(events, ev.ToolCall)[0]
    assert (call.name, call.arguments, call.repaired) == ("employee_db", {"name": "张三"}, True)
    assert _terminal(events).text == "张三的生日是5月5日。"
    assert len(backend.requests) == 2

    # reading a bare JSON call to an enabled tool is tolerant parsing, not the repair aid:
    # with repair off it is still a call (flagged), never a JSON "answer" for the user
    backend, events = _turn([fenced, "10月。"], family="qwen2", repair=False)
    assert [(c.name, c.repaired) for c in of_type(events, ev.ToolCall)] == [("employee_db", True)]
    assert _terminal(events).text == "10月。"


def test_a_garbled_action_name_is_repaired_when_one_tool_fits():
    script = [
        "Thought: t\nAction: The Calculator API can compute it\n"
        'Action Input: {"expression": "2*3"}',
        "Final Answer: 6",
    ]
    _, events = _turn(script)
    call = of_type(events, ev.ToolCall)[0]
    assert (call.name, call.repaired) == ("calculator", True)
    assert of_type(events, ev.Observation)[0].text == "6"
    assert _terminal(events).messages[1]["tool_calls"][0]["function"]["name"] == "calculator"

    _, events = _turn(script, repair=False)
    assert "unknown tool" in of_type(events, ev.Observation)[0].text
