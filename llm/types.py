"""The model service contract: requests in, typed events out.

Every backend (local transformers, scripted, OpenAI-compatible) streams the same events, so
the agent and the UI never know which one answered.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Protocol, runtime_checkable

# An OpenAI-style chat message: {"role": ..., "content": ..., optional "tool_calls" / "name"}.
Message = dict[str, Any]

# ChatML control tokens: generation always stops on them, user text never encodes to them.
CHATML_STOP_WORDS: tuple[str, ...] = ("<|im_end|>", "<|im_start|>", "<|endoftext|>")

PromptFamily = Literal["qwen1", "qwen2"]
"""qwen1: ChatML + ReAct text (Qwen-7B/14B-Chat). qwen2: chat template with <tool_call>."""


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings. temperature == 0 means greedy decoding."""

    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    repetition_penalty: float = 1.05
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


class StopReason(str, Enum):
    STOP_WORD = "stop_word"
    EOS = "eos"
    LENGTH = "length"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True)
class TextDelta:
    """New visible text. Never contains any character of a stop word."""

    text: str


@dataclass(frozen=True)
class GenerationEnd:
    """Last event of every stream: the whole visible text and why it ended."""

    text: str
    reason: StopReason
    stop_word: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from a reused KV cache
    seconds: float = 0.0
    error: str | None = None


LLMEvent = TextDelta | GenerationEnd


@dataclass(frozen=True)
class ModelInfo:
    """What the UI shows about the loaded model."""

    name: str  # display name, e.g. "Qwen-7B-Chat (BF16)" or "scripted: demo.json"
    family: PromptFamily
    backend: str  # "transformers", "scripted", "openai"
    device: str = "cpu"
    memory_gb: float = 0.0
    supports_native_tools: bool = False
    source: str = ""  # hub id, directory or URL it came from


@dataclass
class GenerationRequest:
    """One model call.

    messages are rendered through the model's chat template (tools= for native function
    calling). continue_final: the last message is an unfinished assistant turn that the
    model continues (ReAct steps), so no end-of-turn token is added after it.
    """

    messages: list[Message]
    stop: Sequence[str] = ()
    tools: list[dict[str, Any]] | None = None
    continue_final: bool = False
    config: GenerationConfig = field(default_factory=GenerationConfig)
    cancel: threading.Event = field(default_factory=threading.Event)


@runtime_checkable
class ChatBackend(Protocol):
    """A loaded model that streams completions."""

    info: ModelInfo

    def stream(self, request: GenerationRequest) -> Iterator[LLMEvent]:
        """Yield TextDelta events, then exactly one GenerationEnd.

        Stop words: request.stop plus CHATML_STOP_WORDS. Errors inside generation end the
        stream with reason ERROR rather than raising, once streaming has started.
        """
        ...

    def render(self, request: GenerationRequest) -> str:
        """The exact prompt text the model would see (for the UI's "show prompt" view)."""
        ...

    def close(self) -> None:
        """Release the weights (GPU and CPU memory)."""
        ...


def drain(events: Iterator[LLMEvent]) -> GenerationEnd:
    """Consume a stream and return its GenerationEnd (for non-streaming callers)."""
    end: GenerationEnd | None = None
    for event in events:
        if isinstance(event, GenerationEnd):
            end = event
    if end is None:
        raise RuntimeError("model stream ended without a GenerationEnd event")
    return end
