"""Repair the calls small models garble: a tool name that is almost right, arguments that
copy the schema, wrap the call, or are a bare string (agent/repair.py has each repair)."""

from __future__ import annotations

import dataclasses

from agent.aids.base import Aid, AidInfo, PendingCall, TurnContext
from agent.errors import ArgumentError
from agent.repair import resolve_arguments, resolve_tool_name


class Repair(Aid):
    info = AidInfo(
        "repair",
        label={
            "en": "Repair garbled tool names and arguments",
            "zh": "修复写错的工具名和参数",
        },
        help={
            "en": "Fix what has one clear reading (schema copied for values, a wrapper object, "
            "a bare string); the call is flagged as repaired.",
            "zh": "只修复含义明确的错误（照抄参数说明、多包一层、裸字符串），并标记为已修复。",
        },
    )

    def on_tool_call(self, ctx: TurnContext, call: PendingCall) -> PendingCall:
        if call.error:
            return call
        name, renamed = call.name, False
        if ctx.tools.get(name) is None and name:
            fixed = resolve_tool_name(name, ctx.tools)
            if fixed is not None:
                name, renamed = fixed, True
        tool = ctx.tools.get(name)
        if tool is None:
            return call
        try:
            resolved = resolve_arguments(tool, call.arguments, repair=True)
        except ArgumentError as e:
            return dataclasses.replace(
                call, name=name, repaired=call.repaired or renamed, error=str(e)
            )
        repaired = call.repaired or renamed or resolved.repaired
        return dataclasses.replace(call, name=name, arguments=resolved.arguments, repaired=repaired)
