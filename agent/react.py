"""The ReAct format (Qwen v1 family, or any model on request): text in, text out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent import events as ev
from agent.calls import run_call
from agent.dedupe import earlier_results
from agent.history import assistant_message, assistant_tool_calls, new_call_id
from agent.prompt import REACT_STOP_WORDS, THOUGHT_PREFIX, replay_react
from agent.settings import AgentSettings
from agent.steps import FinalOutput, StepGenerator, run_again
from llm.toolcalls.react import ParsedFinal, parse_react
from llm.types import GenerationEnd, GenerationRequest, Message
from tools.registry import ToolRegistry


@dataclass
class ReactFormat:
    tools: ToolRegistry
    history: Sequence[Message]
    settings: AgentSettings
    name: str = "react"

    def request(self, turn: list[Message]) -> GenerationRequest:
        tools = list(self.tools)
        messages, continue_final = replay_react(
            self.settings.system_prompt, self.history, turn, tools
        )
        prefix = self.prefill(turn)
        if prefix:
            messages.append(assistant_message(prefix))
            continue_final = True
        return GenerationRequest(
            messages=messages,
            stop=list(REACT_STOP_WORDS) if tools else [],
            continue_final=continue_final,
            config=self.settings.generation,
        )

    def prefill(self, turn: list[Message]) -> str:
        """Small models asked for ReAct often answer in prose, which the parser must take as
        the answer; writing the format's first word keeps them in it. Later steps already
        continue after "Observation: ...\nThought:", so only a fresh assistant turn gets it."""
        fresh = turn[-1]["role"] == "user"
        return THOUGHT_PREFIX if self.settings.prefill_thought and len(self.tools) and fresh else ""

    def step(self, end: GenerationEnd, step: int, turn: list[Message]) -> StepGenerator:
        text = end.text
        if not len(self.tools):  # plain chat
            return FinalOutput(text.strip())
        parsed = parse_react(text)
        if parsed.discarded:
            yield ev.DiscardedObservation(step, parsed.discarded)
        if parsed.thought:
            yield ev.Thought(step, parsed.thought)
        if isinstance(parsed, ParsedFinal):
            return FinalOutput(parsed.answer)
        if parsed.error:  # the shape of a call, but no tool named: tell the model
            outcome = yield from run_call(
                self.tools,
                step=step,
                call_id=new_call_id(),
                name="",
                raw="",
                raw_text=text.strip(),
                repair=False,
                parse_error=parsed.error,
            )
            turn.append(assistant_tool_calls(parsed.thought, [outcome.call]))
            turn.append(outcome.result)
            return run_again([outcome])
        earlier = earlier_results(turn) if self.settings.dedupe_calls else None
        outcomes = []
        for action in parsed.actions:
            if action.thought:
                yield ev.Thought(step, action.thought)
            outcome = yield from run_call(
                self.tools,
                step=step,
                call_id=new_call_id(),
                name=action.name,
                raw=action.raw_arguments,
                raw_text=action.raw_arguments,
                repair=self.settings.repair_arguments,
                earlier=earlier,
            )
            outcomes.append(outcome)
        turn.append(assistant_tool_calls(parsed.thought, [o.call for o in outcomes]))
        turn.extend(o.result for o in outcomes)
        return run_again(outcomes)

    def visible(self, text: str) -> str:
        if not len(self.tools):
            return text.strip()
        parsed = parse_react(text)
        return parsed.answer if isinstance(parsed, ParsedFinal) else parsed.thought
