"""What one model step leads to, and the interface each tool-calling format implements.

The loop stays format-agnostic: a format builds the request for the turn so far and turns the
model's text into events plus a typed next step.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

from agent.calls import CallOutcome
from agent.events import AgentEvent
from llm.types import GenerationEnd, GenerationRequest, Message
from tools.registry import ToolRegistry


@dataclass(frozen=True)
class FinalOutput:
    """The model answered: the turn ends with this text."""

    answer: str


@dataclass(frozen=True)
class RunAgain:
    """Tool results were added to the turn: call the model again.

    invalid: why a call could not run (unknown tool, bad arguments), None when all ran.
    repeated: (tool, its earlier result) when every call of the step repeated one that had
    already run this turn (dedupe_calls); the loop stops a model that keeps doing it.
    """

    invalid: str | None = None
    repeated: tuple[str, str] | None = None


def run_again(outcomes: list[CallOutcome]) -> RunAgain:
    """The next step after a model step whose tool calls ran (or were refused)."""
    invalid = next((o.invalid for o in outcomes if o.invalid), None)
    repeats = [o for o in outcomes if o.repeated]
    repeated = None
    if outcomes and len(repeats) == len(outcomes):
        repeated = (repeats[-1].call["function"]["name"], repeats[-1].earlier_result)
    return RunAgain(invalid, repeated)


NextStep = FinalOutput | RunAgain
StepGenerator = Generator[AgentEvent, None, NextStep]


class ToolFormat(Protocol):
    name: str  # "react" or "native"
    tools: ToolRegistry  # the enabled tools

    def prefill(self, turn: list[Message]) -> str:
        """Text the request already writes at the start of the model's reply ("" for none)."""
        ...

    def request(self, turn: list[Message]) -> GenerationRequest:
        """The model call for this turn so far (turn[0] is the user message)."""
        ...

    def step(self, end: GenerationEnd, step: int, turn: list[Message]) -> StepGenerator:
        """Read the model's reply (its text, or calls a server returned as structures):
        yield events, append the step's messages to turn."""
        ...

    def visible(self, text: str) -> str:
        """The answer-like part of an unfinished reply (kept when the user stops the turn)."""
        ...
