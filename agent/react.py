"""The ReAct format (Qwen v1 family, or any model on request): text in, text out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.aids.base import PendingCall
from agent.prompt import REACT_STOP_WORDS, replay_react
from agent.settings import AgentSettings
from agent.steps import Reply
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
        return GenerationRequest(
            messages=messages,
            stop=list(REACT_STOP_WORDS) if tools else [],
            continue_final=continue_final,
            config=self.settings.generation,
            thinking=self.settings.thinking,
        )

    def parse(self, end: GenerationEnd) -> Reply:
        if not len(self.tools):  # plain chat
            return Reply(answer=end.text.strip())
        parsed = parse_react(end.text)
        if isinstance(parsed, ParsedFinal):
            return Reply(parsed.answer, parsed.thought, discarded=parsed.discarded)
        if parsed.error:  # the shape of a call, but no tool named: tell the model
            call = PendingCall("", "", end.text.strip(), error=parsed.error)
            return Reply(thought=parsed.thought, calls=(call,), discarded=parsed.discarded)
        calls = tuple(
            PendingCall(a.name, a.raw_arguments, a.raw_arguments, thought=a.thought)
            for a in parsed.actions
        )
        return Reply(thought=parsed.thought, calls=calls, discarded=parsed.discarded)

    def visible(self, text: str) -> str:
        if not len(self.tools):
            return text.strip()
        parsed = parse_react(text)
        return parsed.answer if isinstance(parsed, ParsedFinal) else parsed.thought
