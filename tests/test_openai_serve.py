"""llm.serve through the official openai client, plus its parsers as tables."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest

from llm.chatml import render_chatml
from llm.openai_backend import OpenAIBackend, OpenAIServerError, list_models
from llm.scripted import ScriptedBackend
from llm.serve import ServerThread, chatml_to_messages, create_app
from llm.types import Constraint, GenerationRequest, TaggedSchema, drain

USER = [{"role": "user", "content": "What is 6 times 7?"}]
TOOLS = [
    {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}},
]
TWO_CALLS = (
    "Let me look both up.\n"
    '<tool_call>\n{"name": "weather", "arguments": {"city": "北京"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "clock", "arguments": {}}\n</tool_call>'
)


@pytest.fixture
def serve():
    """serve(completions, **kwargs) -> (openai client, scripted backend, base url)."""
    servers: list[ServerThread] = []

    def start(completions, family="qwen2", **kwargs):
        scripted = ScriptedBackend(completions, family=family)
        server = ServerThread(create_app(scripted, **kwargs)).start()
        servers.append(server)
        client = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0)
        return client, scripted, server.url

    yield start
    for server in servers:
        server.stop()


def test_models_endpoint(serve):
    client, _, _ = serve([], served_model_name="Qwen/Qwen-7B-Chat")
    assert [m.id for m in client.models.list()] == ["Qwen/Qwen-7B-Chat"]


def test_chat_non_stream_with_usage(serve):
    client, scripted, _ = serve(["Forty-two."])
    r = client.chat.completions.create(model="scripted", messages=USER, max_tokens=50, seed=3)
    assert r.choices[0].message.content == "Forty-two."
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert scripted.requests[-1].config.max_new_tokens == 50
    assert scripted.requests[-1].config.seed == 3


def test_chat_stream_deltas_concatenate_and_usage_comes_last(serve):
    text = "Six times seven is forty-two, as everyone knows."
    client, _, _ = serve([text])
    chunks = list(
        client.chat.completions.create(
            model="scripted",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 1


def test_stop_words_cut_server_side_and_reported(serve):
    client, _, _ = serve(["Thought: x\nAction: calc\nAction Input: {}\nObservation: 42"] * 2)
    r = client.chat.completions.create(model="scripted", messages=USER, stop=["Observation:"])
    assert r.choices[0].message.content == "Thought: x\nAction: calc\nAction Input: {}\n"
    assert r.choices[0].model_extra["stop_reason"] == "Observation:"
    stream = client.chat.completions.create(
        model="scripted", messages=USER, stop="Observation:", stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Thought: x\nAction: calc\nAction Input: {}\n"


def test_length_finish_reason(serve):
    client, _, _ = serve(["one two three four five six seven eight"])
    r = client.chat.completions.create(model="scripted", messages=USER, max_tokens=2)
    assert r.choices[0].finish_reason == "length"


def test_parallel_tool_calls_non_stream(serve):
    client, scripted, _ = serve([TWO_CALLS])
    r = client.chat.completions.create(model="scripted", messages=USER, tools=TOOLS)
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert msg.content == "Let me look both up."
    assert [c.function.name for c in msg.tool_calls] == ["weather", "clock"]
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "北京"}
    assert json.loads(msg.tool_calls[1].function.arguments) == {}
    assert len({c.id for c in msg.tool_calls}) == 2
    assert scripted.requests[-1].tools == TOOLS


def test_parallel_tool_calls_stream(serve):
    client, _, _ = serve([TWO_CALLS])
    calls: dict[int, dict] = {}
    content, finish = "", None
    for chunk in client.chat.completions.create(
        model="scripted", messages=USER, tools=TOOLS, stream=True
    ):
        choice = chunk.choices[0]
        content += choice.delta.content or ""
        for tc in choice.delta.tool_calls or ():
            call = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = tc.id or call["id"]
            call["name"] += tc.function.name or ""
            call["arguments"] += tc.function.arguments or ""
        finish = choice.finish_reason or finish
    assert content == "Let me look both up."
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["weather", "clock"]
    assert json.loads(calls[0]["arguments"]) == {"city": "北京"}
    assert all(c["id"].startswith("call_") for c in calls.values())


def test_tool_call_text_stays_text_without_tools(serve):
    client, _, _ = serve([TWO_CALLS])
    r = client.chat.completions.create(model="scripted", messages=USER)
    assert r.choices[0].message.content == TWO_CALLS and r.choices[0].message.tool_calls is None


def test_continue_final_message(serve):
    client, scripted, _ = serve([" I will compute it."])
    messages = [*USER, {"role": "assistant", "content": "Thought:"}]
    r = client.chat.completions.create(
        model="scripted",
        messages=messages,
        extra_body={"continue_final_message": True, "add_generation_prompt": False},
    )
    assert r.choices[0].message.content == " I will compute it."
    assert scripted.requests[-1].continue_final
    assert scripted.requests[-1].messages == messages


def test_completions_endpoint_round_trips_a_chatml_prompt(serve):
    client, scripted, _ = serve(["The answer is 42.", "ok"], family="qwen1")
    messages = [
        {"role": "system", "content": "You are terse."},
        *USER,
        {"role": "assistant", "content": "Thought: easy.\nFinal Answer:"},
    ]
    prompt = render_chatml(messages, continue_final=True)
    r = client.completions.create(model="scripted", prompt=prompt, stop=["Observation:"])
    assert r.choices[0].text == "The answer is 42." and r.object == "text_completion"
    got = scripted.requests[-1]
    assert got.continue_final and scripted.render(got) == prompt
    assert list(got.stop) == ["Observation:"]
    stream = client.completions.create(model="scripted", prompt=prompt, stream=True)
    assert "".join(c.choices[0].text for c in stream if c.choices) == "ok"


def test_sampling_parameters_are_passed(serve):
    client, scripted, _ = serve(["ok"])
    client.chat.completions.create(
        model="scripted",
        messages=USER,
        temperature=0,
        top_p=0.5,
        max_completion_tokens=9,
        extra_body={"top_k": 5, "repetition_penalty": 1.2},
    )
    cfg = scripted.requests[-1].config
    assert (cfg.temperature, cfg.top_p, cfg.max_new_tokens, cfg.top_k) == (0.0, 0.5, 9, 5)
    assert cfg.repetition_penalty == 1.2 and cfg.greedy


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"model": "scripted"}, 400, "'messages': Field required"),
        ({"model": "scripted", "messages": []}, 400, "'messages': List should have at least 1"),
        ({"model": "scripted", "messages": [{"role": "robot"}]}, 400, "'messages[0].role'"),
        ({"model": "other", "messages": USER}, 404, "`other` does not exist"),
        ({"model": "scripted", "messages": USER, "temperature": 9}, 400, "'temperature'"),
        ({"model": "scripted", "messages": USER, "max_tokens": 0}, 400, "'max_tokens'"),
        ({"model": "scripted", "messages": USER, "n": 2}, 400, "'n': only n=1 is supported"),
        ({"model": "scripted", "messages": USER, "stop": [1]}, 400, "'stop[0]'"),
        (
            {"model": "scripted", "messages": USER, "continue_final_message": True},
            400,
            "assistant message last",
        ),
        (
            {
                "model": "scripted",
                "messages": [*USER, {"role": "assistant", "content": "x"}],
                "continue_final_message": True,
                "add_generation_prompt": True,
            },
            400,
            "cannot both be true",
        ),
        (
            {"model": "scripted", "messages": USER, "add_generation_prompt": False},
            400,
            "only with continue_final_message",
        ),
    ],
)
def test_bad_requests_get_openai_style_errors(serve, body, status, fragment):
    _, _, url = serve(["unused"])
    r = httpx.post(f"{url}/chat/completions", json=body, timeout=10)
    assert r.status_code == status
    assert fragment in r.json()["error"]["message"]


SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}}
TAG = {"begin": "<tool_call>", "schema": SCHEMA, "end": "</tool_call>"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"response_format": {"type": "json_object"}}, Constraint(json_schema={"type": "object"})),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}},
            Constraint(json_schema=SCHEMA),
        ),
        (
            {"response_format": {"type": "structural_tag", "structures": [TAG], "triggers": ["<"]}},
            Constraint(
                structures=(TaggedSchema("<tool_call>", SCHEMA, "</tool_call>"),), triggers=("<",)
            ),
        ),
        ({"guided_json": SCHEMA}, Constraint(json_schema=SCHEMA)),
        ({"structured_outputs": {"json": SCHEMA}}, Constraint(json_schema=SCHEMA)),
        ({"response_format": {"type": "text"}}, None),
    ],
)
def test_constraint_fields_reach_a_backend_that_applies_them(fields, expected):
    scripted = ScriptedBackend(["{}"], family="qwen2")
    scripted.info = replace(scripted.info, supports_constraints=True)
    with ServerThread(create_app(scripted)) as server:
        body = {"model": "scripted", "messages": USER, **fields}
        r = httpx.post(f"{server.url}/chat/completions", json=body, timeout=10)
    assert r.status_code == 200, r.text
    assert scripted.requests[-1].constraint == expected


def test_enable_thinking_reaches_the_backend(serve):
    client, scripted, _ = serve(["ok", "ok"], family="qwen3")
    for flag in (True, False):
        client.chat.completions.create(
            model="scripted",
            messages=USER,
            extra_body={"chat_template_kwargs": {"enable_thinking": flag}},
        )
        assert scripted.requests[-1].thinking is flag


def test_invalid_json_body(serve):
    _, _, url = serve(["unused"])
    r = httpx.post(f"{url}/chat/completions", content=b"{nope", timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_model_failure_is_http_500_with_its_message(serve):
    client, _, _ = serve([RuntimeError("weights missing")])
    with pytest.raises(openai.InternalServerError, match="weights missing"):
        client.chat.completions.create(model="scripted", messages=USER, stream=True)


def test_api_key_required(serve):
    client, _, url = serve(["hi"], api_key="sesame")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    good = openai.OpenAI(base_url=url, api_key="sesame", max_retries=0)
    assert (
        good.chat.completions.create(model="scripted", messages=USER).choices[0].message.content
        == "hi"
    )


SYS = {"role": "system", "content": "S"}
ASSISTANT = {"role": "assistant", "content": "Thought: a\nAction: b"}


@pytest.mark.parametrize(
    ("messages", "continue_final"),
    [
        ([SYS, {"role": "user", "content": "hi"}], False),
        ([SYS, {"role": "user", "content": "多行\n文本"}, ASSISTANT], False),
        ([SYS, {"role": "user", "content": "多行\n文本"}, ASSISTANT], True),
        ([SYS, {"role": "assistant", "content": ""}], True),
    ],
)
def test_chatml_prompt_round_trip(messages, continue_final):
    prompt = render_chatml(messages, continue_final=continue_final)
    parsed, cont = chatml_to_messages(prompt)
    assert render_chatml(parsed, continue_final=cont) == prompt


def test_non_chatml_prompt_is_continued_as_assistant_text():
    assert chatml_to_messages("Once upon a time") == (
        [{"role": "assistant", "content": "Once upon a time"}],
        True,
    )


# -- the command line ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_m_llm_serve_serves_a_scripted_model(tmp_path):
    script = tmp_path / "demo.json"
    script.write_text(json.dumps({"completions": ["Served from a subprocess."]}))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "llm.serve", "--model", f"scripted:{script}", "--port", str(port)]
    cmd += ["--served-model-name", "demo", "--api-key", "k"]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert list_models(url, "k") == ["demo"]
                break
            except OpenAIServerError:
                assert proc.poll() is None, "llm.serve exited early"
                assert time.monotonic() < deadline, "llm.serve did not start"
                time.sleep(0.2)
        end = drain(OpenAIBackend(url, "k", "demo").stream(GenerationRequest(USER)))
        assert end.text == "Served from a subprocess."
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert f"Serving 'demo' at {url}" in proc.stdout.read()


def test_python_m_llm_serve_bad_source_says_why(tmp_path):
    root = Path(__file__).resolve().parent.parent
    missing = tmp_path / "nope.json"
    r = subprocess.run(
        [sys.executable, "-m", "llm.serve", "--model", f"scripted:{missing}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert "cannot load" in r.stderr and "nope.json" in r.stderr
    assert "Traceback" not in r.stderr
