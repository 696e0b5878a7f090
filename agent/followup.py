"""Asking for the answer: a model that has its tool results but does not answer is asked once.

Measured on the embedded Qwen2.5-Coder-0.5B with native calls: after employee_db returns, the
model repeats the same call (or ends with an empty reply), and a note in the tool message
("already called, answer now") does not change that. A user turn asking it to answer the
original question from the tool results above does: it then answers. With
AgentSettings.ask_for_answer that user turn is added once per turn, after a repeated call or an
empty reply, and only once some tool has returned a result.
"""

from __future__ import annotations

from typing import Literal

from agent import events as ev
from agent.history import assistant_message, user_message
from agent.prompt import question_lang
from llm.types import Message

ASK = {
    "en": "Using the tool results above, answer the original question: {query}",
    "zh": "请根据上面的工具结果回答最初的问题：{query}",
}


def ask_text(query: str) -> str:
    return ASK[question_lang(query)].format(query=query)


def ask_for_answer(
    turn: list[Message], step: int, reason: Literal["repeated_call", "empty_answer"]
) -> ev.AnswerRequested | None:
    """Add the user turn asking for the answer (into turn), once per turn; None if not asked.

    turn[0] is the user's question. An empty reply is kept as an empty assistant message so
    the conversation alternates as chat templates expect.
    """
    if not any(m["role"] == "tool" for m in turn):
        return None
    text = ask_text(turn[0]["content"])
    if any(m["role"] == "user" and m.get("content") == text for m in turn[1:]):
        return None
    if reason == "empty_answer":
        turn.append(assistant_message(""))
    turn.append(user_message(text))
    return ev.AnswerRequested(step, reason)
