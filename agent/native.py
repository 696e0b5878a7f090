"""Native function calling (Qwen2 family): tools go through the model's own chat template,
calls come back as <tool_call>{"name": ..., "arguments": {...}}</tool_call> blocks.

Every block in one reply is run in order and all results go back as tool messages before the
model is called again. A reply without a block is the final answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent import events as ev
from agent.calls import CallOutcome, run_call
from agent.dedupe import earlier_results
from agent.history import assistant_tool_calls, new_call_id
from agent.settings import AgentSettings
from agent.steps import FinalOutput, StepGenerator, run_again
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
        )

    def prefill(self, turn: list[Message]) -> str:
        return ""  # the chat template's own tool format needs no help to start

    def step(self, end: GenerationEnd, step: int, turn: list[Message]) -> StepGenerator:
        if not len(self.tools):  # plain chat
            return FinalOutput(end.text.strip())
        repair = self.settings.repair_arguments
        if end.tool_calls:  # a server returned them as structures
            reply = HermesReply(end.text.strip(), end.tool_calls)
        else:
            reply = parse_reply(end.text, self.tools.names() if repair else ())
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
                repaired=call.repaired,
                earlier=earlier,
            )
            outcomes.append(outcome)
        turn.append(assistant_tool_calls(reply.content, [o.call for o in outcomes]))
        turn.extend(o.result for o in outcomes)
        return run_again(outcomes)

    def visible(self, text: str) -> str:
        return parse_reply(text, self.tools.names()).content if len(self.tools) else text.strip()
