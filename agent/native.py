"""Native function calling (Qwen2 family): tools go through the model's own chat template,
calls come back as <tool_call>{"name": ..., "arguments": {...}}</tool_call> blocks.

Every block in one reply is run in order and all results go back as tool messages before the
model is called again. A reply without a block is the final answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import json5

from agent import events as ev
from agent.calls import CallOutcome, run_call
from agent.dedupe import earlier_results
from agent.history import assistant_tool_calls, new_call_id
from agent.parser import strip_fences
from agent.repair import first_json_block, first_json_span
from agent.settings import AgentSettings
from agent.steps import FinalOutput, StepGenerator, run_again
from llm.types import GenerationRequest, Message
from tools.registry import ToolRegistry

_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|(?=<tool_call>)|\Z)", re.DOTALL)
_NAME = re.compile(r"""["']name["']\s*:\s*["']([^"']+)["']""")
RESPONSE_TAG = "<tool_response>"
# A model that writes the tool's answer itself starts a <tool_response>: stop there.
NATIVE_STOP_WORDS: tuple[str, ...] = (RESPONSE_TAG,)
_CALL_FORMAT = '<tool_call>{"name": <tool name>, "arguments": {...}}</tool_call>'


@dataclass(frozen=True)
class NativeCall:
    name: str
    arguments: Any  # decoded arguments, or a string the repair step may still read
    raw: str  # the block as the model wrote it
    error: str | None = None  # the block could not be read
    untagged: bool = False  # a bare JSON call without <tool_call> tags (a repair)


@dataclass(frozen=True)
class NativeReply:
    content: str  # text outside the tool calls (the model's thought, or its answer)
    calls: tuple[NativeCall, ...]
    discarded: str = ""  # a <tool_response> the model wrote itself


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return json5.loads(text)
    except ValueError:
        found = first_json_block(text)
        if found is None:
            raise
        return found


def parse_call(block: str) -> NativeCall:
    body = strip_fences(block.strip())
    try:
        data = _decode(body)
    except ValueError as e:
        m = _NAME.search(body)
        error = f"the tool call is not valid JSON ({e}). Write {_CALL_FORMAT}"
        return NativeCall(m.group(1) if m else "", body, body, error)
    if isinstance(data, dict) and isinstance(data.get("function"), dict):
        data = data["function"]  # OpenAI-shaped {"function": {"name", "arguments"}}
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return NativeCall("", body, body, f"the tool call needs a name. Write {_CALL_FORMAT}")
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):  # double-encoded arguments
        try:
            args = json5.loads(args) if args.strip() else {}
        except ValueError:
            pass
    return NativeCall(data["name"].strip(), args, body)


_FENCED = re.compile(r"```[\w-]*[ \t]*\n?(.*?)```", re.DOTALL)


def _untagged_calls(text: str, tool_names: Collection[str]) -> NativeReply | None:
    """Calls written as bare or fenced JSON, no tags: small models do this (Qwen2.5-0.5B).

    Only JSON shaped like a call to an enabled tool counts, so an answer showing JSON stays
    an answer.
    """
    spans = [(m.start(), m.end(), m.group(1)) for m in _FENCED.finditer(text)]
    if not spans and (bare := first_json_span(text)) is not None:
        spans = [(bare[0], bare[1], text[bare[0] : bare[1]])]
    calls: list[NativeCall] = []
    outside, pos = [], 0
    for start, end, body in spans:
        try:
            value = _decode(body.strip())
        except ValueError:
            continue
        items = value if isinstance(value, list) else [value]
        found = [
            parse_call(json.dumps(v, ensure_ascii=False)) for v in items if _looks_like_call(v)
        ]
        if not found or len(found) != len(items) or any(c.name not in tool_names for c in found):
            continue
        calls.extend(NativeCall(c.name, c.arguments, body.strip(), untagged=True) for c in found)
        outside.append(text[pos:start])
        pos = end
    if not calls:
        return None
    outside.append(text[pos:])
    return NativeReply("".join(outside).strip(), tuple(calls))


def _looks_like_call(value: Any) -> bool:
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"]
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and ("arguments" in value or "parameters" in value)
    )


def parse_native(text: str, tool_names: Collection[str] = ()) -> NativeReply:
    """tool_names: enabled tools; given, untagged JSON calls to them are read too (a repair)."""
    discarded = ""
    cut = text.find(RESPONSE_TAG)
    if cut >= 0:
        text, discarded = text[:cut], text[cut:].strip()
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
        untagged = _untagged_calls(text, tool_names) if tool_names else None
        if untagged is not None:
            return NativeReply(untagged.content, untagged.calls, discarded)
        return NativeReply(text.strip(), (), discarded)
    outside = text[: blocks[0].start()] + text[blocks[-1].end() :]
    return NativeReply(outside.strip(), tuple(parse_call(b.group(1)) for b in blocks), discarded)


@dataclass
class NativeFormat:
    tools: ToolRegistry
    history: Sequence[Message]
    settings: AgentSettings
    name: str = "native"

    def request(self, turn: list[Message]) -> GenerationRequest:
        messages = [
            {"role": "system", "content": self.settings.system_prompt},
            *self.history,
            *turn,
        ]
        schemas = [t.openai_schema() for t in self.tools]
        return GenerationRequest(
            messages=messages,
            stop=list(NATIVE_STOP_WORDS) if schemas else [],
            tools=schemas or None,
            config=self.settings.generation,
        )

    def prefill(self, turn: list[Message]) -> str:
        return ""  # the chat template's own tool format needs no help to start

    def step(self, text: str, step: int, turn: list[Message]) -> StepGenerator:
        if not len(self.tools):  # plain chat
            return FinalOutput(text.strip())
        repair = self.settings.repair_arguments
        reply = parse_native(text, self.tools.names() if repair else ())
        if reply.discarded:
            yield ev.DiscardedObservation(step, reply.discarded)
        if not reply.calls:
            return FinalOutput(reply.content)
        if reply.content:
            yield ev.Thought(step, reply.content)
        outcomes: list[CallOutcome] = []
        earlier = earlier_results(turn) if self.settings.dedupe_calls else None
        for call in reply.calls:
            outcome = yield from run_call(
                self.tools,
                step=step,
                call_id=new_call_id(),
                name=call.name,
                raw=call.arguments,
                raw_text=call.raw,
                repair=repair,
                parse_error=call.error,
                repaired=call.untagged,
                earlier=earlier,
            )
            outcomes.append(outcome)
        turn.append(assistant_tool_calls(reply.content, [o.call for o in outcomes]))
        turn.extend(o.result for o in outcomes)
        return run_again(outcomes)

    def visible(self, text: str) -> str:
        return parse_native(text, self.tools.names()).content if len(self.tools) else text.strip()
