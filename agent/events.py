"""What the agent streams: small frozen dataclasses, one per kind of step.

The UI, the headless runner and the eval harness consume the same stream. Every run ends
with exactly one terminal event (FinalAnswer, StepLimitReached, Stopped or AgentFailed),
which carries the turn's OpenAI-style messages for the conversation history.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from llm.types import GenerationEnd, Message, TextDelta, ThinkingDelta


@dataclasses.dataclass(frozen=True)
class StepStarted:
    step: int  # 1-based model call within the turn
    prompt: str = ""  # exact prompt text sent to the model


@dataclasses.dataclass(frozen=True)
class Thought:
    step: int
    text: str


@dataclasses.dataclass(frozen=True)
class ToolCall:
    step: int
    call_id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str  # what the model wrote
    repaired: bool = False  # arguments were repaired before the call


@dataclasses.dataclass(frozen=True)
class Observation:
    step: int
    call_id: str
    name: str
    text: str
    seconds: float
    ok: bool
    source: Literal["tool", "agent"] = "tool"  # "agent": the agent wrote it (unknown tool, ...)


@dataclasses.dataclass(frozen=True)
class DiscardedObservation:
    """An Observation the model wrote itself; never fed back."""

    step: int
    text: str


@dataclasses.dataclass(frozen=True)
class ModelCallEnd:
    """One model call ended: the model's own end event (tokens, time, why it stopped)."""

    step: int
    end: GenerationEnd

    @property
    def reason(self) -> str:  # llm.types.StopReason value
        return self.end.reason.value


@dataclasses.dataclass(frozen=True)
class StepError:
    """A step went wrong but the turn goes on (bad arguments, unparsable action)."""

    step: int
    message: str


@dataclasses.dataclass(frozen=True)
class AidFired:
    """A small-model aid acted (agent/aids): it re-asked the model, or ended the turn.

    aid: its key ("reject", "ask", "junk", "dedupe", ...); message: what it did, for the
    trace, in the UI language; text: the answer it set aside, if any.
    """

    step: int
    aid: str
    message: str
    text: str = ""


@dataclasses.dataclass(frozen=True)
class ReasoningStep:
    """One step of the reasoning chain (agent/reasoning.py): a titled card in the trace.

    step: the model call it came from; index: its number in the chain; parsed: False when the
    model did not write a JSON step (content is then its raw text).
    """

    step: int
    index: int
    title: str
    content: str
    seconds: float
    parsed: bool = True


@dataclasses.dataclass(frozen=True)
class FinalAnswer:
    """The turn's answer. fallback: the model did not phrase one, so the agent shows the last
    tool result, readable, under a note (never raw JSON or nothing). thinking_seconds: the
    reasoning chain's total time (0 outside that mode)."""

    text: str
    steps: int
    messages: tuple[Message, ...] = ()
    fallback: bool = False
    thinking_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class StepLimitReached:
    steps: int
    message: str
    messages: tuple[Message, ...] = ()


@dataclasses.dataclass(frozen=True)
class Stopped:
    """The user cancelled the turn."""

    steps: int
    partial_text: str = ""
    messages: tuple[Message, ...] = ()


@dataclasses.dataclass(frozen=True)
class AgentFailed:
    """The model service failed (generation error); the turn ends."""

    steps: int
    message: str
    messages: tuple[Message, ...] = ()


AgentEvent = (
    StepStarted
    | TextDelta
    | ThinkingDelta
    | Thought
    | ToolCall
    | Observation
    | DiscardedObservation
    | ModelCallEnd
    | StepError
    | AidFired
    | ReasoningStep
    | FinalAnswer
    | StepLimitReached
    | Stopped
    | AgentFailed
)
TerminalEvent = FinalAnswer | StepLimitReached | Stopped | AgentFailed

_TYPE_NAMES = {
    StepStarted: "step_started",
    TextDelta: "text_delta",
    ThinkingDelta: "thinking_delta",
    Thought: "thought",
    ToolCall: "tool_call",
    Observation: "observation",
    DiscardedObservation: "discarded_observation",
    ModelCallEnd: "model_call_end",
    StepError: "step_error",
    AidFired: "aid_fired",
    ReasoningStep: "reasoning_step",
    FinalAnswer: "final_answer",
    StepLimitReached: "step_limit",
    Stopped: "stopped",
    AgentFailed: "failed",
}


def event_type(event: AgentEvent) -> str:
    return _TYPE_NAMES[type(event)]


def event_to_dict(event: AgentEvent) -> dict[str, Any]:
    """JSON-ready dict with a "type" field (the headless runner's --json lines)."""
    return {"type": event_type(event), **dataclasses.asdict(event)}


def is_terminal(event: AgentEvent) -> bool:
    return isinstance(event, FinalAnswer | StepLimitReached | Stopped | AgentFailed)
