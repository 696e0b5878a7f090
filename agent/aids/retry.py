"""Retry: a call that cannot run (unknown tool, unusable arguments) goes back to the model as
an error Observation and it gets another step; without this aid the turn ends there."""

from __future__ import annotations

from agent.aids.base import Aid, AidInfo, Continue, StepOutcome, TurnContext, Verdict


class Retry(Aid):
    info = AidInfo(
        "retry",
        label={
            "en": "Give the model another step after a call that cannot run",
            "zh": "工具调用无法执行时，让模型再试一步",
        },
        help={
            "en": "The error goes back as the Observation; off: the turn ends with the error.",
            "zh": "错误信息作为 Observation 返回给模型；关闭时本轮以错误结束。",
        },
    )

    def on_step(self, ctx: TurnContext, outcome: StepOutcome) -> Verdict | None:
        return Continue() if outcome.invalid else None
