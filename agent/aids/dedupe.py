"""Repeated tool calls: the same call again in one turn is answered from the first result.

Small models (Qwen2.5-Coder-0.5B with native calls) repeat the same employee_db call with the
same arguments until the step limit instead of answering. A call whose name and checked
arguments equal one that already ran successfully in this turn is not executed again; its
Observation repeats the earlier result and asks for the answer. A model that repeats it once
more after that note is stopped: the turn ends with the tool's result, readable, and a note
that the model did not phrase an answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent.aids.base import Aid, AidInfo, Answered, Finish, StepOutcome, TurnContext, Verdict
from agent.answers import fallback_answer
from agent.messages import model_text, say
from llm.types import Message

CallKey = tuple[str, str]  # tool name, arguments as canonical JSON


def call_key(name: str, arguments: Any) -> CallKey:
    return name, json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)


def earlier_results(turn: Sequence[Message]) -> dict[CallKey, str]:
    """The calls that ran and succeeded earlier in this turn, with their result text."""
    results = {m.get("tool_call_id"): m.get("content") or "" for m in turn if m["role"] == "tool"}
    out: dict[CallKey, str] = {}
    for m in turn:
        for call in m.get("tool_calls") or ():
            fn = call["function"]
            text = results.get(call.get("id"))
            if text is None or text.startswith("Error:"):
                continue
            try:
                arguments = json.loads(fn["arguments"])
            except (TypeError, ValueError):
                continue
            out.setdefault(call_key(fn["name"], arguments), text)
    return out


class Dedupe(Aid):
    info = AidInfo(
        "dedupe",
        label={
            "en": "Answer a repeated tool call from its first result and ask for the answer",
            "zh": "重复的工具调用不再执行，返回上次结果并要求作答",
        },
        help={
            "en": "A second repeat after that note ends the turn with the tool's result.",
            "zh": "提示之后再次重复调用时，本轮以工具结果结束。",
        },
    )

    def __init__(self) -> None:
        self.repeats = 0

    def on_tool_run(
        self, ctx: TurnContext, name: str, arguments: dict[str, Any]
    ) -> Answered | None:
        earlier = earlier_results(ctx.turn).get(call_key(name, arguments))
        if earlier is None:
            return None
        note = model_text("repeat_note", ctx.query, tool=name, result=earlier)
        return Answered(note, say("aid_dedupe", ctx.lang))

    def on_step(self, ctx: TurnContext, outcome: StepOutcome) -> Verdict | None:
        self.repeats = self.repeats + 1 if outcome.repeated else 0
        if self.repeats < 2:
            return None
        answer = fallback_answer(ctx.turn, ctx.lang, "kept_repeating")
        if answer is None:
            return None
        return Finish(answer, say("aid_dedupe_stop", ctx.lang), fallback=True)
