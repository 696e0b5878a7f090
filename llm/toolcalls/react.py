"""The ReAct Action block: `Thought: … / Action: tool / Action Input: {json}`, read and written.

Read as forgiving as real (small) models need: a stop word the backend did not cut
("Observation:", a trailing "Observ"), labels without their leading newline, full-width
colons, lower-case labels at a line start, markdown fences around the JSON, a step that
continues after the "Thought:" the prompt ended with. Several Action / Action Input pairs in
one reply (Qwen2 writes them) are all read, in order. A model-written Observation (a result it
invented) and everything after it is split off so the caller can flag and discard it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from llm.toolcalls.jsontext import first_json_span

_COLON = r"\s*[:：]"
# Labels match as written anywhere (a model may drop the newline before them), and in any
# case at the start of a line; "take action: ..." inside an answer is not a label.
_ACTION = re.compile(r"(?:Action|^[ \t]*(?i:action))" + _COLON, re.MULTILINE)  # not "Action Input"
_ACTION_INPUT = re.compile(r"(?:Action\s*Input|^[ \t]*(?i:action\s*input))" + _COLON, re.MULTILINE)
_FINAL = re.compile(r"(?:Final\s*Answer|^[ \t]*(?i:final\s*answer))" + _COLON, re.MULTILINE)
_THOUGHT = re.compile(r"(?:^|\n)\s*Thought" + _COLON)
_OBSERVATION = re.compile(r"Observation" + _COLON)
_LEADING_THOUGHT = re.compile(r"^\s*Thought" + _COLON + r"\s*", re.IGNORECASE)
# What ends a Final Answer: a call block or a result the model goes on to write by itself.
_AFTER_ANSWER = re.compile(r"^[ \t]*(?i:action(?:\s*input)?|observation)" + _COLON, re.MULTILINE)
_STOP = "Observation"

FINAL_THOUGHT = "Thought: I now know the final answer."


@dataclass(frozen=True)
class ReactAction:
    name: str
    raw_arguments: str  # the Action Input text as written ("" when there was none)
    thought: str = ""  # a Thought written between this action and the one before


@dataclass(frozen=True)
class ParsedActions:
    """The model asked for tools: run each action in order and feed the results back.

    error: the reply has the shape of a call but none can be read (Action Input without an
    Action line); the caller sends it back to the model as an error Observation.
    """

    thought: str
    actions: tuple[ReactAction, ...]
    discarded: str = ""  # a model-written Observation and all after it
    error: str | None = None


@dataclass(frozen=True)
class ParsedFinal:
    """The model answered; labelled: it wrote "Final Answer:" (else the whole text counts)."""

    thought: str
    answer: str
    labelled: bool
    discarded: str = ""  # Action / Observation lines written after the answer


ParsedStep = ParsedActions | ParsedFinal


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


def _final(text: str, final: re.Match[str]) -> ParsedFinal:
    rest = text[final.end() :]
    discarded = ""
    after = _AFTER_ANSWER.search(rest)
    if after is not None:
        rest, discarded = rest[: after.start()], rest[after.start() :].strip()
    answer = strip_partial_stop(rest, line_start_only=True).strip()
    return ParsedFinal(_strip_thought(text[: final.start()]), answer, True, discarded)


def parse_react(text: str) -> ParsedStep:
    """One ReAct reply: every Action / Action Input pair in order, or the answer."""
    action = _ACTION.search(text)
    action_input = _ACTION_INPUT.search(text)
    final = _FINAL.search(text)
    call_at = min((m.start() for m in (action, action_input) if m is not None), default=None)
    if call_at is None or (final is not None and final.start() < call_at):
        if final is not None:
            return _final(text, final)
        answer = _strip_thought(strip_partial_stop(text, line_start_only=True))
        return ParsedFinal("", answer, labelled=False)
    if action is None or (action_input is not None and action_input.start() < action.start()):
        assert action_input is not None
        return ParsedActions(
            _strip_thought(text[: action_input.start()]),
            (),
            error="Action Input was written without an Action line naming the tool. "
            "Write: Action: <tool name> then Action Input: <JSON arguments>",
        )

    discarded = ""
    first_input = _ACTION_INPUT.search(text, action.end())
    if first_input is not None:
        obs = _OBSERVATION.search(text, _json_end(text, first_input.end()))
        if obs is not None:
            text, discarded = text[: obs.start()], text[obs.start() :].strip()
            if not text_after_label(discarded):
                discarded = ""  # just the stop word the backend did not cut
    text = strip_partial_stop(text)
    thought = _strip_thought(text[: action.start()])
    actions, end = _actions(text, action.start())
    if end < len(text) and not discarded:
        discarded = text[end:].strip()  # Thought / Final Answer written before any result
    return ParsedActions(thought, tuple(actions), discarded)


def _actions(text: str, start: int) -> tuple[list[ReactAction], int]:
    """The Action / Action Input pairs from `start`, and where the last one ends.

    An Action line followed directly by another Action line was corrected by the model: the
    later one counts. A Thought between two pairs belongs to the second.
    """
    actions: list[ReactAction] = []
    pos, between = start, ""
    end = len(text)
    while (m := _ACTION.search(text, pos)) is not None:
        nxt = _ACTION.search(text, m.end())
        inp = _ACTION_INPUT.search(text, m.end())
        if inp is not None and nxt is not None and nxt.start() < inp.start():
            pos = nxt.start()  # "Action: a\nAction: b": the model changed its mind
            continue
        if inp is None:  # "Action: clock" with no input: a call without arguments
            limit = nxt.start() if nxt is not None else len(text)
            actions.append(ReactAction(_clean_name(text[m.end() : limit]), "", between))
            end = len(text)
            break
        name = _clean_name(text[m.end() : inp.start()])
        stop = len(text)
        after = _json_end(text, inp.end())  # labels inside the JSON ("Final Answer: …") are text
        for label in (_THOUGHT, _FINAL, _ACTION):
            found = label.search(text, after)
            if found is not None:
                stop = min(stop, found.start())
        actions.append(ReactAction(name, text[inp.end() : stop].strip(), between))
        end = stop
        follow = _ACTION.search(text, stop)
        if follow is None:
            break
        gap = text[stop : follow.start()]
        if _FINAL.search(gap):  # an answer written before any result: not a next call
            break
        between, pos = _strip_thought(gap), follow.start()
    return actions, end


def _json_end(text: str, start: int) -> int:
    """Where the JSON value of an Action Input that starts at `start` ends (start when it is
    not JSON), so a label written inside a string value does not cut the arguments."""
    body = text[start:]
    lead = len(body) - len(body.lstrip(" \t\n`"))
    if body[lead : lead + 4] == "json":  # ```json fence
        lead += 4
    rest = body[lead:].lstrip()
    if rest[:1] not in "{[":
        return start
    span = first_json_span(rest)
    offset = start + len(body) - len(rest)
    return offset + span[1] if span is not None else start


def arguments_text(arguments: Any) -> str:
    """Action Input text for a stored call: the JSON as written; a raw string unquoted."""
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments)
        except ValueError:
            return arguments
        return decoded if isinstance(decoded, str) else arguments
    return json.dumps(arguments, ensure_ascii=False)


def render_action(name: str, arguments: Any, thought: str | None = "") -> str:
    """One call as ReAct text: `Thought: …\nAction: name\nAction Input: {json}`.

    thought None: no Thought line (a further action of the same reply).
    """
    block = f"Action: {name}\nAction Input: {arguments_text(arguments)}"
    if thought is None:
        return block
    head = thought if thought.startswith("Thought:") else f"Thought: {thought}".rstrip()
    return f"{head}\n{block}"
