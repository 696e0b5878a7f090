"""Reject an unverified answer: a Final Answer that skipped a tool the question clearly needs.

Small models often answer "The time in Tokyo is 3 pm" without calling the clock. Each tool
declares when it is clearly needed (Tool.needed_when, a regex over the question); an answer
given with no tool call although an enabled tool's rule matches is thrown away once per turn
and the model is re-asked, naming the tool. Judged from the question and the enabled tools
only, never from an expected answer, so the app and the eval run the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agent.aids.base import Aid, AidInfo, ReAsk, TurnContext, Verdict
from agent.messages import model_text, say
from tools.registry import Tool


def needed_tool(query: str, tools: Iterable[Tool]) -> str | None:
    """The enabled tool the question clearly needs: the one whose rule matches earliest in
    the question (its first-mentioned need), or None."""
    best: tuple[int, str] | None = None
    for tool in tools:
        if not tool.needed_when:
            continue
        m = re.search(tool.needed_when, query)
        if m is not None and (best is None or m.start() < best[0]):
            best = (m.start(), tool.name)
    return best[1] if best else None


class Reject(Aid):
    info = AidInfo(
        "reject",
        label={
            "en": "Re-ask once when an answer skips a clearly needed tool",
            "zh": "回答跳过了明显需要的工具时，重新提问一次",
        },
        help={
            "en": "Each tool says when it is clearly needed (e.g. a birthday → employee_db).",
            "zh": "每个工具声明何时明显需要它（例如问生日 → employee_db）。",
        },
    )

    def __init__(self) -> None:
        self.used = False

    def on_final(self, ctx: TurnContext, answer: str) -> Verdict | None:
        if self.used or not ctx.steps_left or any(m.get("tool_calls") for m in ctx.turn):
            return None
        tool = needed_tool(ctx.query, ctx.tools)
        if tool is None:
            return None
        self.used = True
        text = model_text("nudge_tool", ctx.query, tool=tool)
        return ReAsk(text, say("aid_reject", ctx.lang, tool=tool))
