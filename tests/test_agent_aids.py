"""The small-model aids, each on and off: the "Thought:" prefill, rejecting an answer that
skipped a needed tool, and answering a repeated tool call from its first result."""

from __future__ import annotations

import json

import pytest

from agent import events as ev
from agent.aids import AID_KEYS, DEFAULT_AIDS
from agent.aids.reject import needed_tool
from agent.loop import preview_prompt, run
from agent.messages import model_text
from agent.modelcall import PrefixJoin
from agent.settings import AgentSettings
from llm.scripted import ScriptedBackend
from tests.test_agent_support import SEED_QUESTION, agent_settings, collect, make_registry, of_type
from tools.registry import ToolRegistry, make_tool

# every aid off except the two the bare loop has always had (repair, retry)
ALL_OFF = dict.fromkeys(set(AID_KEYS) - {"repair", "retry"}, False)


def _turn(script, *, tools=None, query=SEED_QUESTION, family="qwen1", **settings):
    backend = ScriptedBackend(script, family=family)
    tools = make_registry() if tools is None else tools
    config = agent_settings(**ALL_OFF | settings)
    return backend, collect(run(backend, tools, [], query, config))


def _streamed(events, step):
    return "".join(e.text for e in of_type(events, ev.TextDelta) if e.step == step)


def _react(action, args, thought="Thought: go"):
    return f"{thought}\nAction: {action}\nAction Input: {json.dumps(args, ensure_ascii=False)}"


def _native(name, args):
    body = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def test_defaults_turn_the_aids_on():
    assert AgentSettings().aids == DEFAULT_AIDS == set(AID_KEYS)


# --------------------------------------------------------------------------- prefill


def test_prefill_opens_the_first_react_step_with_thought():
    script = [
        ' 先查张三的生日。\nAction: employee_db\nAction Input: {"name": "张三"}',
        " I now know the final answer\nFinal Answer: 10月",
    ]
    backend, events = _turn(script, prefill=True)
    first, second = backend.requests
    assert first.continue_final
    assert first.messages[-1] == {"role": "assistant", "content": "Thought:"}
    assert first.messages[-2]["role"] == "user"
    # the parser saw the prefix: a proper Thought and a call, not a prose answer
    assert [t.text for t in of_type(events, ev.Thought)][0] == "先查张三的生日。"
    assert [c.name for c in of_type(events, ev.ToolCall)] == ["employee_db"]
    assert events[-1].text == "10月"
    # the trace shows the whole step, prefix included
    assert _streamed(events, 1) == "Thought:" + script[0]
    prompts = [e.prompt for e in of_type(events, ev.StepStarted)]
    assert prompts[0].endswith("<|im_start|>assistant\nThought:")
    # a later step continues after the Observation; no second prefix
    assert second.messages[-1]["content"].endswith("\nThought:")
    assert not second.messages[-1]["content"].endswith("Thought:\nThought:")
    assert second.messages[-1]["content"].count("Thought:") == 2
    # preview shows the same first prompt
    config = agent_settings(**ALL_OFF | {"prefill": True})
    text, _ = preview_prompt(backend, make_registry(), [], SEED_QUESTION, config)
    assert text == prompts[0]


def test_prefill_off_sends_a_fresh_assistant_turn():
    backend, events = _turn(["Thought: x\nFinal Answer: 10月"])
    (request,) = backend.requests
    assert not request.continue_final and request.messages[-1]["role"] == "user"
    assert _streamed(events, 1) == "Thought: x\nFinal Answer: 10月"


def test_a_model_that_repeats_the_prefix_is_not_shown_it_twice():
    backend, events = _turn(["Thought: 直接回答\nFinal Answer: 10月"], prefill=True)
    assert _streamed(events, 1) == "Thought: 直接回答\nFinal Answer: 10月"
    assert [t.text for t in of_type(events, ev.Thought)] == ["直接回答"]
    assert events[-1].text == "10月"


def test_prefill_leaves_native_calls_and_plain_chat_alone():
    backend, _ = _turn(["10月"], family="qwen2", prefill=True)
    assert not backend.requests[0].continue_final
    backend, _ = _turn(["你好"], tools=ToolRegistry(), query="你好", prefill=True)
    assert not backend.requests[0].continue_final


@pytest.mark.parametrize(
    ("deltas", "shown"),
    [
        (["", " I", " think"], ["Thought: I", " think"]),
        (["Tho", "ught:", " x"], ["Thought:", " x"]),
        (["  Thought", ": x"], ["Thought: x"]),
        (["Th", "is"], ["Thought:This"]),
    ],
)
def test_prefix_join_holds_back_only_while_undecided(deltas, shown):
    join = PrefixJoin("Thought:")
    out = [t for t in (join.feed(d) for d in deltas) if t]
    assert out == shown and join.flush() == ""
    assert "".join(out) == join.full("".join(deltas))
    assert PrefixJoin("Thought:").flush() == "Thought:"  # nothing streamed at all
    assert PrefixJoin("").feed("  x") == "  x"  # no prefix: untouched


# --------------------------------------------------------------------------- reject


REJECT_SCRIPT = [
    "Thought: easy\nFinal Answer: 3000",
    _react("calculator", {"expression": "37*89"}),
    " I now know the final answer\nFinal Answer: 3293",
]


def test_reject_re_asks_once_naming_the_tool():
    backend, events = _turn(REJECT_SCRIPT, query="What is 37 times 89?", reject=True)
    (rejected,) = of_type(events, ev.AidFired)
    assert (rejected.step, rejected.aid, rejected.text) == (1, "reject", "3000")
    assert "calculator" in rejected.message
    assert ev.event_to_dict(rejected)["type"] == "aid_fired"
    final = events[-1]
    assert isinstance(final, ev.FinalAnswer) and final.text == "3293" and final.steps == 3
    assert [c.name for c in of_type(events, ev.ToolCall)] == ["calculator"]
    # the re-ask: the rejected answer replayed, then the instruction on the re-ask
    msgs = backend.requests[1].messages
    assert msgs[-2]["role"] == "assistant" and msgs[-2]["content"].endswith("Final Answer: 3000")
    assert msgs[-1]["role"] == "user" and msgs[-1]["content"].startswith("Answer the following")
    assert (
        "Use the calculator tool to answer the question: What is 37 times 89?"
        in (msgs[-1]["content"])
    )
    assert msgs[1]["content"] == "What is 37 times 89?"  # the first ask, without instruction
    roles = [m["role"] for m in final.messages]
    assert roles == ["user", "assistant", "user", "assistant", "tool", "assistant"]
    assert final.messages[0]["content"] == "What is 37 times 89?"


def test_reject_off_keeps_the_unchecked_answer():
    backend, events = _turn(REJECT_SCRIPT, query="What is 37 times 89?")
    assert not of_type(events, ev.AidFired)
    assert events[-1].text == "3000" and len(backend.requests) == 1


def test_reject_fires_only_once_per_turn():
    script = ["Final Answer: 3000", "Final Answer: still 3000"]
    _, events = _turn(script, query="What is 37 times 89?", reject=True)
    assert len(of_type(events, ev.AidFired)) == 1
    assert events[-1].text == "still 3000" and events[-1].steps == 2


@pytest.mark.parametrize(
    ("query", "script", "settings"),
    [
        ("Who wrote Hamlet?", ["Final Answer: Shakespeare"], {}),  # no tool needed
        ("现在几点？", ["Final Answer: 10点"], {}),  # the clock is not enabled
        ("What is 37 times 89?", ["Final Answer: 3000"], {"max_steps": 1}),  # no step left
        (
            "What is 37 times 89?",
            [_react("calculator", {"expression": "37*89"}), "Final Answer: 3293"],
            {},
        ),  # a tool was called
    ],
)
def test_reject_leaves_other_answers_alone(query, script, settings):
    backend, events = _turn(script, query=query, reject=True, **settings)
    assert not of_type(events, ev.AidFired)
    assert isinstance(events[-1], ev.FinalAnswer) and backend.remaining == 0


def test_reject_works_with_native_calls():
    script = ["3000", _native("calculator", {"expression": "37*89"}), "3293"]
    backend, events = _turn(script, family="qwen2", query="37乘以89等于多少？", reject=True)
    assert [(r.aid, r.text) for r in of_type(events, ev.AidFired)] == [("reject", "3000")]
    assert events[-1].text == "3293"
    nudge_msg = backend.requests[1].messages[-1]
    nudge = model_text("nudge_tool", "37乘以89等于多少？", tool="calculator")
    assert nudge_msg == {"role": "user", "content": nudge}
    assert "请使用 calculator 工具" in nudge_msg["content"]


def test_needed_tool_rules():
    from tools.builtin import default_registry

    tools = list(default_registry())
    assert needed_tool("张三的生日是几月？", tools) == "employee_db"
    assert needed_tool("What is 37 * 89?", tools) == "calculator"
    assert needed_tool("What time is it in Tokyo?", tools) == "clock"
    assert needed_tool("Use python to sort [3, 1, 2]", tools) == "python"
    assert needed_tool("Tell me a joke", tools) is None
    assert needed_tool("What is 37 * 89?", [t for t in tools if t.name == "clock"]) is None


# --------------------------------------------------------------------------- dedupe


def _counting_registry() -> tuple[ToolRegistry, list[str]]:
    calls: list[str] = []

    def employee_db(name: str) -> str:
        """Look up an employee.

        Args:
            name: The employee's name.
        """
        calls.append(name)
        return "张三: 业务员, 5月5日" if name == "张三" else "查无此人"

    tool = make_tool(employee_db, name="employee_db", name_for_human="Employee Database")
    return ToolRegistry([tool]), calls


def test_dedupe_answers_a_repeated_native_call_from_the_first_result():
    tools, executed = _counting_registry()
    call = _native("employee_db", {"name": "张三"})
    script = [call, call, "张三是业务员，生日在5月。"]
    backend, events = _turn(script, tools=tools, family="qwen2", dedupe=True)
    assert executed == ["张三"]  # the repeat did not run
    first, repeat = of_type(events, ev.Observation)
    assert first.source == "tool" and first.text == "张三: 业务员, 5月5日"
    assert repeat.source == "agent" and repeat.ok
    # the note is written in the question's language (Chinese here)
    assert repeat.text == model_text(
        "repeat_note", SEED_QUESTION, tool="employee_db", result=first.text
    )
    assert [f.aid for f in of_type(events, ev.AidFired)] == ["dedupe"]
    final = events[-1]
    assert isinstance(final, ev.FinalAnswer) and final.text == "张三是业务员，生日在5月。"
    # the model saw the nudge as the repeated call's tool result
    assert backend.requests[2].messages[-1]["content"] == repeat.text


def test_without_dedupe_the_repeat_loop_runs_to_the_step_limit():
    tools, executed = _counting_registry()
    call = _native("employee_db", {"name": "张三"})
    _, events = _turn([call] * 4, tools=tools, family="qwen2", max_steps=4)
    assert executed == ["张三"] * 4
    assert isinstance(events[-1], ev.StepLimitReached)


def test_dedupe_stops_a_model_that_ignores_the_repeat_note():
    """The 0.5B model repeats the call even after being told it already ran: the turn ends
    there, with the tool's result shown readably, instead of burning every step left."""
    tools, executed = _counting_registry()
    call = _native("employee_db", {"name": "张三"})
    backend, events = _turn([call] * 6, tools=tools, family="qwen2", max_steps=8, dedupe=True)
    assert executed == ["张三"]
    end = events[-1]
    assert isinstance(end, ev.FinalAnswer) and end.fallback and end.steps == 3
    assert "kept calling employee_db" in end.text and "5月5日" in end.text
    assert end.messages[-1] == {"role": "assistant", "content": end.text}
    assert [f.aid for f in of_type(events, ev.AidFired)][-1] == "dedupe"
    assert len(backend.requests) == 3


def test_a_different_call_between_repeats_resets_the_count():
    tools, executed = _counting_registry()
    zhang, li = _native("employee_db", {"name": "张三"}), _native("employee_db", {"name": "李四"})
    script = [zhang, zhang, li, zhang, "done"]
    _, events = _turn(script, tools=tools, family="qwen2", max_steps=8, dedupe=True)
    assert executed == ["张三", "李四"]
    assert isinstance(events[-1], ev.FinalAnswer) and events[-1].text == "done"


def test_dedupe_with_react_and_what_counts_as_the_same_call():
    tools, executed = _counting_registry()
    script = [
        _react("employee_db", {"name": "张三"}),
        _react("employee_db", {"name": "李四"}),  # other arguments: runs
        _react("employee_db", {"name": "张三"}, "Thought: again"),  # same call: answered
        " I now know the final answer\nFinal Answer: 工程师",
    ]
    backend, events = _turn(script, tools=tools, dedupe=True)
    assert executed == ["张三", "李四"]
    sources = [o.source for o in of_type(events, ev.Observation)]
    assert sources == ["tool", "tool", "agent"]
    assert backend.requests[3].messages[-1]["content"].count("本轮你已经用相同参数调用过") == 1
    assert events[-1].text == "工程师"


def test_dedupe_reruns_a_call_that_failed_and_catches_repeats_in_one_reply():
    attempts: list[int] = []

    def flaky(n: int) -> str:
        """Fails the first time.

        Args:
            n: A number.
        """
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("busy")
        return f"ok {n}"

    tools = ToolRegistry([make_tool(flaky, name="flaky", name_for_human="Flaky")])
    two = _native("flaky", {"n": 1}) + _native("flaky", {"n": 1})
    script = [_native("flaky", {"n": 1}), two, "done"]
    _, events = _turn(script, tools=tools, family="qwen2", dedupe=True)
    assert attempts == [1, 1]  # the failed call ran again, its repeat in the same reply did not
    obs = of_type(events, ev.Observation)
    assert [o.ok for o in obs] == [False, True, True]
    assert [o.source for o in obs] == ["tool", "tool", "agent"]
    assert events[-1].text == "done"


# --------------------------------------------------------------------------- ask for the answer


def test_a_repeated_call_gets_one_user_turn_asking_for_the_answer():
    tools, executed = _counting_registry()
    call = _native("employee_db", {"name": "张三"})
    script = [call, call, "张三的生日在5月，还有3个月。"]
    backend, events = _turn(script, tools=tools, family="qwen2", dedupe=True, ask=True)
    assert executed == ["张三"]
    asked = [f for f in of_type(events, ev.AidFired) if f.aid == "ask"]
    assert [a.step for a in asked] == [2] and "repeated" in asked[0].message
    last = backend.requests[2].messages[-1]
    assert last["role"] == "user" and last["content"].startswith("请根据上面的工具结果回答")
    assert SEED_QUESTION in last["content"]
    final = events[-1]
    assert isinstance(final, ev.FinalAnswer) and final.text == "张三的生日在5月，还有3个月。"
    roles = [m["role"] for m in final.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "user", "assistant"]


def test_an_empty_reply_after_tool_results_is_asked_once():
    tools, _ = _counting_registry()
    script = [_native("employee_db", {"name": "张三"}), "", "", "never reached"]
    backend, events = _turn(script, tools=tools, family="qwen2", ask=True)
    (asked,) = of_type(events, ev.AidFired)
    assert asked.aid == "ask" and "nothing" in asked.message
    final = events[-1]
    # asked once, not twice; then the user gets the tool result, never an empty answer
    assert isinstance(final, ev.FinalAnswer) and final.fallback
    assert "张三: 业务员" in final.text and "did not phrase an answer" in final.text
    assert len(backend.requests) == 3
    assert [m["role"] for m in final.messages][-3:] == ["assistant", "user", "assistant"]


def test_no_ask_without_tool_results_or_when_off():
    tools, _ = _counting_registry()
    _, events = _turn([""], tools=tools, family="qwen2", ask=True)
    assert not of_type(events, ev.AidFired)  # nothing to answer from
    call = _native("employee_db", {"name": "张三"})
    _, events = _turn([call, ""], tools=tools, family="qwen2", ask=False)
    assert not of_type(events, ev.AidFired) and isinstance(events[-1], ev.FinalAnswer)


def test_ask_for_answer_with_react():
    tools, _ = _counting_registry()
    script = [
        _react("employee_db", {"name": "张三"}),
        " I now know the final answer\nFinal Answer: ",
        " I now know the final answer\nFinal Answer: 10月",
    ]
    backend, events = _turn(script, tools=tools, ask=True)
    assert [f.aid for f in of_type(events, ev.AidFired)] == ["ask"]
    assert events[-1].text == "10月"
    prompt = backend.render(backend.requests[2])
    assert "请根据上面的工具结果回答最初的问题" in prompt
