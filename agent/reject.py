"""Rejecting an unverified answer: a Final Answer that skipped a tool the question clearly needs.

Small models often answer "The time in Tokyo is 3 pm" without calling the clock. With
AgentSettings.reject_unverified, such an answer is thrown away once per turn and the model is
re-asked, naming the tool. "Clearly needed" is judged from the question and the enabled tools
only (the keyword rules below), never from an expected answer, so the app and the eval run the
same rule; the eval's test suite checks it never fires on the no-tool cases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent import events as ev
from agent.history import assistant_message, user_message
from agent.prompt import question_lang
from llm.types import Message

# Keyword rules: a tool is "clearly needed" when its rule matches the question.
# Checked in this order: an explicit "with Python" wins over the arithmetic it asks for, and
# a lookup comes before the computation that uses its result.
_NEEDS: dict[str, re.Pattern[str]] = {
    "python": re.compile(r"\bpython\b|代码|\bcode\b", re.IGNORECASE),
    "employee_db": re.compile(
        r"employee|database|birthday|department|job title|position|员工|数据库|生日|职位|部门|工作",
        re.IGNORECASE,
    ),
    "clock": re.compile(
        r"\bwhat time\b|\bcurrent time\b|\btime is it\b|\btoday'?s date\b|\bwhat day\b"
        r"|几点|时间|几月几号|日期|星期几",
        re.IGNORECASE,
    ),
    "calculator": re.compile(
        r"\d\s*[-+*/×÷^%]\s*\(?\d|\d+\s*(times|plus|minus|divided|percent|by|%|to the power)"
        r"|[乘除加减]|次方|平方根|折后|square root|\bdivide\b|\bcompute\b|\bcalculat",
        re.IGNORECASE,
    ),
}

NUDGE = {
    "en": (
        "Your answer was not checked with a tool. Use the {tool} tool to answer the question: "
        "{query}"
    ),
    "zh": "你的回答没有经过工具验证。请使用 {tool} 工具来回答这个问题：{query}",
}


def needed_tool(query: str, tool_names: Sequence[str]) -> str | None:
    """The enabled tool the question clearly needs, or None (first rule that matches)."""
    for name, rule in _NEEDS.items():
        if name in tool_names and rule.search(query):
            return name
    return None


def nudge(query: str, tool: str) -> str:
    """The re-ask, in the question's language (Chinese if it has any CJK character)."""
    return NUDGE[question_lang(query)].format(tool=tool, query=query)


def review_answer(
    answer: str, step: int, turn: list[Message], tool_names: Sequence[str]
) -> ev.AnswerRejected | None:
    """Reject the turn's answer if it skipped a needed tool; the re-ask goes into turn.

    Only the turn's first answer is judged (one re-ask per turn), and only when no tool was
    called in the turn. turn[0] is the user's question.
    """
    if any(m.get("tool_calls") for m in turn) or sum(m["role"] == "user" for m in turn) > 1:
        return None
    query = turn[0]["content"]
    tool = needed_tool(query, tool_names)
    if tool is None:
        return None
    turn.extend([assistant_message(answer), user_message(nudge(query, tool))])
    return ev.AnswerRejected(step, answer, tool)
