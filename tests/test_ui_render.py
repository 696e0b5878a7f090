"""Event -> chat message rendering, state bookkeeping and export, without a browser."""

from __future__ import annotations

import json

import pytest

from agent.events import (
    AgentFailed,
    AidFired,
    FinalAnswer,
    Observation,
    StepError,
    StepLimitReached,
    StepStarted,
    Stopped,
    TextDelta,
    ToolCall,
)
from tests.ui_helpers import TOOL_TURN_MESSAGES, tool_turn_events
from ui.export import to_dict, to_markdown, write_exports
from ui.i18n import t
from ui.render import chat_messages, fence, render_event, session_views, trace_messages
from ui.state import ChatSession


def finished_session(lang: str = "en") -> ChatSession:
    sess = ChatSession(lang=lang)
    turn = sess.begin("What is 3*7?", "scripted: demo.json")
    for event in tool_turn_events():
        turn.events.append(event)
        if isinstance(event, FinalAnswer):
            turn.finish(event)
    return sess


def test_fence_survives_backticks():
    text = "a ``` b"
    out = fence(text)
    assert out.startswith("````\n") and out.endswith("\n````")


@pytest.mark.parametrize(
    ("event", "title_part", "status"),
    [
        (StepStarted(3), "Step 3", "pending"),
        (ToolCall(1, "c9", "clock", {"tz": "UTC"}, '{"tz": "UTC"}'), "clock", "pending"),
        (Observation(1, "c9", "clock", "12:00", 0.5, True), "clock", None),  # open
        (StepError(2, "bad JSON"), "Step error", "done"),
        (FinalAnswer("done", 1), "Final answer", "done"),
        (AidFired(1, "reject", "asked again to use calculator", "3000"), "aid: reject", "done"),
    ],
)
def test_render_event_cards(event, title_part, status):
    msg = render_event(event, "en", turn_no=2)
    assert msg["role"] == "assistant"
    assert title_part in msg["metadata"]["title"]
    assert msg["metadata"].get("status") == status


def test_rejected_answer_card_sits_in_its_step_and_shows_the_answer():
    fired = AidFired(
        2, "reject", "回答没有经过工具验证；已要求模型使用 calculator 重新回答。", "大约3000"
    )
    msg = render_event(fired, "zh", turn_no=3)
    assert msg["content"].startswith(fired.message) and "大约3000" in msg["content"]
    assert msg["metadata"]["parent_id"] == "t3-s2"
    assert "reject" in msg["metadata"]["title"] and "小模型辅助" in msg["metadata"]["title"]


def test_render_event_ignores_deltas():
    assert render_event(TextDelta("x", 1)) is None


def test_observation_badges_tell_tool_from_agent():
    tool = render_event(Observation(1, "a", "calc", "1", 0.1, True, "tool"), "en")
    agent = render_event(Observation(1, "a", "calc", "no such tool", 0.0, True, "agent"), "en")
    failed = render_event(Observation(1, "a", "calc", "Error", 0.0, False), "en")
    assert tool["metadata"]["log"] == "from the tool"
    assert agent["metadata"]["log"] == "written by the agent"
    assert failed["metadata"]["log"] == "failed"
    assert tool["metadata"]["duration"] == 0.1


def test_tool_call_pretty_json_keeps_chinese():
    msg = render_event(ToolCall(1, "c", "db", {"name": "张三"}, "{}"), "zh")
    assert '"name": "张三"' in msg["content"]
    assert "调用 db" in msg["metadata"]["title"]


def test_trace_nests_steps_and_closes_them():
    sess = finished_session()
    trace = trace_messages(sess.turns[0], 1, "en")
    assert trace[0]["role"] == "user" and "What is 3*7?" in trace[0]["content"]
    steps = [m for m in trace if m.get("metadata", {}).get("id", "").startswith("t1-s")]
    # the collapsed step cards still say what each step did
    assert [m["metadata"]["title"] for m in steps] == ["Step 1 · 🛠️ calculator", "Step 2 · ✅"]
    assert all(m["metadata"]["status"] == "done" for m in steps)
    # the step card shows the raw streamed text and the model call's stop reason / tokens
    assert "Action Input" in steps[0]["content"]
    assert "'Observation:'" in steps[0]["metadata"]["log"]
    assert "120 prompt / 24 new" in steps[0]["metadata"]["log"]
    children = [m for m in trace if m.get("metadata", {}).get("parent_id") == "t1-s1"]
    titles = [m["metadata"]["title"] for m in children]
    assert titles[0].endswith("Thought") and "calculator" in titles[1]
    assert any("discarded" in t for t in titles)
    obs = next(m for m in children if "Observation" in m["metadata"]["title"])
    assert "21" in obs["content"]
    action = next(m for m in children if "Action" in m["metadata"]["title"])
    assert "status" not in action["metadata"]  # its observation arrived: no spinner, left open
    assert "status" not in obs["metadata"]
    assert "Final answer" in trace[-1]["metadata"]["title"]


def test_trace_is_live_while_running():
    sess = ChatSession(lang="en")
    turn = sess.begin("q", "m")
    turn.events += [StepStarted(1), TextDelta("Thought: hm", 1), TextDelta("m", 1)]
    trace = trace_messages(turn, 1, "en")
    assert trace[-1]["metadata"]["status"] == "pending"
    assert "Thought: hmm" in trace[-1]["content"]
    chat = chat_messages(turn, 1, "en")
    assert chat[-1]["metadata"]["status"] == "pending"
    assert "Thought: hmm" in chat[-1]["content"]


def test_chat_shows_tool_use_answer_and_model():
    chat, _ = session_views(finished_session())
    assert chat[0] == {"role": "user", "content": "What is 3*7?"}
    tool = chat[1]
    assert "calculator" in tool["metadata"]["title"] and "21" in tool["content"]
    assert chat[-1]["content"].startswith("3*7 = 21")
    assert "answered by scripted: demo.json" in chat[-1]["content"]
    assert "metadata" not in chat[-1]  # the answer is a plain bubble, not a collapsed block


@pytest.mark.parametrize(
    ("terminal", "status", "shown"),
    [
        (Stopped(1, "partial"), "stopped", "Stopped"),
        (StepLimitReached(8, "8 steps"), "step_limit", "No final answer"),
        (AgentFailed(1, "CUDA out of memory"), "failed", "CUDA out of memory"),
    ],
)
def test_unfinished_turns(terminal, status, shown):
    sess = ChatSession(lang="en")
    turn = sess.begin("q", "m")
    turn.events.append(StepStarted(1))
    turn.finish(terminal)
    assert turn.status == status
    chat, trace = session_views(sess)
    assert shown in chat[-1]["content"]
    assert all(m.get("metadata", {}).get("status") != "pending" for m in trace)
    assert sess.history() == []  # nothing the model said: kept out of the next prompt


def test_history_is_raw_messages_and_adds_user_when_missing():
    sess = finished_session()
    assert sess.history() == list(TOOL_TURN_MESSAGES)
    turn = sess.begin("and 2+2?", "m")
    assert sess.running and sess.history() == list(TOOL_TURN_MESSAGES)  # running turn excluded
    turn.finish(FinalAnswer("4", 1, ({"role": "assistant", "content": "4"},)))
    assert sess.history()[-2:] == [
        {"role": "user", "content": "and 2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    assert "<sub>" not in json.dumps(sess.history())  # view decoration never reaches the model
    assert sess.pop().query == "and 2+2?" and len(sess.turns) == 1
    sess.clear()
    assert sess.pop() is None


def test_export_json_and_markdown(tmp_path):
    sess = finished_session()
    data = to_dict(sess)
    assert data["messages"] == list(TOOL_TURN_MESSAGES)
    assert data["messages"][1]["tool_calls"][0]["function"]["name"] == "calculator"
    events = data["turns"][0]["events"]
    assert [e["type"] for e in events][:2] == ["step_started", "model_call_end"]  # no deltas
    assert data["turns"][0]["model"] == "scripted: demo.json"
    md = to_markdown(sess)
    assert "**User:** What is 3*7?" in md
    assert "**Action:** `calculator`" in md and "Observation** (tool, ok" in md
    assert "discarded" in md and md.rstrip().endswith("3*7 = 21")
    paths = write_exports(sess, tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["conversation.json", "conversation.md"]
    assert json.loads(open(paths[0], encoding="utf-8").read())["messages"] == data["messages"]


def test_chinese_labels():
    chat, trace = session_views(finished_session("zh"))
    assert "回答模型" in chat[-1]["content"]
    assert trace[0]["content"].startswith("第 1 轮")


@pytest.mark.parametrize("lang, shown", [("en", "ended without an answer"), ("zh", "没有给出回答")])
def test_an_empty_final_answer_is_said_not_shown_as_an_empty_bubble(lang, shown):
    sess = ChatSession()
    turn = sess.begin("张三?", "m")
    turn.finish(FinalAnswer("", 2, ({"role": "assistant", "content": ""},)))
    answer = chat_messages(turn, 1, lang)[-1]["content"]
    assert answer.startswith(shown) or shown in answer.split("\n\n")[0]
    assert shown in render_event(FinalAnswer("  ", 2), lang, 1)["content"]
    assert sess.history()[-1] == {"role": "assistant", "content": ""}  # history stays raw


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"name": "张三", "birthday": "5月5日"}', '```json\n{\n  "name": "张三",'),
        ("[1, 2]", "```json\n[\n  1,\n  2\n]\n```"),
        ("{not json", "```\n{not json\n```"),
        ("21", "```\n21\n```"),
    ],
)
def test_observation_json_is_pretty_printed(text, expected):
    msg = render_event(Observation(1, "c", "employee_db", text, 0.1, True), "en")
    assert msg["content"].startswith(expected)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_fallback_answer_card_says_the_model_did_not_phrase_it(lang):
    event = FinalAnswer("note\n\n- birthday: 5月5日", 3, (), fallback=True)
    msg = render_event(event, lang, turn_no=1)
    assert msg["content"] == event.text
    assert msg["metadata"]["title"] == t("fallback_answer", lang)
    assert render_event(FinalAnswer("x", 1), lang)["metadata"]["title"] == t("final_answer", lang)
