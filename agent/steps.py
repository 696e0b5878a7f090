"""What a model reply says, and the interface each tool-calling format implements.

The loop stays format-agnostic: a format builds the request for the turn so far and reads
the model's reply into a Reply (an answer, or calls to run); running the calls, the aids and
the history are the loop's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.aids.base import PendingCall
from llm.types import GenerationEnd, GenerationRequest, Message
from tools.registry import ToolRegistry


@dataclass(frozen=True)
class Reply:
    """One model reply, read. calls empty: `answer` is the final answer."""

    answer: str = ""
    thought: str = ""
    calls: tuple[PendingCall, ...] = ()
    discarded: str = ""  # a tool result (or answer) the model wrote itself before any result


class ToolFormat(Protocol):
    name: str  # "react" or "native"
    tools: ToolRegistry  # the enabled tools

    def request(self, turn: list[Message]) -> GenerationRequest:
        """The model call for this turn so far (turn[0] is the user message)."""
        ...

    def parse(self, end: GenerationEnd) -> Reply:
        """Read the model's reply (its text, or calls a server returned as structures)."""
        ...

    def visible(self, text: str) -> str:
        """The answer-like part of an unfinished reply (kept when the user stops the turn)."""
        ...
