"""The launched app through its HTTP API (gradio_client): regenerate, undo, clear, export,
swap refused mid-generation, and the OpenAI-compatible backend end to end via web_demo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.ui_helpers import free_port, launch_local


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


@pytest.fixture
def local_app(tmp_path):
    """launch(script list) -> (client, models, url); the app closes after the test."""
    from llm.manager import ModelManager
    from tools.registry import ToolRegistry
    from ui.app import AppConfig, build_demo
    from ui.models import LocalModels

    demos = []

    def launch(completions: list[str], delay: float = 0.0):
        script = tmp_path / f"s{len(demos)}.json"
        script.write_text(json.dumps({"completions": completions, "delay": delay}))
        models = LocalModels(ModelManager(device="cpu"))
        models.load(f"scripted:{script}")
        demo = build_demo(models, ToolRegistry(), AppConfig(lang="en", export_dir=str(tmp_path)))
        url = launch_local(demo)
        demos.append(demo)
        return _client(url), models, url

    yield launch
    for demo in demos:
        demo.close()


def _texts(chat) -> str:
    return json.dumps(chat, ensure_ascii=False)


def test_regenerate_undo_clear_export(local_app):
    client, _, _ = local_app(["Final Answer: first", "Final Answer: second"])
    box, chat, trace = client.predict("hello", api_name="/chat")
    assert box == "" and "first" in _texts(chat)
    box, chat, trace = client.predict(api_name="/regenerate")
    assert "second" in _texts(chat) and "first" not in _texts(chat)
    assert _texts(chat).count("hello") == 1  # the turn was replaced, not appended
    files = client.predict(api_name="/export")
    paths = [f if isinstance(f, str) else f["path"] if isinstance(f, dict) else f for f in files]
    exported = json.loads(Path(next(p for p in paths if p.endswith(".json"))).read_text())
    # the agent's own messages (raw ReAct text for a v1-style prompt), one turn only
    messages = exported["messages"]
    assert messages[0] == {"role": "user", "content": "hello"} and len(messages) == 2
    assert messages[1]["role"] == "assistant" and "second" in messages[1]["content"]
    md = Path(next(p for p in paths if p.endswith(".md"))).read_text()
    assert "**User:** hello" in md and "second" in md
    box, chat, trace = client.predict("", api_name="/undo")
    assert box == "hello" and chat == []  # the query comes back to the input box
    _, chat, _ = client.predict("again", api_name="/chat")
    assert chat and "no more replies" in _texts(chat)  # a model error shows in the chat


def test_model_swap_refused_while_generating(local_app, tmp_path):
    long = "Thought: " + " ".join(f"w{i}" for i in range(200))
    client, models, _ = local_app([long], delay=0.02)
    name = models.info.name
    job = client.submit("tell me", api_name="/chat")
    deadline = time.monotonic() + 10
    while not models.busy and time.monotonic() < deadline:
        time.sleep(0.02)
    assert models.busy
    other = tmp_path / "other.json"
    other.write_text("[]")
    status = client.predict("7B", "BF16", "qwen1", f"scripted:{other}", "en", api_name="/load")
    assert models.info.name == name and name in status  # the old model still serves
    job.result()


def test_send_without_a_model_keeps_the_input(local_app):
    client, models, _ = local_app(["Final Answer: x"])
    models.unload()
    box, chat, _ = client.predict("keep me", api_name="/chat")
    assert box == "keep me" and chat == []
    status = client.predict("en", api_name="/unload")
    assert "No model loaded" in status


@pytest.fixture
def openai_server():
    from llm.scripted import ScriptedBackend
    from llm.serve import ServerThread, create_app

    backend = ScriptedBackend(["Final Answer: from the server"], name="remote-demo")
    server = ServerThread(create_app(backend, served_model_name="remote-demo")).start()
    yield server.url
    server.stop()


def test_openai_backend_through_web_demo(openai_server):
    import web_demo

    port = free_port()
    argv = ["--backend", "openai", "--base-url", openai_server, "--port", str(port), "--lang", "en"]
    demo = web_demo.main(argv, block=False)
    try:
        client = _client(f"http://127.0.0.1:{port}/")
        _, chat, _ = client.predict("hi", api_name="/chat")
        assert "from the server" in _texts(chat)
        assert "answered by remote-demo" in _texts(chat)
        # load/unload controls are hidden for a server; its model list is shown instead
        config = demo.config
        by_id = {c.get("props", {}).get("elem_id"): c for c in config["components"]}
        assert by_id["server-model"]["props"]["choices"][0][0] == "remote-demo"
        load_parent = _parent_of(config, by_id["load"]["id"])
        assert any(
            c["id"] in load_parent and c["props"].get("visible") is False
            for c in config["components"]
        )
    finally:
        demo.close()


def _parent_of(config, component_id: int) -> set[int]:
    """Ids of every layout block that contains component_id."""
    found: set[int] = set()

    def walk(node, ancestors):
        if node["id"] == component_id:
            found.update(ancestors)
        for child in node.get("children", []):
            walk(child, [*ancestors, node["id"]])

    walk(config["layout"], [])
    return found


def test_aid_checkboxes_reach_the_agent(tmp_path):
    """Settings panel -> AgentSettings: the reject checkbox decides whether an unchecked
    arithmetic answer is re-asked (the other aids ride along the same way)."""
    from agent.aids import AID_INFO
    from llm.manager import ModelManager
    from tests.test_agent_support import make_registry
    from ui.app import AppConfig, build_demo
    from ui.models import LocalModels

    call = 'Thought: x\nAction: calculator\nAction Input: {"expression": "37*89"}'
    script = tmp_path / "s.json"
    completions = ["Final Answer: 3000", "Final Answer: 3000", call, "Final Answer: 3293"]
    script.write_text(json.dumps({"completions": completions, "family": "qwen1"}))
    models = LocalModels(ModelManager(device="cpu"))
    models.load(f"scripted:{script}")
    demo = build_demo(models, make_registry(), AppConfig(lang="en", export_dir=str(tmp_path)))
    url = launch_local(demo)
    try:
        client = _client(url)
        q = "What is 37 times 89?"
        panel = ["You are a helpful assistant.", 0.0, 0.8, 256, 8, "auto"]

        def ask(reject: bool):
            aids = [a.key != "reject" or reject for a in AID_INFO]  # one box per aid, in order
            return client.predict(q, True, True, *panel, *aids, api_name="/chat")

        _, chat, trace = ask(reject=False)
        assert "3000" in _texts(chat[-1]) and "asked again" not in _texts(trace)
        _, chat, trace = ask(reject=True)
        assert "3293" in _texts(chat[-1])
        assert "asked again to use calculator" in _texts(trace)
    finally:
        demo.close()
