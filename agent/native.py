"""Native function calling (Qwen2 family): tools go through the model's own chat template,
calls come back as <tool_call>{"name": ..., "arguments": {...}}</tool_call> blocks.

Every block in one reply is run in order and all results go back as tool messages before the
model is called again. A reply without a block is the final answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import json5

from agent import events as ev
from agent.calls import CallOutcome, run_call
from agent.history import assistant_tool_calls, new_call_id
from agent.parser import strip_fences
from agent.repair import first_json_block
from agent.settings import AgentSettings
from agent.steps import FinalOutput, RunAgain, StepGenerator
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


def parse_native(text: str) -> NativeReply:
    discarded = ""
    cut = text.find(RESPONSE_TAG)
    if cut >= 0:
        text, discarded = text[:cut], text[cut:].strip()
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
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

    def step(self, text: str, step: int, turn: list[Message]) -> StepGenerator:
        if not len(self.tools):  # plain chat
            return FinalOutput(text.strip())
        reply = parse_native(text)
        if reply.discarded:
            yield ev.DiscardedObservation(step, reply.discarded)
        if not reply.calls:
            return FinalOutput(reply.content)
        if reply.content:
            yield ev.Thought(step, reply.content)
        outcomes: list[CallOutcome] = []
        for call in reply.calls:
            outcome = yield from run_call(
                self.tools,
                step=step,
                call_id=new_call_id(),
                name=call.name,
                raw=call.arguments,
                raw_text=call.raw,
                repair=self.settings.repair_arguments,
                parse_error=call.error,
            )
            outcomes.append(outcome)
        turn.append(assistant_tool_calls(reply.content, [o.call for o in outcomes]))
        turn.extend(o.result for o in outcomes)
        return RunAgain(next((o.invalid for o in outcomes if o.invalid), None))

    def visible(self, text: str) -> str:
        return parse_native(text).content if len(self.tools) else text.strip()
