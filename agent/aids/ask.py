"""Ask for the answer: a model that has its tool results but does not answer is asked once.

Measured on the embedded Qwen2.5-Coder-0.5B with native calls: after employee_db returns, the
model repeats the same call (or ends with an empty reply), and a note in the tool message
("already called, answer now") does not change that. A user turn asking it to answer the
original question from the tool results above does. Added once per turn, after a repeated
call or an empty reply, and only once some tool has returned a result.
"""

from __future__ import annotations

from agent.aids.base import Aid, AidInfo, ReAsk, StepOutcome, TurnContext, Verdict
from agent.messages import model_text, say


class AskForAnswer(Aid):
    info = AidInfo(
        "ask",
        label={
            "en": "Ask once for the answer when the model has tool results but repeats or "
            "says nothing",
            "zh": "模型有了工具结果却重复调用或不作答时，请它根据结果作答一次",
        },
        help={
            "en": "One user turn: answer the original question from the tool results above.",
            "zh": "追加一条用户消息：请根据上面的工具结果回答最初的问题。",
        },
    )

    def __init__(self) -> None:
        self.used = False

    def _ask(self, ctx: TurnContext, message_key: str, after_answer: bool) -> ReAsk | None:
        if self.used or not ctx.steps_left or not ctx.tool_results():
            return None
        self.used = True
        text = model_text("ask_answer", ctx.query)
        return ReAsk(text, say(message_key, ctx.lang), after_answer=after_answer)

    def on_step(self, ctx: TurnContext, outcome: StepOutcome) -> Verdict | None:
        return self._ask(ctx, "aid_ask_repeat", after_answer=False) if outcome.repeated else None

    def on_final(self, ctx: TurnContext, answer: str) -> Verdict | None:
        return None if answer.strip() else self._ask(ctx, "aid_ask_empty", after_answer=True)
