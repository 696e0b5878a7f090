"""Per-browser-session conversation state, kept in gr.State.

The model only ever sees `history()`: the agent's own OpenAI-style messages, raw text. The
Chatbot is a view rendered from this state, so no HTML or trace decoration is fed back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from agent.events import (
    AgentEvent,
    AgentFailed,
    FinalAnswer,
    StepLimitReached,
    Stopped,
    TerminalEvent,
)
from llm.types import Message

TurnStatus = Literal["running", "done", "stopped", "failed", "step_limit"]

_STATUS: dict[type, TurnStatus] = {
    FinalAnswer: "done",
    StepLimitReached: "step_limit",
    Stopped: "stopped",
    AgentFailed: "failed",
}


@dataclass
class Turn:
    """One user query and everything the agent did for it."""

    query: str
    model: str  # display name of the model that answered
    events: list[AgentEvent] = field(default_factory=list)
    status: TurnStatus = "running"
    answer: str = ""  # final answer, or the partial / error text of an unfinished turn
    messages: list[Message] = field(default_factory=list)  # this turn's messages for history
    started: float = field(default_factory=time.time)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        from agent.events import StepStarted

        return sum(1 for e in self.events if isinstance(e, StepStarted))

    def finish(self, event: TerminalEvent) -> None:
        """Record the terminal event: status, answer and the messages the model will see."""
        self.status = _STATUS[type(event)]
        self.seconds = time.time() - self.started
        if isinstance(event, FinalAnswer):
            self.answer = event.text
        elif isinstance(event, Stopped):
            self.answer = event.partial_text
        else:
            self.answer = event.message
        self.messages = _with_user(list(event.messages), self.query)
        if self.status != "done" and not _has_assistant(self.messages):
            # An unfinished turn with nothing said: keep it on screen, out of the prompt.
            self.messages = []

    def fail(self, message: str) -> None:
        """The turn ended without a terminal event (an exception outside the agent)."""
        self.status = "failed"
        self.answer = message
        self.seconds = time.time() - self.started
        self.messages = []


def _with_user(messages: list[Message], query: str) -> list[Message]:
    """The agent may or may not include the user message; history always needs it."""
    if messages and messages[0].get("role") == "user":
        return messages
    return [{"role": "user", "content": query}, *messages]


def _has_assistant(messages: list[Message]) -> bool:
    return any(m.get("role") == "assistant" and (m.get("content") or "").strip() for m in messages)


@dataclass
class ChatSession:
    """A browser session's conversation. Mutated in place; gr.State holds the object."""

    turns: list[Turn] = field(default_factory=list)
    lang: str = "zh"

    def history(self) -> list[Message]:
        """Messages of the finished turns, for the next model call."""
        out: list[Message] = []
        for turn in self.turns:
            if turn.status != "running":
                out.extend(turn.messages)
        return out

    def begin(self, query: str, model: str) -> Turn:
        turn = Turn(query=query, model=model)
        self.turns.append(turn)
        return turn

    def pop(self) -> Turn | None:
        """Remove the last turn (undo / regenerate); None when the chat is empty."""
        return self.turns.pop() if self.turns else None

    def clear(self) -> None:
        self.turns.clear()

    @property
    def running(self) -> bool:
        return bool(self.turns) and self.turns[-1].status == "running"
