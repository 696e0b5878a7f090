"""Native function calling (Qwen2 / Qwen3 families): tools go through the model's own chat
template, calls come back as <tool_call>{"name": ..., "arguments": {...}}</tool_call> blocks
(read by llm/toolcalls/hermes.py) or, from an OpenAI-compatible server, as structures.

Every call in one reply is run in order and all results go back as tool messages before the
model is called again. A reply without a call is the final answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.aids.base import PendingCall
from agent.settings import AgentSettings
from agent.steps import Reply
from llm.toolcalls.hermes import RESPONSE_TAG, HermesReply, parse_reply
from llm.types import GenerationEnd, GenerationRequest, Message
from tools.registry import ToolRegistry

# A model that writes the tool's answer itself starts a <tool_response>: stop there.
NATIVE_STOP_WORDS: tuple[str, ...] = (RESPONSE_TAG,)


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
            thinking=self.settings.thinking,
        )

    def _read(self, end: GenerationEnd) -> HermesReply:
        if end.tool_calls:  # a server returned them as structures
            return HermesReply(end.text.strip(), end.tool_calls)
        # calls written as bare JSON to an enabled tool count too (flagged repaired)
        return parse_reply(end.text, self.tools.names())

    def parse(self, end: GenerationEnd) -> Reply:
        if not len(self.tools):  # plain chat
            return Reply(answer=end.text.strip())
        reply = self._read(end)
        if not reply.calls:
            return Reply(answer=reply.content, discarded=reply.discarded)
        calls = tuple(
            PendingCall(c.name, c.arguments, c.raw, error=c.error, repaired=c.repaired)
            for c in reply.calls
        )
        return Reply(thought=reply.content, calls=calls, discarded=reply.discarded)

    def visible(self, text: str) -> str:
        return parse_reply(text, self.tools.names()).content if len(self.tools) else text.strip()
