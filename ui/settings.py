"""Settings panel values -> agent.settings.AgentSettings.

Gradio hands over raw widget values (a cleared number box is None, a slider may send a
float for an int); this is the one place they are checked, with a message a user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.aids import AID_INFO
from agent.settings import AgentSettings
from llm.types import GenerationConfig

FORMAT_CHOICES: tuple[str, ...] = ("auto", "react", "native")
FORMAT_LABELS = {"auto": "auto", "react": "ReAct", "native": "native (<tool_call>)"}


class SettingsError(ValueError):
    """A settings value is out of range; the message names the field."""


@dataclass(frozen=True)
class Limits:
    max_new_tokens: tuple[int, int] = (1, 8192)
    max_steps: tuple[int, int] = (1, 30)


LIMITS = Limits()


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if value is None or value == "":
        raise SettingsError(f"{name} is empty")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a number, got {value!r}") from None
    if not lo <= x <= hi:
        raise SettingsError(f"{name} must be between {lo:g} and {hi:g}, got {x:g}")
    return x


def make_settings(
    system_prompt: str | None,
    temperature: Any,
    top_p: Any,
    max_new_tokens: Any,
    max_steps: Any,
    prompt_format: str | None,
    *aid_values: Any,
    lang: str = "en",
) -> AgentSettings:
    """Validated AgentSettings from the panel's raw values; SettingsError says what is wrong.

    aid_values: the small-model aid checkboxes, in agent.aids.AID_INFO order; missing ones
    (or None) keep the aid's default.
    """
    fmt = (prompt_format or "auto").lower()
    if fmt not in FORMAT_CHOICES:
        raise SettingsError(f"prompt format must be one of {FORMAT_CHOICES}, got {prompt_format!r}")
    generation = GenerationConfig(
        max_new_tokens=int(_number(max_new_tokens, "max new tokens", *LIMITS.max_new_tokens)),
        temperature=_number(temperature, "temperature", 0.0, 2.0),
        top_p=_number(top_p, "top_p", 0.01, 1.0),
    )
    return AgentSettings(
        system_prompt=(system_prompt or "").strip() or "You are a helpful assistant.",
        format=fmt,  # type: ignore[arg-type]
        max_steps=int(_number(max_steps, "max agent steps", *LIMITS.max_steps)),
        generation=generation,
        lang=lang,
    ).with_aids(**_aids(aid_values))


def _aids(values: tuple[Any, ...]) -> dict[str, bool]:
    return {a.key: bool(v) for a, v in zip(AID_INFO, values, strict=False) if v is not None}
