"""No junk answers: an answer that is raw JSON, tool-call syntax or the agent's own note echoed
back is not handed to the user; the model is asked once to answer in plain words. (If it
still cannot, the loop shows the last tool result, readable, with a note.)"""

from __future__ import annotations

from agent.aids.base import Aid, AidInfo, ReAsk, TurnContext, Verdict
from agent.answers import junk_kind
from agent.messages import model_text, say


class NoJunk(Aid):
    info = AidInfo(
        "junk",
        label={
            "en": "Re-ask once when the answer is raw JSON, call syntax or an echoed note",
            "zh": "回答是原始 JSON、工具调用格式或回显的提示时，重新要求一次文字回答",
        },
        help={
            "en": "Junk is never shown as the answer; the readable tool result is shown instead.",
            "zh": "这类回答不会直接显示给用户；改为显示整理后的工具结果。",
        },
    )

    def __init__(self) -> None:
        self.used = False

    def on_final(self, ctx: TurnContext, answer: str) -> Verdict | None:
        kind = junk_kind(answer)
        if self.used or kind in (None, "empty") or not ctx.steps_left:
            return None
        self.used = True
        text = model_text("ask_words", ctx.query)
        return ReAsk(text, say("aid_junk", ctx.lang, kind=say(f"junk_{kind}", ctx.lang)))
