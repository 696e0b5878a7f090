"""Constrain tool calls: once the model starts a call, the grammar engine keeps it well formed.

Small models pick the right tool and then write the parameter schema, half a JSON string or
a tool that does not exist. With this aid the backend constrains every call the moment the
model writes "Action:" (ReAct) or <tool_call> (native): the name is one of the enabled tools
and the arguments validate against that tool's schema. Everything before the trigger (the
Thought, an answer, chit-chat) stays free, so the model still decides whether to call.
Only backends that apply constraints get one (ModelInfo.supports_constraints).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agent.aids.base import Aid, AidInfo, CallPlan, TurnContext
from llm.constrain import hermes_constraint, react_constraint
from tools.registry import Tool


def call_schema(tool: Tool) -> dict[str, Any]:
    """The arguments a tool accepts: its schema, closed to unknown keys as Tool.validate is."""
    schema = dict(tool.parameters)
    schema.setdefault("additionalProperties", False)
    return schema


class Constrain(Aid):
    info = AidInfo(
        "constrain",
        label={
            "en": "Constrain tool calls to the tools' schemas (grammar)",
            "zh": "用语法约束工具调用，使其符合工具的参数格式",
        },
        help={
            "en": "Once the model starts a call, only an enabled tool with valid arguments "
            "can be written; the trace marks such a call as constrained.",
            "zh": "模型一旦开始调用工具，只能写出已启用的工具和合法参数；轨迹中会标注为已约束。",
        },
    )

    def on_request(self, ctx: TurnContext, plan: CallPlan) -> CallPlan:
        request = plan.request
        if not ctx.model.supports_constraints or not len(ctx.tools) or request.constraint:
            return plan
        specs = [(t.name, call_schema(t)) for t in ctx.tools]
        build = react_constraint if ctx.format == "react" else hermes_constraint
        request = dataclasses.replace(request, constraint=build(specs))
        return dataclasses.replace(plan, request=request)
