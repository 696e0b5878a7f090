"""A Constraint compiled into llguidance grammars for one tokenizer.

Each trigger gets one grammar for what must follow it: the alternatives of every structure
whose `begin` starts with that trigger (the rest of `begin`, JSON matching its schema, then
`end`). The engine only runs once a trigger has been written, so free text costs nothing.

A schema llguidance refuses does not sink the constraint: that structure keeps its `begin`
(the tool name is still forced) and its arguments are generated unconstrained, with a note
saying so. Literals that are one special token of the tokenizer (Qwen2.5's `</tool_call>`)
are written as that token, since llguidance never spells a special token out of plain text.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import llguidance
from llguidance import LLMatcher, LLTokenizer

from llm.types import Constraint, TaggedSchema

ENGINE = f"llguidance {llguidance.__version__}"

# Compact JSON as Qwen's templates and json.dumps write it; flexible whitespace would let a
# small model pad its arguments with newlines forever.
JSON_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}

_ANGLED = re.compile(r"(<[^<>\s]{1,64}>)")
_CACHE_SIZE = 32


@dataclass(frozen=True)
class TriggerGrammar:
    trigger: bytes
    grammar: str  # llguidance grammar for the text right after the trigger


@dataclass(frozen=True)
class CompiledConstraint:
    """What a ConstraintSession runs. whole: a grammar for the entire output (json_schema
    constraints), active from the first token. notes: what could not be constrained."""

    triggers: tuple[TriggerGrammar, ...] = ()
    whole: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.triggers and self.whole is None


def _label(structure: TaggedSchema) -> str:
    text = " ".join(structure.begin.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    options = {**JSON_OPTIONS, **dict(schema.get("x-guidance") or {})}
    return {**schema, "x-guidance": options}


def schema_problem(schema: Mapping[str, Any], tokenizer: LLTokenizer | None = None) -> str | None:
    """Why llguidance refuses this JSON schema, or None when it compiles."""
    try:
        grammar = LLMatcher.grammar_from_json_schema(json.dumps(_schema(schema)))
    except (TypeError, ValueError) as exc:
        return f"not a JSON schema object ({exc})"
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    return ("; ".join(messages) or "refused") if is_error else None


def _literal(text: str, tokenizer: LLTokenizer) -> list[str]:
    """Lark items for a literal; a piece that is one special token becomes that token."""
    items: list[str] = []
    for piece in _ANGLED.split(text):
        if not piece:
            continue
        if _ANGLED.fullmatch(piece):
            ids = tokenizer.tokenize_str(piece, parse_special=True)
            if len(ids) == 1 and tokenizer.is_special_token(ids[0]):
                items.append(f"<[{ids[0]}]>")
                continue
        items.append(json.dumps(piece))
    return items


def _trigger_grammar(
    trigger: str, structures: list[TaggedSchema], tokenizer: LLTokenizer
) -> tuple[str | None, list[str]]:
    notes: list[str] = []
    rules: list[str] = []
    for i, s in enumerate(structures):
        items = _literal(s.begin[len(trigger) :], tokenizer)
        problem = schema_problem(s.schema, tokenizer)
        if problem is None:
            rules.append(f"a{i}: %json {json.dumps(_schema(s.schema))}")
            items += [f"a{i}", *_literal(s.end, tokenizer)]
        else:  # the name stays forced; the arguments are free from here on
            notes.append(
                f"constraint: {ENGINE} refused the schema of {_label(s)!r} ({problem}); "
                "its arguments are generated unconstrained"
            )
        rules.append(f"s{i}: {' '.join(items) or json.dumps('')}")
    start = " | ".join(f"s{i}" for i in range(len(structures)))
    lark = "\n".join(["%llguidance {}", f"start: {start}", *rules])
    grammar = LLMatcher.grammar_from_lark(lark)
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    if is_error:
        notes.append(
            f"constraint: {ENGINE} could not build the grammar after {trigger!r} "
            f"({'; '.join(messages)}); text after it is unconstrained"
        )
        return None, notes
    return grammar, notes


def compile_constraint(constraint: Constraint, tokenizer: LLTokenizer) -> CompiledConstraint:
    """The grammars a session runs; never raises for a schema the engine refuses."""
    notes: list[str] = []
    whole = None
    if constraint.json_schema is not None:
        problem = schema_problem(constraint.json_schema, tokenizer)
        if problem is None:
            whole = LLMatcher.grammar_from_json_schema(json.dumps(_schema(constraint.json_schema)))
        else:
            notes.append(f"constraint: {ENGINE} refused the JSON schema ({problem}); unconstrained")
    triggers = constraint.triggers or tuple(dict.fromkeys(s.begin for s in constraint.structures))
    compiled: list[TriggerGrammar] = []
    for trigger in triggers:
        structures = [s for s in constraint.structures if s.begin.startswith(trigger)]
        if not trigger or not structures:
            notes.append(f"constraint: no structure begins with the trigger {trigger!r}")
            continue
        grammar, more = _trigger_grammar(trigger, structures, tokenizer)
        notes += more
        if grammar is not None:
            compiled.append(TriggerGrammar(trigger.encode("utf-8"), grammar))
    return CompiledConstraint(tuple(compiled), whole, tuple(notes))


class GrammarCache:
    """Compiled constraints and pristine matchers for one tokenizer.

    Building a matcher takes milliseconds, copying one microseconds: every structure the
    model starts gets a copy of the pristine matcher of its trigger.
    """

    def __init__(self, tokenizer: LLTokenizer) -> None:
        self.tokenizer = tokenizer
        self._compiled: dict[str, CompiledConstraint] = {}
        self._matchers: dict[str, LLMatcher] = {}
        self._lock = threading.Lock()

    def compile(self, constraint: Constraint) -> CompiledConstraint:
        key = json.dumps(asdict(constraint), sort_keys=True, default=str)
        with self._lock:
            hit = self._compiled.get(key)
        if hit is None:
            hit = compile_constraint(constraint, self.tokenizer)
            with self._lock:
                if len(self._compiled) >= _CACHE_SIZE:
                    self._compiled.pop(next(iter(self._compiled)))
                self._compiled[key] = hit
        return hit

    def matcher(self, grammar: str) -> LLMatcher:
        with self._lock:
            pristine = self._matchers.get(grammar)
            if pristine is None:
                if len(self._matchers) >= _CACHE_SIZE:
                    self._matchers.pop(next(iter(self._matchers)))
                pristine = LLMatcher(self.tokenizer, grammar, log_level=0)
                self._matchers[grammar] = pristine
            return pristine.deep_copy()
