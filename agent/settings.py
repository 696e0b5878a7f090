"""Per-turn agent settings: one frozen object the UI, the CLI and the eval harness share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
    repair_arguments: bool = True  # fix the argument mistakes small models make
    retry_invalid: bool = True  # bad args / unknown tool -> error Observation, another step
    # Aids for small models (measured on the embedded 0.5B: eval/README.md).
    prefill_thought: bool = True  # ReAct: a fresh assistant turn starts with "Thought:" written
    reject_unverified: bool = True  # answer skipped a clearly needed tool -> one re-ask
    dedupe_calls: bool = True  # the same call again in one turn -> earlier result, no rerun
    ask_for_answer: bool = True  # tool results but a repeat / empty reply -> one "answer now"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise AgentInputError(f"format must be one of {FORMATS}, got {self.format!r}")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise AgentInputError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        if not isinstance(self.generation, GenerationConfig):
            raise AgentInputError("generation must be an llm.types.GenerationConfig")


def resolve_format(settings: AgentSettings, info: ModelInfo) -> Literal["react", "native"]:
    """The tool-calling format one turn uses: forced by settings, else by model family."""
    if settings.format == "react":
        return "react"
    if settings.format == "native":
        return "native"
    return "native" if info.family == "qwen2" else "react"
