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

PromptFamily = Literal["qwen1", "qwen2", "qwen3"]
"""qwen1: ChatML + ReAct text (Qwen-7B/14B-Chat). qwen2: chat template with <tool_call>.
qwen3: like qwen2, and the model may think in <think>...</think> before it answers."""


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
    """New visible text. Never contains any character of a stop word.

    The one text-delta type from the model to the UI: backends leave step at 0, the agent
    re-emits each delta with the number of the model call (step) it belongs to.
    """

    text: str
    step: int = 0


@dataclass(frozen=True)
class ThinkingDelta:
    """New reasoning text (Qwen3 <think>...</think>, a server's reasoning_content): shown in
    the trace, never in the answer, and never sent back to the model."""

    text: str
    step: int = 0


@dataclass(frozen=True)
class FunctionCall:
    """A tool call the model made, read from its text or given by a server as a structure.

    arguments: the decoded JSON value, or the text as written when it did not decode.
    error: the call could not be read (a message for the model); repaired: it was read from
    a non-standard wrapping (bare JSON, <tools> tags, an unclosed block).
    """

    name: str
    arguments: Any
    raw: str = ""
    id: str = ""
    error: str | None = None
    repaired: bool = False


@dataclass(frozen=True)
class GenerationEnd:
    """Last event of every stream: the whole visible text and why it ended.

    tool_calls: calls a server returned as structures (OpenAI tool_calls); backends that
    only produce text leave it empty and the caller parses text. thinking: the whole
    reasoning text. notes: what the caller should know (e.g. a constraint the server refused).
    """

    text: str
    reason: StopReason
    stop_word: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from a reused KV cache
    seconds: float = 0.0
    error: str | None = None
    tool_calls: tuple[FunctionCall, ...] = ()
    thinking: str = ""
    constrained: bool = False  # a grammar constraint was applied to this generation
    notes: tuple[str, ...] = ()


LLMEvent = TextDelta | ThinkingDelta | GenerationEnd


@dataclass(frozen=True)
class TaggedSchema:
    """One structure of a structural tag: the literal `begin`, then JSON matching `schema`,
    then the literal `end` (the form vLLM, SGLang and xgrammar use for tool calls)."""

    begin: str
    schema: dict[str, Any]
    end: str


@dataclass(frozen=True)
class Constraint:
    """Grammar-constrained decoding for a request.

    Structural tag (tool calls): text is free until the model writes one of `triggers`; from
    there it must complete one of `structures` whose `begin` starts with that trigger, then
    text is free again. json_schema: the whole output must be JSON matching it (one step of
    the reasoning chain). Backends that cannot apply it generate unconstrained and say so in
    GenerationEnd.notes.
    """

    structures: tuple[TaggedSchema, ...] = ()
    triggers: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None


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
    supports_constraints: bool = False  # applies GenerationRequest.constraint
    thinking: bool = False  # a thinking model (Qwen3, QwQ): GenerationRequest.thinking applies
    # The tool-calling format measured best for this model (eval/README.md), used when the
    # agent's format is "auto"; None: decided by the family (qwen1 ReAct, else native).
    preferred_format: Literal["react", "native"] | None = None


@dataclass
class GenerationRequest:
    """One model call.

    messages are rendered through the model's chat template (tools= for native function
    calling). continue_final: the last message is an unfinished assistant turn that the
    model continues (ReAct steps), so no end-of-turn token is added after it.
    constraint: grammar-constrained decoding (ModelInfo.supports_constraints says whether the
    backend applies it).
    """

    messages: list[Message]
    stop: Sequence[str] = ()
    tools: list[dict[str, Any]] | None = None
    continue_final: bool = False
    config: GenerationConfig = field(default_factory=GenerationConfig)
    cancel: threading.Event = field(default_factory=threading.Event)
    constraint: Constraint | None = None
    thinking: bool | None = None  # enable_thinking for thinking models; None: their default


@runtime_checkable
class ChatBackend(Protocol):
    """A loaded model that streams completions."""

    info: ModelInfo

    def stream(self, request: GenerationRequest) -> Iterator[LLMEvent]:
        """Yield TextDelta (and ThinkingDelta) events, then exactly one GenerationEnd.

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
