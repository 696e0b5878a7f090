"""Reading a ReAct step from model text, as forgiving as real (small) models need.

Tolerated: a stop word the backend did not cut ("Observation:", a trailing "Observ"), labels
without their leading newline, full-width colons, markdown fences around the JSON, a step that
continues after the "Thought:" the prompt ended with. A model-written Observation (a result
it invented) and everything after it is split off so the caller can flag and discard it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import json5

from agent.errors import ArgumentError

_COLON = r"\s*[:：]"
# Labels match as written anywhere (a model may drop the newline before them), and in any
# case at the start of a line; "take action: ..." inside an answer is not a label.
_ACTION = re.compile(r"(?:Action|^[ \t]*(?i:action))" + _COLON, re.MULTILINE)  # not "Action Input"
_ACTION_INPUT = re.compile(r"(?:Action\s*Input|^[ \t]*(?i:action\s*input))" + _COLON, re.MULTILINE)
_FINAL = re.compile(r"(?:Final\s*Answer|^[ \t]*(?i:final\s*answer))" + _COLON, re.MULTILINE)
_THOUGHT = re.compile(r"(?:^|\n)\s*Thought" + _COLON)
_OBSERVATION = re.compile(r"Observation" + _COLON)
_LEADING_THOUGHT = re.compile(r"^\s*Thought" + _COLON + r"\s*", re.IGNORECASE)
_FENCE = re.compile(r"^```[\w-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)
_STOP = "Observation"


@dataclass(frozen=True)
class ParsedAction:
    """The model asked for a tool: run it and feed the result back."""

    thought: str
    name: str
    raw_arguments: str
    discarded: str = ""  # a model-written Observation and all after it


@dataclass(frozen=True)
class ParsedFinal:
    """The model answered; labelled: it wrote "Final Answer:" (else the whole text counts)."""

    thought: str
    answer: str
    labelled: bool
    discarded: str = ""


ParsedStep = ParsedAction | ParsedFinal


def strip_partial_stop(text: str, line_start_only: bool = False) -> str:
    """Drop a trailing, half-written "Observation" ("\\nObserv", "Observation", ...).

    line_start_only: only when it starts a line (answers may end in a word like "Obs").
    """
    body = text.rstrip()
    for k in range(len(_STOP), 0, -1):
        if body.endswith(_STOP[:k]):
            before = body[: len(body) - k]
            at_line = not before.strip() or before.endswith("\n")
            after_word = k >= 3 and (not before or not before[-1].isalnum())
            if at_line or (after_word and not line_start_only):
                return before.rstrip()
            break
    return text


def text_after_label(text: str) -> str:
    """What follows a leading "Observation:" label."""
    m = _OBSERVATION.match(text)
    return text[m.end() :].strip() if m else text.strip()


def _strip_thought(text: str) -> str:
    return _LEADING_THOUGHT.sub("", text.strip(), count=1).strip()


def _clean_name(name: str) -> str:
    name = next((line for line in name.strip().splitlines() if line.strip()), "")
    name = name.strip().strip("`'\"[]<>*").strip().rstrip(".,;。")
    paren = name.find("(")  # "calculator(expression=...)"
    return name[:paren].strip() if paren > 0 else name


def parse_react(text: str) -> ParsedStep:
    """One ReAct step. The latest Action / Action Input wins; Final Answer ends the turn."""
    action = _ACTION.search(text)
    final = _FINAL.search(text)
    if action is None or (final is not None and final.start() < action.start()):
        if final is None:
            answer = _strip_thought(strip_partial_stop(text, line_start_only=True))
            return ParsedFinal("", answer, labelled=False)
        answer = strip_partial_stop(text[final.end() :], line_start_only=True).strip()
        return ParsedFinal(_strip_thought(text[: final.start()]), answer, labelled=True)

    discarded = ""
    first_input = _ACTION_INPUT.search(text, action.end())
    if first_input is not None:
        obs = _OBSERVATION.search(text, first_input.end())
        if obs is not None:
            text, discarded = text[: obs.start()], text[obs.start() :].strip()
            if not text_after_label(discarded):
                discarded = ""  # just the stop word the backend did not cut
    text = strip_partial_stop(text)

    last_action = list(_ACTION.finditer(text))[-1]
    thought = _strip_thought(text[: action.start()])
    inp = _ACTION_INPUT.search(text, last_action.end())
    if inp is None:  # "Action: clock" with no input: a call without arguments
        return ParsedAction(thought, _clean_name(text[last_action.end() :]), "", discarded)
    name = _clean_name(text[last_action.end() : inp.start()])
    end = len(text)
    for label in (_THOUGHT, _FINAL):
        m = label.search(text, inp.end())
        if m is not None:
            end = min(end, m.start())
    raw = text[inp.end() : end].strip()
    if end < len(text) and not discarded:
        discarded = text[end:].strip()  # Thought / Final Answer written before any result
    return ParsedAction(thought, name, raw, discarded)


def strip_fences(raw: str) -> str:
    """Remove markdown code fences or inline backticks around an argument payload."""
    raw = raw.strip()
    m = _FENCE.match(raw)
    if m:
        return m.group(1).strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "`":
        return raw.strip("`").strip()
    return raw


def parse_json_arguments(raw: str) -> tuple[Any, bool]:
    """Action Input text -> (value, lenient): lenient means strict JSON failed, json5 read it."""
    text = strip_fences(strip_partial_stop(raw))
    try:
        return json.loads(text), False
    except ValueError:
        pass
    try:
        return json5.loads(text), True
    except ValueError as e:
        raise ArgumentError(f"Action Input is not valid JSON ({e})") from None
