"""Prefill "Thought:": a fresh ReAct reply starts with the format's first word already written.

Small models asked for ReAct often answer in prose, which the parser must then take as the
answer; writing "Thought:" for them keeps them in the format. Later steps already continue
after "Observation: …\\nThought:", so only a fresh assistant turn gets it.
"""

from __future__ import annotations

import dataclasses

from agent.aids.base import Aid, AidInfo, CallPlan, TurnContext
from agent.history import assistant_message

THOUGHT_PREFIX = "Thought:"


class Prefill(Aid):
    info = AidInfo(
        "prefill",
        label={
            "en": 'Start ReAct replies with "Thought:" (keeps the model in the format)',
            "zh": "ReAct 回复以 “Thought:” 开头（让模型保持格式）",
        },
        help={
            "en": "The first model call of a turn already has Thought: written.",
            "zh": "每轮第一次调用模型时，回复已写好 Thought:。",
        },
    )

    def on_request(self, ctx: TurnContext, plan: CallPlan) -> CallPlan:
        fresh = ctx.turn[-1]["role"] == "user"
        if ctx.format != "react" or not len(ctx.tools) or not fresh or plan.prefix:
            return plan
        request = plan.request
        messages = [*request.messages, assistant_message(THOUGHT_PREFIX)]
        request = dataclasses.replace(request, messages=messages, continue_final=True)
        return CallPlan(request, THOUGHT_PREFIX)
