"""Request bodies of /v1/chat/completions and /v1/completions as pydantic models.

Strict types (a JSON string is not a number, a number is not a string), unknown fields
ignored as OpenAI-compatible servers do, and vLLM's extras (top_k, repetition_penalty,
continue_final_message, add_generation_prompt, chat_template_kwargs). ServeLimits bounds
what one request may ask for; every refusal is a BadRequest naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from llm.serve.constraints import ConstraintFields
from llm.serve.errors import BadRequest
from llm.serve.prompt import chatml_to_messages
from llm.types import GenerationConfig, GenerationRequest, Message

_DEFAULTS = GenerationConfig()


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for. The body limit is checked before parsing; JSON nested
    deeper than pydantic's parser allows (about 250 levels) is refused while parsing."""

    max_body_bytes: int = 4 << 20
    max_tokens: int = 8192  # the UI's own upper bound for max new tokens
    max_stop: int = 16
    max_stop_chars: int = 256


def _text_parts(value: Any) -> Any:
    """OpenAI content: a string, null, or a list of {"type": "text", "text": ...} parts."""
    if value is None:
        return ""
    if isinstance(value, list):
        texts = []
        for part in value:
            if not (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                raise ValueError('only text content parts {"type": "text", "text": ...} are served')
            texts.append(part["text"])
        return "".join(texts)
    return value  # the string check follows


def _string_list(value: Any) -> Any:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


Content = Annotated[str, BeforeValidator(_text_parts)]
StopList = Annotated[list[str], BeforeValidator(_string_list)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class FunctionIn(Strict):
    name: str
    arguments: str | dict[str, Any] = "{}"


class ToolCallIn(Strict):
    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionIn


class ChatMessage(Strict):
    role: Literal["system", "user", "assistant", "tool"]
    content: Content = ""
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    # reasoning_content / reasoning of earlier turns are dropped (ignored fields): Qwen3's
    # template shows the model its earlier answers without their thinking.

    def as_message(self) -> Message:
        msg: Message = {"role": self.role, "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        for key in ("name", "tool_call_id"):
            if getattr(self, key):
                msg[key] = getattr(self, key)
        return msg


class FunctionSpec(Strict):
    model_config = ConfigDict(strict=True, extra="allow")
    name: str = Field(min_length=1)


class ToolSpec(Strict):
    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["function"]
    function: FunctionSpec


class StreamOptions(Strict):
    include_usage: bool = False


class Sampling(ConstraintFields):
    """The fields both endpoints share."""

    model: str
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=-1)
    repetition_penalty: float | None = Field(None, ge=0.01, le=10)
    seed: int | None = None
    stop: StopList = []
    n: int = 1

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError("only n=1 is supported")
        return n

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def checked_stop(self, limits: ServeLimits) -> list[str]:
        most = limits.max_stop
        if len(self.stop) > most:
            raise BadRequest(
                f"'stop' has {len(self.stop)} strings; this server takes at most {most}",
                param="stop",
            )
        for i, word in enumerate(self.stop):
            if len(word) > limits.max_stop_chars:
                raise BadRequest(
                    f"'stop[{i}]' is {len(word)} characters long; this server takes at most "
                    f"{limits.max_stop_chars}",
                    param="stop",
                )
        return [s for s in self.stop if s]

    def config(self, limits: ServeLimits) -> GenerationConfig:
        max_tokens = self.max_completion_tokens or self.max_tokens or _DEFAULTS.max_new_tokens
        if max_tokens > limits.max_tokens:
            raise BadRequest(
                f"'max_tokens' is {max_tokens}; this server allows at most {limits.max_tokens} "
                "(llm.serve --max-tokens)",
                param="max_tokens",
            )

        def pick(value: float | None, default: float) -> float:
            return default if value is None else float(value)

        return GenerationConfig(
            max_new_tokens=max_tokens,
            temperature=pick(self.temperature, _DEFAULTS.temperature),
            top_p=pick(self.top_p, _DEFAULTS.top_p) or _DEFAULTS.top_p,
            top_k=int(pick(self.top_k, _DEFAULTS.top_k)),
            repetition_penalty=pick(self.repetition_penalty, _DEFAULTS.repetition_penalty),
            seed=self.seed,
        )


class ChatRequest(Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[ToolSpec] | None = None
    tool_choice: str | dict[str, Any] | None = None
    continue_final_message: bool = False
    add_generation_prompt: bool | None = None
    chat_template_kwargs: dict[str, Any] | None = None

    @field_validator("chat_template_kwargs")
    @classmethod
    def _thinking_flag(cls, kwargs: dict[str, Any] | None) -> dict[str, Any] | None:
        flag = (kwargs or {}).get("enable_thinking")
        if flag is not None and not isinstance(flag, bool):
            raise ValueError("enable_thinking must be true or false")
        return kwargs

    def generation(self, limits: ServeLimits, supports_constraints: bool) -> GenerationRequest:
        if self.continue_final_message and self.add_generation_prompt:
            raise BadRequest(
                "continue_final_message and add_generation_prompt cannot both be true",
                param="add_generation_prompt",
            )
        if self.continue_final_message and self.messages[-1].role != "assistant":
            raise BadRequest(
                "continue_final_message needs an assistant message last", param="messages"
            )
        if self.add_generation_prompt is False and not self.continue_final_message:
            raise BadRequest(
                "add_generation_prompt=false is served only with continue_final_message=true "
                "(continue the last assistant message)",
                param="add_generation_prompt",
            )
        tools = [t.model_dump(exclude_unset=True) for t in self.tools] if self.tools else None
        return GenerationRequest(
            messages=[m.as_message() for m in self.messages],
            stop=self.checked_stop(limits),
            tools=tools,
            continue_final=self.continue_final_message,
            config=self.config(limits),
            constraint=self.checked_constraint(supports_constraints),
            thinking=(self.chat_template_kwargs or {}).get("enable_thinking"),
        )

    @property
    def parse_tools(self) -> bool:
        """<tool_call> text becomes tool_calls when tools are offered and not switched off."""
        return bool(self.tools) and self.tool_choice != "none"


def _one_prompt(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError("only one prompt per request is served")
        return value[0]
    return value  # the string check follows


class CompletionRequest(Sampling):
    prompt: Annotated[str, BeforeValidator(_one_prompt)]
    echo: bool = False

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, echo: bool) -> bool:
        if echo:
            raise ValueError("echo is not supported")
        return echo

    def generation(self, limits: ServeLimits, supports_constraints: bool) -> GenerationRequest:
        messages, continue_final = chatml_to_messages(self.prompt)
        return GenerationRequest(
            messages=messages,
            stop=self.checked_stop(limits),
            continue_final=continue_final,
            config=self.config(limits),
            constraint=self.checked_constraint(supports_constraints),
        )
