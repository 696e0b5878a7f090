"""Constrained calls over HTTP: OpenAIBackend sends the constraint as `response_format`,
llm.serve applies it through the local tiny model, and a server that refuses it gets the
request again unconstrained, with a note in the trace."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from agent import events as ev
from agent.aids.constrain import call_schema
from agent.loop import run
from agent.settings import AgentSettings
from llm.constrain import react_constraint
from llm.constrain.wire import response_format
from llm.openai_backend import OpenAIBackend
from llm.scripted import ScriptedBackend
from llm.serve import ServerThread, create_app
from llm.sources import open_backend
from llm.toolcalls.react import parse_react
from llm.types import GenerationConfig, GenerationRequest, drain
from tests.forcing import forced_backend
from tests.test_agent_support import collect, of_type
from tests.test_constrain_support import PreferredReplies, small_tools

GREEDY = GenerationConfig(max_new_tokens=100, temperature=0, repetition_penalty=1.0)
TOOLS = small_tools()
CONSTRAINT = react_constraint([(t.name, call_schema(t)) for t in TOOLS])
MALFORMED = 'Thought: x\nAction: ad\nAction Input: {"a": "one", "b": 2}\nObservation:'


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return open_backend(str(tiny_model_dir), device="cpu")


@pytest.fixture
def served():
    servers: list[ServerThread] = []

    def start(backend) -> str:
        servers.append(ServerThread(create_app(backend, served_model_name="tiny")).start())
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


def _request(constraint=CONSTRAINT) -> GenerationRequest:
    messages = [{"role": "user", "content": "1 + 2?"}]
    return GenerationRequest(messages, stop=["Observation:"], config=GREEDY, constraint=constraint)


def test_the_constraint_travels_to_llm_serve_and_is_applied(tiny, served):
    url = served(forced_backend(tiny, PreferredReplies(tiny.tokenizer, [MALFORMED])))
    remote = OpenAIBackend(url, "", "tiny", escape_control_tokens=False)
    assert remote.info.supports_constraints
    free = drain(remote.stream(_request(None)))
    assert free.text == MALFORMED.removesuffix("Observation:") and not free.constrained

    end = drain(remote.stream(_request()))
    (action,) = parse_react(end.text).actions
    jsonschema.validate(json.loads(action.raw_arguments), call_schema(TOOLS.get(action.name)))
    assert end.constrained and end.notes == () and remote.info.supports_constraints


def test_the_official_client_can_send_a_structural_tag(tiny, served):
    url = served(forced_backend(tiny, PreferredReplies(tiny.tokenizer, [MALFORMED])))
    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "1 + 2?"}],
        temperature=0,
        max_tokens=100,
        stop=["Observation:"],
        extra_body={"repetition_penalty": 1.0, "response_format": response_format(CONSTRAINT)},
    )
    (action,) = parse_react(reply.choices[0].message.content).actions
    assert action.name in TOOLS.names()


def test_a_server_that_refuses_gets_the_request_again_unconstrained(served):
    script = ScriptedBackend(['Thought: x\nAction: add\nAction Input: {"a": 1, "b": 2}'] * 2)
    assert not script.info.supports_constraints  # llm.serve answers 400 for a constraint
    remote = OpenAIBackend(served(script), "", "tiny")
    end = drain(remote.stream(_request()))
    assert end.text.startswith("Thought: x\nAction: add") and not end.error
    (note,) = end.notes
    assert "refused" in note and "HTTP 400" in note and "unconstrained" in note
    assert not end.constrained and not remote.info.supports_constraints
    # the agent's aid stops asking: the next request carries no constraint
    assert drain(remote.stream(_request())).notes == ()


def test_an_unrelated_400_is_not_blamed_on_the_constraint(tiny, served):
    """Too many tokens asked for: the request without the constraint fails the same way, so
    the error is reported and constraints stay on."""
    remote = OpenAIBackend(served(tiny), "", "tiny")
    request = _request()
    request.config = GenerationConfig(max_new_tokens=10**9)
    end = drain(remote.stream(request))
    assert "HTTP 400" in end.error and "max_tokens" in end.error
    assert end.notes == () and remote.info.supports_constraints


def test_the_agent_through_llm_serve_runs_a_constrained_call(tiny, served):
    url = served(
        forced_backend(tiny, PreferredReplies(tiny.tokenizer, [MALFORMED, "Final Answer: 3"]))
    )
    remote = OpenAIBackend(url, "", "tiny", escape_control_tokens=False)
    settings = AgentSettings(format="react", generation=GREEDY, max_steps=3).with_aids(
        prefill=False, repair=False
    )
    events = collect(run(remote, TOOLS, [], "1 + 2?", settings))
    (call,) = of_type(events, ev.ToolCall)
    assert call.name == "add" and of_type(events, ev.Observation)[0].ok
    assert of_type(events, ev.ModelCallEnd)[0].end.constrained
    assert isinstance(events[-1], ev.FinalAnswer)
