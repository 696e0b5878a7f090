"""Running one tool call the model asked for: events out, messages for the history back.

Shared by the ReAct and native formats. Nothing here raises on model mistakes: an unknown tool
or unusable arguments become an error Observation (source "agent") the model can react to;
a tool that fails or times out comes back from ToolRegistry.call as an error result.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from agent import events as ev
from agent.dedupe import CallKey, call_key, repeat_observation
from agent.errors import ToolCallError, UnknownToolError
from agent.history import tool_call_entry, tool_message
from agent.repair import resolve_arguments, resolve_tool_name
from llm.types import Message
from tools.registry import Tool, ToolRegistry


@dataclass(frozen=True)
class CallOutcome:
    call: dict[str, Any]  # the entry for the assistant message's tool_calls
    result: Message  # the tool message
    observation: str
    invalid: str | None = None  # why the call could not run (unknown tool, bad arguments)
    repeated: bool = False  # an identical call already ran this turn: not run again
    earlier_result: str = ""  # with repeated: what that earlier call returned


def _lookup(tools: ToolRegistry, name: str, repair: bool) -> tuple[Tool, bool]:
    """The tool named, and whether the name had to be repaired to find it."""
    tool = tools.get(name)
    if tool is not None:
        return tool, False
    fixed = resolve_tool_name(name, tools) if repair and name else None
    if fixed is not None:
        return tools.get(fixed), True  # type: ignore[return-value]
    available = ", ".join(tools.names())
    if not name:
        raise UnknownToolError(f"no tool was named. Use one of [{available}]")
    raise UnknownToolError(f"unknown tool {name!r}. Use one of [{available}]")


def run_call(
    tools: ToolRegistry,
    *,
    step: int,
    call_id: str,
    name: str,
    raw: Any,
    raw_text: str,
    repair: bool,
    parse_error: str | None = None,
    repaired: bool = False,
    earlier: dict[CallKey, str] | None = None,
) -> Generator[ev.AgentEvent, None, CallOutcome]:
    """raw: Action Input text or the decoded native arguments; raw_text: as the model wrote it.

    parse_error: the call itself could not be read (a broken <tool_call> block).
    repaired: the call was already repaired while parsing (e.g. written without tags).
    earlier: results of the turn's calls so far (dedupe on): an identical call is not run
    again, and a new successful result is added.
    """
    try:
        if parse_error:
            raise ToolCallError(parse_error)
        tool, renamed = _lookup(tools, name, repair)
        name, repaired = tool.name, repaired or renamed
        resolved = resolve_arguments(tool, raw, repair=repair)
    except ToolCallError as e:
        message = f"Error: {e}"
        yield ev.ToolCall(step, call_id, name, {}, raw_text, repaired)
        yield ev.StepError(step, message)
        yield ev.Observation(step, call_id, name, message, 0.0, ok=False, source="agent")
        return CallOutcome(
            tool_call_entry(call_id, name, raw if isinstance(raw, dict) else raw_text),
            tool_message(call_id, name, message),
            message,
            invalid=str(e),
        )
    flagged = repaired or resolved.repaired
    yield ev.ToolCall(step, call_id, name, resolved.arguments, raw_text, flagged)
    key = call_key(name, resolved.arguments)
    entry = tool_call_entry(call_id, name, resolved.arguments)
    if earlier is not None and key in earlier:
        text = repeat_observation(name, earlier[key])
        yield ev.Observation(step, call_id, name, text, 0.0, ok=True, source="agent")
        return CallOutcome(
            entry,
            tool_message(call_id, name, text),
            text,
            repeated=True,
            earlier_result=earlier[key],
        )
    result = tools.call(name, resolved.arguments)
    yield ev.Observation(step, call_id, name, result.text, result.seconds, ok=result.ok)
    if earlier is not None and result.ok:
        earlier[key] = result.text
    return CallOutcome(entry, tool_message(call_id, name, result.text), result.text)
