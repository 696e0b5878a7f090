"""Switches: the settings compared side by side, each one an AgentSettings the app could run.

Every aid in agent.aids.AID_KEYS is a switch of its own (`--switch junk=on,off`); the groups
below switch several at once; `prompt` picks a system-prompt variant; any other AgentSettings
field (`format=react,native`, `max_steps=4,8`) is a switch too. The product of all values
runs, one EvalSetting each.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.aids import AID_KEYS
from agent.errors import AgentInputError
from agent.settings import AgentSettings


@dataclass(frozen=True)
class EvalSetting:
    """One column of the comparison: the agent settings it runs with."""

    label: str
    settings: AgentSettings
    switches: dict[str, str] = field(default_factory=dict)


# System-prompt variants for the prompt switch. "default" keeps the settings' own prompt,
# "prefill" keeps it too and turns the prefill aid on; the others turn it off.
PROMPT_VARIANTS: dict[str, str | None] = {
    "default": None,
    "prefill": None,
    "tool-first": (
        "You are a helpful assistant. You cannot know facts about employees, the current "
        "time or exact arithmetic results without a tool: whenever one of your tools can "
        "answer, call it first and answer only from its result. Answer chit-chat and general "
        "knowledge directly without tools."
    ),
}

# Switches that turn several aids on or off at once (each aid key is a switch too).
GROUP_SWITCHES: dict[str, tuple[str, ...]] = {
    "robust": ("repair", "retry", "reject"),
    "aids": AID_KEYS,
}
_ON = {"on", "true", "yes", "1"}
_OFF = {"off", "false", "no", "0"}
_FIELDS = {f.name: f.type for f in dataclasses.fields(AgentSettings)}
_NOT_SWITCHES = {"generation", "aids"}  # set by the CLI's own options / the aid switches


def known_switches() -> list[str]:
    """Every switch name, for --help and error messages."""
    return [*AID_KEYS, *GROUP_SWITCHES, "prompt", *sorted(set(_FIELDS) - _NOT_SWITCHES)]


def switch_help() -> str:
    groups = "; ".join(f"{k} ({'+'.join(v)})" for k, v in GROUP_SWITCHES.items())
    return (
        f"an aid ({', '.join(AID_KEYS)}) or a group: {groups}, with on/off; prompt ("
        + "|".join(PROMPT_VARIANTS)
        + "); or an AgentSettings field (format, max_steps, ...). Several values run side by "
        "side (the product of all switches)"
    )


def parse_switches(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """["repair=on,off", "retry=off"] -> [("repair", ["on", "off"]), ("retry", ["off"])]."""
    out: list[tuple[str, list[str]]] = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not vals:
            raise AgentInputError(f"--switch {spec!r}: expected NAME=VALUE[,VALUE...]")
        if name not in known_switches():
            raise AgentInputError(f"--switch {name!r}: unknown switch; known: {known_switches()}")
        if name == "prompt":
            bad = [v for v in vals if v not in PROMPT_VARIANTS]
            if bad:
                raise AgentInputError(
                    f"--switch prompt: unknown variant(s) {bad}; known: {list(PROMPT_VARIANTS)}"
                )
        out.append((name, vals))
    return out


def _value(field_type: Any, raw: str, name: str) -> Any:
    low = raw.lower()
    if field_type in (bool, "bool"):
        if low in _ON:
            return True
        if low in _OFF:
            return False
        raise AgentInputError(f"--switch {name}: expected on/off, got {raw!r}")
    if field_type in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise AgentInputError(f"--switch {name}: expected an integer, got {raw!r}") from None
    return raw


def _apply(settings: AgentSettings, name: str, raw: str) -> AgentSettings:
    if name in GROUP_SWITCHES or name in AID_KEYS:
        on = _value(bool, raw, name)
        return settings.with_aids(**dict.fromkeys(GROUP_SWITCHES.get(name, (name,)), on))
    if name == "prompt":
        text = PROMPT_VARIANTS[raw]
        settings = settings.with_aids(prefill=raw == "prefill")
        return settings if text is None else dataclasses.replace(settings, system_prompt=text)
    return dataclasses.replace(settings, **{name: _value(_FIELDS[name], raw, name)})


def build_settings(
    base: AgentSettings, switches: Sequence[tuple[str, list[str]]]
) -> list[EvalSetting]:
    """The product of all switch values, one EvalSetting each (base alone when no switches).

    AgentSettings checks each result, so a bad value (format=xml) fails here, before any
    model is loaded."""
    names = [n for n, _ in switches]
    out: list[EvalSetting] = []
    for combo in itertools.product(*[vals for _, vals in switches]):
        settings, chosen = base, {}
        for name, raw in zip(names, combo, strict=True):
            chosen[name] = raw
            settings = _apply(settings, name, raw)
        label = " ".join(f"{k}={v}" for k, v in chosen.items()) or "default"
        out.append(EvalSetting(label, settings, chosen))
    return out
