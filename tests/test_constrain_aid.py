"""The constrain aid: which requests get a constraint, built how, and where it shows.

Logic with the scripted model (it applies no constraint, so the aid must leave it alone
unless told otherwise); the switches come from the aid list like every other aid's.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from agent import events as ev
from agent.aids import AID_KEYS, DEFAULT_AIDS
from agent.aids.constrain import call_schema
from agent.cli import build_parser
from agent.loop import run
from llm.constrain import hermes_constraint, react_constraint
from llm.scripted import ScriptedBackend
from llm.toolcalls.hermes import render_tool_call
from llm.toolcalls.react import render_action
from llm.types import GenerationEnd, StopReason
from tests.test_agent_support import agent_settings, collect, make_registry
from tests.test_constrain_support import small_tools
from ui.render import trace_messages
from ui.state import Turn

REACT_STEP = 'Thought: go\nAction: add\nAction Input: {"a": 1, "b": 2}'
NATIVE_STEP = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'


def _requests(fmt: str, *, supports: bool, **aids):
    step = REACT_STEP if fmt == "react" else NATIVE_STEP
    backend = ScriptedBackend([step, "Final Answer: 3" if fmt == "react" else "3"])
    backend.info = dataclasses.replace(backend.info, supports_constraints=supports)
    settings = agent_settings(format=fmt, **aids)
    collect(run(backend, small_tools(), [], "1 + 2?", settings))
    return backend.requests


def test_on_by_default_and_switchable_like_every_aid():
    assert "constrain" in AID_KEYS and "constrain" in DEFAULT_AIDS
    assert build_parser().parse_args(["--no-constrain", "q"]).aid_constrain is False


@pytest.mark.parametrize("fmt", ["react", "native"])
def test_every_call_of_a_turn_gets_the_formats_constraint(fmt):
    requests = _requests(fmt, supports=True)
    specs = [(t.name, call_schema(t)) for t in small_tools()]
    expected = react_constraint(specs) if fmt == "react" else hermes_constraint(specs)
    assert len(requests) == 2 and all(r.constraint == expected for r in requests)


@pytest.mark.parametrize(
    "supports, aids", [(False, {}), (True, {"constrain": False})], ids=["backend", "off"]
)
def test_no_constraint_when_the_backend_cannot_or_the_aid_is_off(supports, aids):
    assert all(r.constraint is None for r in _requests("react", supports=supports, **aids))


def test_plain_chat_gets_no_constraint():
    backend = ScriptedBackend(["hi"])
    backend.info = dataclasses.replace(backend.info, supports_constraints=True)
    collect(run(backend, small_tools().subset([]), [], "hello", agent_settings()))
    assert backend.requests[0].constraint is None


def test_call_schema_closes_the_object_as_the_tool_does():
    for tool in make_registry():
        schema = call_schema(tool)
        assert schema["additionalProperties"] is False
        assert schema["properties"] == tool.parameters["properties"]


def test_the_structures_are_what_the_renderers_write():
    """A call under the constraint reads back through the one parser of its format."""
    args = {"a": 1, "b": 2}
    (react,) = react_constraint([("add", {})]).structures
    assert react.begin + json.dumps(args) == render_action("add", args, None)
    (native,) = hermes_constraint([("add", {})]).structures
    assert native.begin + json.dumps(args) + native.end == render_tool_call("add", args)
    assert react_constraint([]).triggers == () == hermes_constraint([]).triggers


@pytest.mark.parametrize("lang, badge", [("en", "🔒 constrained"), ("zh", "🔒 已约束")])
def test_the_trace_marks_a_constrained_step_and_shows_its_notes(lang, badge):
    note = "constraint: llguidance refused the schema of 'Action: odd'"
    turn = Turn(query="q", model="m", status="done")
    turn.events = [
        ev.StepStarted(1, "prompt"),
        ev.ModelCallEnd(1, GenerationEnd("x", StopReason.EOS, constrained=True, notes=(note,))),
        ev.StepStarted(2, "prompt"),
        ev.ModelCallEnd(2, GenerationEnd("y", StopReason.EOS)),
    ]
    cards = [m for m in trace_messages(turn, 1, lang) if "log" in m.get("metadata", {})]
    assert badge in cards[0]["metadata"]["title"] and note in cards[0]["metadata"]["log"]
    assert badge not in cards[1]["metadata"]["title"]
