"""Agent events -> Chatbot messages (dicts with gradio's thought `metadata`).

render_event() turns one event into one trace card (smolagents' pull_messages_from_step is
the model). The views are folds over a turn's events, so a redraw after Stop or a language
switch shows exactly what a live run showed. No gradio import: the dicts are what gr.Chatbot
accepts, which keeps this testable without a browser.
"""

from __future__ import annotations

import json
from typing import Any

from agent.events import (
    AgentEvent,
    AgentFailed,
    AidFired,
    DiscardedObservation,
    FinalAnswer,
    ModelCallEnd,
    Observation,
    StepError,
    StepLimitReached,
    StepStarted,
    Stopped,
    TextDelta,
    Thought,
    ToolCall,
)
from ui.i18n import t
from ui.state import ChatSession, Turn

ChatMsg = dict[str, Any]


def fence(text: str, lang: str = "") -> str:
    """A code block that survives backticks inside the text."""
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text}\n{ticks}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def result_block(text: str) -> str:
    """A tool result as a code block: JSON objects and lists pretty-printed, text as it is."""
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            return fence(pretty_json(json.loads(stripped)), "json")
        except ValueError:
            pass
    return fence(text)


def step_id(turn_no: int, step: int) -> str:
    return f"t{turn_no}-s{step}"


def call_id(turn_no: int, cid: str) -> str:
    return f"t{turn_no}-c{cid}"


def _msg(content: str, **metadata: Any) -> ChatMsg:
    meta = {k: v for k, v in metadata.items() if v is not None}
    out: ChatMsg = {"role": "assistant", "content": content}
    if meta:
        out["metadata"] = meta
    return out


def tokens_log(event: ModelCallEnd, lang: str) -> str:
    end = event.end
    word = f" {end.stop_word!r}" if end.stop_word else ""
    cached = t("cached_log", lang, n=end.cached_tokens) if end.cached_tokens else ""
    return t(
        "tokens_log",
        lang,
        reason=event.reason,
        word=word,
        prompt=end.prompt_tokens,
        completion=end.completion_tokens,
        cached=cached,
    )


def render_event(event: AgentEvent, lang: str = "en", turn_no: int = 1) -> ChatMsg | None:
    """The trace card for one event; None for events that only update a card (deltas, ends)."""
    if isinstance(event, StepStarted):
        return _msg(
            "",
            title=t("step", lang, n=event.step),
            id=step_id(turn_no, event.step),
            status="pending",
        )
    if isinstance(event, Thought):
        return _msg(event.text, title=t("thought", lang), parent_id=step_id(turn_no, event.step))
    if isinstance(event, ToolCall):
        body = fence(pretty_json(event.arguments), "json")
        if event.repaired:
            body += f"\n\n{t('repaired', lang)}; raw:\n" + fence(event.raw_arguments)
        return _msg(
            body,
            title=t("action", lang, name=event.name),
            id=call_id(turn_no, event.call_id),
            parent_id=step_id(turn_no, event.step),
            status="pending",
        )
    if isinstance(event, Observation):
        if not event.ok:
            badge = t("badge_failed", lang)
        else:
            badge = t("badge_tool" if event.source == "tool" else "badge_agent", lang)
        return _msg(
            result_block(event.text),
            title=t("observation", lang, name=event.name),
            parent_id=step_id(turn_no, event.step),
            duration=round(event.seconds, 3),
            log=badge,
        )  # no status: open, so an opened step card shows its tool result at once
    if isinstance(event, DiscardedObservation):
        return _msg(
            fence(event.text),
            title=t("discarded", lang),
            parent_id=step_id(turn_no, event.step),
            status="done",
        )
    if isinstance(event, StepError):
        return _msg(
            event.message,
            title=t("step_error", lang),
            parent_id=step_id(turn_no, event.step),
            status="done",
        )
    if isinstance(event, AidFired):
        body = event.message + (f"\n\n{fence(event.text)}" if event.text.strip() else "")
        return _msg(
            body,
            title=t("aid_fired", lang, aid=event.aid),
            parent_id=step_id(turn_no, event.step),
            status="done",
        )
    if isinstance(event, FinalAnswer):
        text = event.text.strip() or t("empty_answer", lang)
        title = t("fallback_answer" if event.fallback else "final_answer", lang)
        return _msg(text, title=title, status="done")
    if isinstance(event, StepLimitReached):
        return _msg(t("step_limit", lang, message=event.message))
    if isinstance(event, Stopped):
        return _msg(t("stopped", lang))
    if isinstance(event, AgentFailed):
        return _msg(t("failed", lang, message=event.message))
    return None  # TextDelta, ModelCallEnd: they update the step card


def trace_messages(turn: Turn, turn_no: int, lang: str = "en") -> list[ChatMsg]:
    """The trace pane for one turn: a header, one card per step with its children."""
    short = turn.query if len(turn.query) <= 80 else turn.query[:77] + "..."
    out: list[ChatMsg] = [{"role": "user", "content": t("turn", lang, n=turn_no, query=short)}]
    steps: dict[int, ChatMsg] = {}
    raw: dict[int, str] = {}
    calls: dict[str, ChatMsg] = {}
    for event in turn.events:
        if isinstance(event, FinalAnswer) and event.steps in steps:
            steps[event.steps]["metadata"]["title"] += " · ✅"
        if isinstance(event, TextDelta):
            raw[event.step] = raw.get(event.step, "") + event.text
            if event.step in steps:
                steps[event.step]["content"] = fence(raw[event.step])
            continue
        if isinstance(event, ModelCallEnd):
            card = steps.get(event.step)
            if card is not None:
                log = "\n".join([tokens_log(event, lang), *event.end.notes])
                card["metadata"].update(
                    status="done", duration=round(event.end.seconds, 3), log=log
                )
                if event.end.constrained:  # a grammar kept this step's tool calls well formed
                    card["metadata"]["title"] += " · " + t("constrained", lang)
            continue
        msg = render_event(event, lang, turn_no)
        if msg is None:
            continue
        if isinstance(event, StepStarted):
            steps[event.step] = msg
        elif isinstance(event, ToolCall):
            calls[event.call_id] = msg
            step_card = steps.get(event.step)
            if step_card is not None:  # the collapsed card still says what the step did
                step_card["metadata"]["title"] += f" · 🛠️ {event.name}"
        elif isinstance(event, Observation) and event.call_id in calls:
            calls[event.call_id]["metadata"].pop("status", None)  # finished, left open
        out.append(msg)
    if turn.status != "running":  # a stopped run leaves no pending spinners behind
        for msg in out:
            meta = msg.get("metadata")
            if meta and meta.get("status") == "pending":
                meta["status"] = "done"
    return out


def caption(turn: Turn, lang: str) -> str:
    steps = t("steps_seconds", lang, steps=turn.steps, seconds=turn.seconds)
    return f"<sub>{t('answered_by', lang, model=turn.model)} · {steps}</sub>"


def chat_messages(turn: Turn, turn_no: int, lang: str = "en") -> list[ChatMsg]:
    """The chat pane for one turn: the query, tool uses (collapsed), the answer."""
    out: list[ChatMsg] = [{"role": "user", "content": turn.query}]
    calls: dict[str, ToolCall] = {}
    live = ""
    live_step = 0
    for event in turn.events:
        if isinstance(event, StepStarted):
            live, live_step = "", event.step
        elif isinstance(event, TextDelta):
            live += event.text
        elif isinstance(event, ToolCall):
            calls[event.call_id] = event
        elif isinstance(event, Observation):
            call = calls.get(event.call_id)
            args = fence(pretty_json(call.arguments), "json") + "\n\n" if call else ""
            out.append(
                _msg(
                    args + result_block(event.text),
                    title=t("action", lang, name=event.name),
                    duration=round(event.seconds, 3),
                    status="done",
                )
            )
    if turn.status == "running":
        out.append(
            _msg(
                fence(live) if live else "…",
                title=t("step", lang, n=max(live_step, 1)),
                status="pending",
            )
        )
    elif turn.status == "done":
        answer = turn.answer.strip() or t("empty_answer", lang)
        out.append(_msg(f"{answer}\n\n{caption(turn, lang)}"))
    elif turn.status == "stopped":
        text = turn.answer or (fence(live) if live else "")
        out.append(_msg(f"{text}\n\n{t('stopped', lang)} · {caption(turn, lang)}".strip()))
    elif turn.status == "step_limit":
        out.append(_msg(f"{t('step_limit', lang, message=turn.answer)}\n\n{caption(turn, lang)}"))
    else:
        out.append(_msg(f"{t('failed', lang, message=turn.answer)}\n\n{caption(turn, lang)}"))
    return out


def session_views(session: ChatSession) -> tuple[list[ChatMsg], list[ChatMsg]]:
    """(chat pane, trace pane) for the whole conversation."""
    chat: list[ChatMsg] = []
    trace: list[ChatMsg] = []
    for i, turn in enumerate(session.turns, start=1):
        chat.extend(chat_messages(turn, i, session.lang))
        trace.extend(trace_messages(turn, i, session.lang))
    return chat, trace
