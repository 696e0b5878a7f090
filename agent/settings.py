"""Per-turn agent settings: one frozen object the UI, the CLI and the eval harness share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from agent.aids import AID_KEYS, DEFAULT_AIDS
from agent.errors import AgentInputError
from llm.types import GenerationConfig, ModelInfo

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

AgentFormat = Literal["auto", "react", "native"]
FORMATS: tuple[str, ...] = ("auto", "react", "native")


@dataclass(frozen=True)
class AgentSettings:
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # auto: the qwen1 family gets ReAct text, the qwen2 family its own <tool_call> template.
    format: AgentFormat = "auto"
    max_steps: int = 8  # model calls per turn before StepLimitReached
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    # The small-model aids that are on, by key (agent/aids: prefill, repair, retry, reject,
    # dedupe, ask, junk); measured on the embedded models in eval/README.md.
    aids: frozenset[str] = DEFAULT_AIDS
    lang: str = "en"  # the UI language: notes the agent writes for the user are in it
    # The o1-like reasoning chain instead of the tool loop (agent/reasoning.py): at most
    # reasoning_steps JSON steps, then the answer.
    reasoning_chain: bool = False
    reasoning_steps: int = 25
    thinking: bool | None = None  # thinking models (Qwen3): enable_thinking; None: default

    def __post_init__(self) -> None:
        if not isinstance(self.aids, frozenset):
            object.__setattr__(self, "aids", frozenset(self.aids))
        unknown = sorted(self.aids - set(AID_KEYS))
        if unknown:
            raise AgentInputError(f"unknown aid(s) {unknown}; known: {', '.join(AID_KEYS)}")
        if self.format not in FORMATS:
            raise AgentInputError(f"format must be one of {FORMATS}, got {self.format!r}")
        if not isinstance(self.reasoning_steps, int) or self.reasoning_steps < 1:
            raise AgentInputError(
                f"reasoning_steps must be a positive integer, got {self.reasoning_steps!r}"
            )
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise AgentInputError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        if not isinstance(self.generation, GenerationConfig):
            raise AgentInputError("generation must be an llm.types.GenerationConfig")

    def with_aids(self, **switches: bool) -> AgentSettings:
        """A copy with aids switched on or off by key: with_aids(prefill=False)."""
        unknown = sorted(set(switches) - set(AID_KEYS))
        if unknown:
            raise AgentInputError(f"unknown aid(s) {unknown}; known: {', '.join(AID_KEYS)}")
        on = {k for k, v in switches.items() if v}
        off = {k for k, v in switches.items() if not v}
        return dataclasses.replace(self, aids=(self.aids | on) - off)


def resolve_format(settings: AgentSettings, info: ModelInfo) -> Literal["react", "native"]:
    """The tool-calling format one turn uses: forced by settings, else the model's measured
    preference, else its family's (Qwen v1 was trained on ReAct; later Qwens call natively)."""
    if settings.format == "react":
        return "react"
    if settings.format == "native":
        return "native"
    if info.preferred_format is not None:
        return info.preferred_format
    return "react" if info.family == "qwen1" else "native"
