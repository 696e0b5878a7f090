"""The reasoning chain (agent/reasoning.py) through the loop, with a scripted model."""

from __future__ import annotations

import io
import json
import threading

from agent import events as ev
from agent.cli import main
from agent.loop import run
from agent.reasoning import STEP_SCHEMA, read_step
from agent.settings import AgentSettings
from llm.scripted import ScriptedBackend
from tests.test_agent_support import collect, make_registry, of_type
from tools.registry import ToolRegistry

Q = "strawberry中有多少个字母r?"


def _step(title, content, action="continue"):
    return json.dumps({"title": title, "content": content, "next_action": action})


CHAIN = [
    _step("拆解单词", "s-t-r-a-w-b-e-r-r-y"),
    _step("逐个计数", "第3个和第8、9个字母是 r"),
    _step("复查", "换一种方法：straw 有 1 个，berry 有 2 个，共 3 个", "final_answer"),
    "strawberry 中有 3 个字母 r。",
]


def _chain(script, **kw):
    backend = ScriptedBackend(script, family="qwen2")
    settings = AgentSettings(reasoning_chain=True, **kw)
    return backend, collect(run(backend, make_registry(), [], Q, settings))


def test_each_step_is_a_titled_card_then_the_answer():
    backend, events = _chain(CHAIN)
    steps = of_type(events, ev.ReasoningStep)
    assert [s.title for s in steps] == ["拆解单词", "逐个计数", "复查"]
    assert [s.index for s in steps] == [1, 2, 3] and all(s.parsed for s in steps)
    assert all(s.seconds >= 0 for s in steps)
    final = events[-1]
    assert isinstance(final, ev.FinalAnswer) and final.text == "strawberry 中有 3 个字母 r。"
    assert final.thinking_seconds >= sum(s.seconds for s in steps)
    # the history keeps the question and the answer, not the chain
    assert [m["role"] for m in final.messages] == ["user", "assistant"]
    # every step call asked for the step schema; the answer call is free text
    assert [r.constraint and r.constraint.json_schema for r in backend.requests[:3]] == [
        STEP_SCHEMA
    ] * 3
    assert backend.requests[3].constraint is None
    # each step was appended to the conversation the next call saw
    last = backend.requests[3].messages
    assert last[0]["role"] == "system" and "JSON" in last[0]["content"]
    assert [m["content"] for m in last if m["role"] == "assistant"][1:] == CHAIN[:3]
    assert last[-1]["role"] == "user" and "最终答案" in last[-1]["content"]
    assert not of_type(events, ev.ToolCall)  # tools are not used in this mode


def test_a_step_that_is_not_json_is_shown_raw_and_the_chain_goes_on():
    script = ["I think it is 2.", _step("check", "actually 3", "final_answer"), "3"]
    _, events = _chain(script)
    raw, checked = of_type(events, ev.ReasoningStep)
    assert (raw.parsed, raw.content, raw.title) == (False, "I think it is 2.", "")
    assert checked.parsed and events[-1].text == "3"


def test_the_chain_stops_at_the_step_limit_then_answers():
    script = [_step(f"s{i}", "…") for i in range(3)] + ["done"]
    backend, events = _chain(script, reasoning_steps=3)
    assert len(of_type(events, ev.ReasoningStep)) == 3  # all three said "continue"
    assert isinstance(events[-1], ev.FinalAnswer) and events[-1].text == "done"
    assert backend.requests[-1].constraint is None and len(backend.requests) == 4


def test_an_answer_written_as_a_step_shows_its_content():
    _, events = _chain([_step("a", "b", "final_answer"), _step("Answer", "3 个 r", "final_answer")])
    assert events[-1].text == "3 个 r"


def test_a_failed_call_is_retried_up_to_three_times():
    boom = RuntimeError("server busy")
    _, events = _chain([boom, boom, _step("a", "b", "final_answer"), "ok"])
    assert events[-1].text == "ok"
    _, events = _chain([boom, boom, boom, "never"])
    assert isinstance(events[-1], ev.AgentFailed) and "server busy" in events[-1].message


def test_stop_mid_chain():
    backend = ScriptedBackend(CHAIN, family="qwen2")
    cancel = threading.Event()
    seen = []
    for event in run(backend, ToolRegistry(), [], Q, AgentSettings(reasoning_chain=True), cancel):
        seen.append(event)
        if isinstance(event, ev.ReasoningStep):
            cancel.set()
    assert isinstance(seen[-1], ev.Stopped) and len(of_type(seen, ev.ReasoningStep)) == 1
    assert len(backend.requests) == 1


def test_read_step_tolerates_what_models_write():
    assert read_step('```json\n{"title": "t", "content": "c"}\n```') == ("t", "c", "continue", True)
    assert read_step('{"content": "c", "next_action": "maybe"}')[2] == "continue"
    assert read_step("plain") == ("", "plain", "continue", False)


def test_cli_json_has_one_reasoning_step_event_per_step(tmp_path):
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"completions": CHAIN, "family": "qwen2"}), "utf-8")
    out = io.StringIO()
    code = main([Q, "--model", f"scripted:{path}", "--reasoning-chain", "--json"], out=out)
    assert code == 0
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    steps = [o for o in objs if o["type"] == "reasoning_step"]
    assert [(s["title"], s["content"]) for s in steps][0] == ("拆解单词", "s-t-r-a-w-b-e-r-r-y")
    assert all(isinstance(s["seconds"], float) for s in steps) and len(steps) == 3
    assert objs[-1]["type"] == "final_answer" and objs[-1]["text"].startswith("strawberry")
