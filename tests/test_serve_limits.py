"""llm.serve's limits and its answers to malformed bodies: a clear 4xx naming the field,
never a 500, and the server keeps serving."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm.serve import ServeLimits, ServerThread, create_app
from llm.types import GenerationEnd, GenerationRequest, ModelInfo, StopReason, TextDelta

USER = [{"role": "user", "content": "hi"}]


class Endless:
    """Answers every request with "ok" (a scripted model would run out of replies)."""

    info = ModelInfo("endless", "qwen2", "test")

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest):
        self.requests.append(request)
        yield TextDelta("ok")
        yield GenerationEnd("ok", StopReason.EOS, prompt_tokens=1, completion_tokens=1)

    def render(self, request: GenerationRequest) -> str:
        return ""

    def close(self) -> None:
        pass


LIMITS = ServeLimits(max_body_bytes=20_000, max_tokens=1000, max_stop=4, max_stop_chars=20)


@pytest.fixture(scope="module")
def backend() -> Endless:
    return Endless()


@pytest.fixture(scope="module")
def server(backend):
    with ServerThread(create_app(backend, limits=LIMITS)) as srv:
        yield srv


def post(server, body: object, path: str = "chat/completions") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    return httpx.post(f"{server.url}/{path}", content=content, headers=headers, timeout=10)


def chat(**fields) -> dict:
    return {"model": "endless", "messages": USER, **fields}


def still_serving(server) -> None:
    r = post(server, chat())
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "ok"


def test_body_over_the_limit_is_413_with_the_sizes(server):
    big = chat(messages=[{"role": "user", "content": "x" * 30_000}])
    r = post(server, big)
    assert r.status_code == 413
    msg = r.json()["error"]["message"]
    assert "at most 20000" in msg and "--max-body-mb" in msg
    still_serving(server)


def test_chunked_body_without_length_is_cut_off_too(server):
    def pieces():
        yield b'{"model": "endless", "messages": [{"role": "user", "content": "'
        for _ in range(50):
            yield b"x" * 1000
        yield b'"}]}'

    r = httpx.post(f"{server.url}/chat/completions", content=pieces(), timeout=10)
    assert r.status_code == 413 and "more than 20000" in r.json()["error"]["message"]
    still_serving(server)


@pytest.mark.parametrize("path", ["chat/completions", "completions"])
def test_max_tokens_cap(server, backend, path):
    body = chat(max_tokens=5000) if path.startswith("chat") else {"model": "endless"}
    if not path.startswith("chat"):
        body.update(prompt="Once", max_tokens=5000)
    r = post(server, body, path)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "max_tokens"
    assert err["message"] == (
        "'max_tokens' is 5000; this server allows at most 1000 (llm.serve --max-tokens)"
    )
    assert post(server, chat(max_completion_tokens=1000)).status_code == 200
    assert backend.requests[-1].config.max_new_tokens == 1000


def test_stop_strings_capped_in_number_and_length(server):
    r = post(server, chat(stop=["a", "b", "c", "d", "e"]))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "'stop' has 5 strings; this server takes at most 4"
    r = post(server, chat(stop=["Observation:", "y" * 21]))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "'stop[1]' is 21 characters long; this server takes at most 20"
    )
    assert post(server, chat(stop=["a", "b", "c", "y" * 20])).status_code == 200


@pytest.mark.parametrize("depth", [300, 5000])
def test_deeply_nested_json_is_400(server, depth):
    nested = "[" * depth + "]" * depth
    raw = f'{{"model": "endless", "messages": {json.dumps(USER)}, "tools": {nested}}}'
    r = post(server, raw.encode())
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "the request JSON is nested too deeply"
    still_serving(server)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"hello"', "must be a JSON object"),
        (chat(max_tokens="10"), "'max_tokens': Input should be a valid integer"),
        (chat(max_tokens=1.5), "'max_tokens': Input should be a valid integer"),
        (chat(max_tokens=True), "'max_tokens'"),
        (chat(temperature="hot"), "'temperature'"),
        (chat(messages="hi"), "'messages'"),
        (chat(messages=[{"role": "user", "content": 5}]), "'messages[0].content'"),
        (chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), "text content"),
        (chat(messages=[{"content": "no role"}]), "'messages[0].role': Field required"),
        (chat(messages=[{"role": "assistant", "tool_calls": "x"}]), "'messages[0].tool_calls'"),
        (chat(messages=[{"role": "assistant", "tool_calls": [{"id": "a"}]}]), "function"),
        (chat(tools={"name": "x"}), "'tools'"),
        (chat(tools=[{"type": "function", "function": {}}]), "'tools[0].function.name'"),
        (chat(stream="yes"), "'stream'"),
        (chat(stream_options=5), "'stream_options'"),
        (chat(stop=5), "'stop'"),
        (chat(seed="1"), "'seed'"),
        (chat(model=7), "'model'"),
        (chat(chat_template_kwargs={"enable_thinking": "yes"}), "enable_thinking"),
        (chat(response_format={"type": "xml"}), "'response_format.type'"),
    ],
)
def test_mistyped_fields_are_400_naming_the_field(server, body, fragment):
    r = post(server, body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]["message"]


def test_completions_prompt_must_be_one_string(server):
    r = post(server, {"model": "endless", "prompt": ["a", "b"]}, "completions")
    assert r.status_code == 400 and "one prompt" in r.json()["error"]["message"]
    r = post(server, {"model": "endless", "prompt": 5}, "completions")
    assert r.status_code == 400 and "'prompt'" in r.json()["error"]["message"]


def test_constraints_are_refused_by_a_backend_without_a_grammar_engine(server):
    r = post(server, chat(response_format={"type": "json_object"}))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "'response_format' asks for constrained decoding, which the model served here cannot apply"
    )
    r = post(server, chat(guided_regex="[a-z]+"))
    assert r.status_code == 400 and "'guided_regex' is not supported" in r.text
    assert post(server, chat(response_format={"type": "text"})).status_code == 200


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "messages",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "tools",
        "tool_choice",
        "stream_options",
        "seed",
        "continue_final_message",
        "chat_template_kwargs",
        "response_format",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=FIELDS, value=JSON)
def test_any_json_in_any_field_is_never_a_500(server, field, value):
    r = post(server, chat(**{field: value}))
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["message"]
