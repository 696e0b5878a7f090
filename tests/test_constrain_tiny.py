"""Constrained tool calls through a real tiny transformers model and llguidance.

The model is pushed towards a malformed call (tests/test_constrain_support.PreferLines):
without the constraint it writes exactly that call; with it, the call names an enabled tool
and its arguments satisfy the tool's schema (checked with jsonschema, an independent
validator). Plain answers come out token for token the same either way.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from agent import events as ev
from agent.aids.constrain import call_schema
from agent.loop import run
from agent.settings import AgentSettings
from llm.constrain import hermes_constraint, react_constraint
from llm.sources import open_backend
from llm.toolcalls.hermes import parse_reply
from llm.toolcalls.react import ParsedActions, parse_react
from llm.types import GenerationConfig, GenerationRequest, drain
from tests.forcing import forced_backend
from tests.test_agent_support import collect, of_type
from tests.test_constrain_support import PreferredReplies, small_tools

GREEDY = GenerationConfig(max_new_tokens=120, temperature=0, repetition_penalty=1.0)
TOOLS = small_tools()
SPECS = [(t.name, call_schema(t)) for t in TOOLS]

# What small models write instead of a call: a tool that does not exist, the schema instead
# of values, a wrapper object, a string for a number, an unfinished string, extra keys.
REACT_MALFORMED = [
    'Action: ad\nAction Input: {"a": 1, "b": 2}',
    'Action: add\nAction Input: {"a": {"type": "integer"}, "b": {"type": "integer"}}',
    'Action: add\nAction Input: {"arguments": {"a": 1, "b": 2}}',
    'Action: add\nAction Input: {"a": "one", "b": 2}',
    'Action: add\nAction Input: {"a": 1, "b": "2',
    'Action: add\nAction Input: {"a": 1, "b": 2, "c": 3}',
]
NATIVE_MALFORMED = [
    '<tool_call>\n{"name": "ad", "arguments": {"a": 1, "b": 2}}\n</tool_call>',
    '<tool_call>\n{"name": "add", "arguments": {"a": "x"}}\n</tool_call>',
    '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>',
    '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 22}}\n</tool_call>',
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return open_backend(str(tiny_model_dir), device="cpu")


def _generate(tiny, reply: str, constraint, stop=("Observation:",)):
    backend = forced_backend(tiny, PreferredReplies(tiny.tokenizer, [reply]))
    request = GenerationRequest(
        messages=[{"role": "user", "content": "What is 1 + 2?"}],
        stop=list(stop),
        config=GREEDY,
        constraint=constraint,
    )
    return drain(backend.stream(request)), backend


def _valid(name: str, arguments) -> bool:
    tool = TOOLS.get(name)
    if tool is None or not isinstance(arguments, dict):
        return False
    try:
        jsonschema.validate(arguments, call_schema(tool))
    except jsonschema.ValidationError:
        return False
    return True


def _react_call(text: str) -> tuple[str, object]:
    parsed = parse_react(text)
    assert isinstance(parsed, ParsedActions) and parsed.actions, text
    action = parsed.actions[0]
    try:
        return action.name, json.loads(action.raw_arguments)
    except ValueError:
        return action.name, action.raw_arguments


def test_the_backend_says_it_applies_constraints(tiny):
    assert tiny.info.supports_constraints


@pytest.mark.parametrize("call", REACT_MALFORMED)
def test_react_call_is_malformed_without_and_valid_with_the_constraint(tiny, call):
    reply = f"Thought: add them\n{call}\nObservation:"
    free, _ = _generate(tiny, reply, None)
    assert free.text == reply.removesuffix("Observation:") and not free.constrained
    assert not _valid(*_react_call(free.text))

    end, _ = _generate(tiny, reply, react_constraint(SPECS))
    name, arguments = _react_call(end.text)
    assert _valid(name, arguments), end.text
    assert end.constrained and end.notes == ()
    assert end.text.startswith("Thought: add them\nAction: ")  # the free part as preferred
    assert end.stop_word == "Observation:"  # the stop word still ends the step


@pytest.mark.parametrize("call", NATIVE_MALFORMED)
def test_native_call_is_malformed_without_and_valid_with_the_constraint(tiny, call):
    reply = f"Let me add.\n{call}"
    free, _ = _generate(tiny, reply, None, stop=())
    assert free.text == reply
    calls = parse_reply(free.text, TOOLS.names()).calls
    assert not calls or not _valid(calls[0].name, calls[0].arguments)

    end, _ = _generate(tiny, reply, hermes_constraint(SPECS), stop=())
    reply_read = parse_reply(end.text, TOOLS.names())
    assert reply_read.content == "Let me add."
    (read,) = reply_read.calls
    assert not read.repaired and _valid(read.name, read.arguments), end.text
    assert end.constrained


def test_plain_answers_are_token_identical_with_and_without_the_constraint(tiny):
    """No trigger, no change: the unforced random model's own tokens, greedy and sampled."""
    for config in (GREEDY, GenerationConfig(max_new_tokens=60, temperature=0.9, seed=7)):
        outputs = []
        for constraint in (None, react_constraint(SPECS), hermes_constraint(SPECS)):
            request = GenerationRequest(
                messages=[{"role": "user", "content": "hello"}],
                config=config,
                constraint=constraint,
            )
            end = drain(tiny.stream(request))
            assert not end.constrained and "Action:" not in end.text
            outputs.append(list(tiny.last_ids))
        assert outputs[0] == outputs[1] == outputs[2]


def test_a_react_reply_with_two_constrained_actions_runs_both(tiny):
    reply = (
        "Thought: both\n"
        'Action: ad\nAction Input: {"a": "1", "b": 2}\n'
        "Action: no\nAction Input: {}\nObservation:"
    )
    backend = forced_backend(tiny, PreferredReplies(tiny.tokenizer, [reply, "Final Answer: done"]))
    settings = AgentSettings(format="react", generation=GREEDY, max_steps=3).with_aids(
        prefill=False, repair=False, retry=False
    )
    events = collect(run(backend, TOOLS, [], "add and tell the time", settings))
    calls = of_type(events, ev.ToolCall)
    assert [c.name for c in calls] == ["add", "now"]
    assert _valid("add", calls[0].arguments) and calls[1].arguments == {}
    assert all(o.ok for o in of_type(events, ev.Observation))
    assert of_type(events, ev.ModelCallEnd)[0].end.constrained
    assert isinstance(events[-1], ev.FinalAnswer)


def test_the_aid_off_leaves_the_malformed_call_to_the_other_aids(tiny):
    reply = 'Thought: x\nAction: ad\nAction Input: {"a": "1", "b": 2}\nObservation:'
    backend = forced_backend(tiny, PreferredReplies(tiny.tokenizer, [reply]))
    settings = AgentSettings(format="react", generation=GREEDY, max_steps=1).with_aids(
        prefill=False, repair=False, retry=False, constrain=False
    )
    events = collect(run(backend, TOOLS, [], "add", settings))
    assert not of_type(events, ev.ModelCallEnd)[0].end.constrained
    assert not [o for o in of_type(events, ev.Observation) if o.ok]  # "ad" is no tool


def test_a_schema_the_engine_refuses_falls_back_for_that_tool_only(tiny):
    tools = small_tools(odd=True)
    specs = [(t.name, call_schema(t)) for t in tools]
    reply = 'Thought: x\nAction: od\nAction Input: {"code": "xx"}\nObservation:'
    end, _ = _generate(tiny, reply, react_constraint(specs))
    (note,) = end.notes
    assert "odd" in note and "look-around" in note and "unconstrained" in note
    name, arguments = _react_call(end.text)
    assert name == "odd" and end.constrained  # the name was still forced ...
    assert arguments == {"code": "xx"}  # ... the arguments were the model's, unconstrained

    reply = 'Thought: x\nAction: ad\nAction Input: {"a": "1", "b": 2}\nObservation:'
    end, _ = _generate(tiny, reply, react_constraint(specs))
    assert _valid(*_react_call(end.text))  # the other tools stay constrained
