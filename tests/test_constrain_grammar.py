"""The constraint compiled into llguidance grammars and run token by token (no model): the
trigger watch, a token that runs past the trigger, special-token literals, a refused schema,
whole-output JSON. Through the real engine and a real (tiny, trained) tokenizer."""

from __future__ import annotations

import pytest

from llm.constrain.grammar import compile_constraint, schema_problem
from llm.constrain.hf import grammar_cache
from llm.constrain.session import ConstraintSession, allowed_tokens
from llm.constrain.structures import hermes_constraint, react_constraint
from llm.types import Constraint, TaggedSchema
from tests.test_constrain_support import ADD_SCHEMA, ODD_SCHEMA
from tests.tiny_models import build_tokenizer

DIGIT = {"type": "integer", "minimum": 0, "maximum": 9}


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def _session(tok, constraint: Constraint) -> ConstraintSession:
    cache = grammar_cache(tok, len(tok), (tok.convert_tokens_to_ids("<|im_end|>"),))
    return ConstraintSession(cache, cache.compile(constraint))


def _feed(session: ConstraintSession, ids: list[int]) -> list[bool]:
    """Feed ids; for each, whether the mask before it allowed it (True while free)."""
    allowed = []
    for i in ids:
        mask = session.mask()
        vocab = session.tokenizer.vocab_size
        allowed.append(mask is None or bool(allowed_tokens(mask, vocab)[i]))
        session.advance(i)
    return allowed


def _ids(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


def test_free_text_is_never_masked(tok):
    session = _session(tok, react_constraint([("add", ADD_SCHEMA)]))
    for i in _ids(tok, "Thought: no tool needed.\nFinal Answer: 42, take action: none"):
        assert session.mask() is None
        session.advance(i)
    assert not session.applied and session.masked_steps == 0


def test_a_call_is_masked_from_the_trigger_to_its_end_then_free_again(tok):
    session = _session(tok, react_constraint([("add", ADD_SCHEMA), ("now", {})]))
    ok = _feed(session, _ids(tok, 'Thought: x\nAction: add\nAction Input: {"a": 1, "b": 2}\n'))
    assert all(ok) and session.applied and not session.active
    assert session.mask() is None  # released after the structure's end
    bad = _feed(session, _ids(tok, 'Action: add\nAction Input: {"a": 12'))
    assert bad[-1] is False  # 12 > maximum 9: the second call is constrained too


def test_a_token_running_past_the_trigger_is_fed_to_the_grammar(tok):
    """'{"' 'name' '":' — the trigger ends inside the last token; its ':' must fit."""
    assert [tok.decode([i]) for i in _ids(tok, '{"name":')] == ['{"', "name", '":']
    fits = Constraint((TaggedSchema('{"name": ', DIGIT, "}"),), triggers=('{"name"',))
    session = _session(tok, fits)
    _feed(session, _ids(tok, '{"name":'))
    assert session.applied and session.active and session.notes == []

    breaks = Constraint((TaggedSchema('{"name" : ', DIGIT, "}"),), triggers=('{"name"',))
    session = _session(tok, breaks)
    _feed(session, _ids(tok, '{"name":'))
    assert not session.applied and not session.active
    assert "right after the trigger" in session.notes[0]


def test_literals_that_are_special_tokens_are_written_as_those_tokens():
    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<tool_call>", "</tool_call>"]})
    open_id, close_id = tok.convert_tokens_to_ids(["<tool_call>", "</tool_call>"])
    cache = grammar_cache(tok, len(tok), ())
    compiled = cache.compile(hermes_constraint([("add", ADD_SCHEMA)]))
    assert f"<[{close_id}]>" in compiled.triggers[0].grammar
    session = ConstraintSession(cache, compiled)
    body = _ids(tok, '\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n')
    assert all(_feed(session, [open_id, *body]))
    mask = session.mask()
    allowed = allowed_tokens(mask, len(tok))
    assert allowed[close_id] and not allowed[_ids(tok, "<")[0]]  # never spelled out
    session.advance(close_id)
    assert not session.active


def test_a_refused_schema_keeps_the_name_forced_and_frees_the_arguments(tok):
    assert "look-around" in schema_problem(ODD_SCHEMA)
    cache = grammar_cache(tok, len(tok), ())
    constraint = react_constraint([("add", ADD_SCHEMA), ("odd", ODD_SCHEMA)])
    compiled = compile_constraint(constraint, cache.tokenizer)
    (note,) = compiled.notes
    assert "'Action: odd Action Input:'" in note and "unconstrained" in note
    session = ConstraintSession(cache, compiled)
    assert not all(_feed(session, _ids(tok, "Action: od\n")))  # 'od' is no tool
    session = ConstraintSession(cache, compiled)
    assert all(_feed(session, _ids(tok, "Action: odd\nAction Input: ")))
    assert not session.active  # released: the arguments are the model's
    assert all(_feed(session, _ids(tok, '{"code": no json at all')))


def test_a_whole_output_schema_is_active_from_the_first_token(tok):
    session = _session(tok, Constraint(json_schema={"type": "object", "properties": {"n": DIGIT}}))
    assert session.active and session.applied
    assert _feed(session, _ids(tok, "Sure"))[0] is False
    assert "lost track" in session.notes[0] and not session.active  # a forced token: no crash
    session = _session(tok, Constraint(json_schema={"type": "object", "properties": {"n": DIGIT}}))
    assert all(_feed(session, _ids(tok, '{"n": 5}')))
    allowed = allowed_tokens(session.mask(), len(tok))
    assert allowed.nonzero()[0].tolist() == [tok.convert_tokens_to_ids("<|im_end|>")]


def test_a_constraint_with_nothing_to_build_says_so(tok):
    cache = grammar_cache(tok, len(tok), ())
    compiled = cache.compile(Constraint((TaggedSchema("<x>", DIGIT, ""),), triggers=("<y>",)))
    assert compiled.empty and "no structure begins with the trigger" in compiled.notes[0]
    compiled = cache.compile(Constraint(json_schema={"type": "nonsense"}))
    assert compiled.empty and "refused the JSON schema" in compiled.notes[0]
