"""Running the tool calls of one model reply: through the aids, then the tool.

Nothing here raises on model mistakes: a call that cannot be read, an unknown tool or
unusable arguments become an error Observation (source "agent") the model can react to; a
tool that fails or times out comes back from ToolRegistry.call as an error result. The
step's assistant message and tool messages are appended to the turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from agent import events as ev
from agent.aids.base import Aid, PendingCall, StepOutcome, TurnContext
from agent.errors import ArgumentError
from agent.history import assistant_tool_calls, new_call_id, tool_call_entry, tool_message
from agent.messages import say
from agent.repair import resolve_arguments
from tools.registry import Tool


@dataclass(frozen=True)
class _Ran:
    entry: dict[str, Any]  # the assistant message's tool_calls entry
    text: str  # the Observation
    invalid: str | None = None  # why the call could not run
    by_aid: bool = False  # an aid answered it instead of the tool


def run_calls(
    ctx: TurnContext, aids: Sequence[Aid], thought: str, calls: Sequence[PendingCall]
) -> Generator[ev.AgentEvent, None, StepOutcome]:
    """Run each call in order; the turn gets one assistant message and one result each.

    The history grows call by call, so an aid sees the reply's earlier calls and results
    (a repeat inside one reply is caught too).
    """
    ran: list[_Ran] = []
    message = assistant_tool_calls(thought, [])
    ctx.turn.append(message)
    for call in calls:
        if call.thought:
            yield ev.Thought(ctx.step, call.thought)
        call_id = new_call_id()
        one = yield from _run_one(ctx, aids, call, call_id)
        ran.append(one)
        message["tool_calls"].append(one.entry)
        ctx.turn.append(tool_message(call_id, one.entry["function"]["name"], one.text))
    invalid = next((r.invalid for r in ran if r.invalid), None)
    return StepOutcome(invalid, repeated=bool(ran) and all(r.by_aid for r in ran))


def _checked(
    ctx: TurnContext, call: PendingCall
) -> tuple[PendingCall, Tool | None, dict[str, Any], str | None]:
    """(the call, its tool, validated arguments, why it cannot run)."""
    if call.error:
        return call, None, {}, call.error
    tool = ctx.tools.get(call.name)
    if tool is None:
        available = ", ".join(ctx.tools.names())
        if not call.name:
            return call, None, {}, f"no tool was named. Use one of [{available}]"
        return call, None, {}, f"unknown tool {call.name!r}. Use one of [{available}]"
    try:
        resolved = resolve_arguments(tool, call.arguments, repair=False)
    except ArgumentError as e:
        return call, tool, {}, str(e)
    if resolved.repaired:  # read leniently (json5): flagged like a repair
        call = dataclasses.replace(call, repaired=True)
    return call, tool, resolved.arguments, None


def _run_one(
    ctx: TurnContext, aids: Sequence[Aid], call: PendingCall, call_id: str
) -> Generator[ev.AgentEvent, None, _Ran]:
    for aid in aids:
        call = aid.on_tool_call(ctx, call)
    call, tool, arguments, error = _checked(ctx, call)
    if error is not None or tool is None:
        why = error or "the call cannot run"
        text = f"Error: {why}"
        written = call.arguments if isinstance(call.arguments, dict) else call.raw
        yield ev.ToolCall(ctx.step, call_id, call.name, {}, call.raw, call.repaired)
        yield ev.StepError(ctx.step, say("bad_call", ctx.lang, why=why))
        yield ev.Observation(ctx.step, call_id, call.name, text, 0.0, ok=False, source="agent")
        return _Ran(tool_call_entry(call_id, call.name, written), text, invalid=why)
    yield ev.ToolCall(ctx.step, call_id, tool.name, arguments, call.raw, call.repaired)
    entry = tool_call_entry(call_id, tool.name, arguments)
    for aid in aids:
        answered = aid.on_tool_run(ctx, tool.name, arguments)
        if answered is not None:
            text = answered.observation
            yield ev.AidFired(ctx.step, aid.info.key, answered.message)
            yield ev.Observation(ctx.step, call_id, tool.name, text, 0.0, ok=True, source="agent")
            return _Ran(entry, text, by_aid=True)
    result = ctx.tools.call(tool.name, arguments)
    yield ev.Observation(ctx.step, call_id, tool.name, result.text, result.seconds, ok=result.ok)
    return _Ran(entry, result.text)
