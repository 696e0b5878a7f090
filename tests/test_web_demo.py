"""web_demo.py: flags and environment variables, a fast --help, a real launch."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

import web_demo
from tests.conftest import ROOT
from tests.ui_helpers import free_port


def test_defaults():
    args = web_demo.parse_args([], env={})
    assert (args.host, args.port, args.share, args.cpu_only) == ("127.0.0.1", 7860, False, False)
    assert (args.format, args.backend, args.lang, args.concurrency) == (
        "auto",
        "transformers",
        "zh",
        1,
    )
    assert args.model is None and args.python is None and args.auth_pairs is None
    assert args.on_space is False


def test_every_flag_from_the_environment():
    env = {
        "QWEN_DEMO_MODEL": "qwen-14b-chat-int4",
        "QWEN_DEMO_HOST": "0.0.0.0",
        "GRADIO_SERVER_PORT": "7861",
        "QWEN_DEMO_SHARE": "true",
        "QWEN_DEMO_TOOLS_DIR": "/plugins",
        "QWEN_DEMO_CPU_ONLY": "1",
        "QWEN_DEMO_AUTH": "ann:pw1,bob:pw2",
        "QWEN_DEMO_FORMAT": "react",
        "QWEN_DEMO_BACKEND": "openai",
        "QWEN_DEMO_BASE_URL": "http://localhost:8000/v1",
        "QWEN_DEMO_API_KEY": "k",
        "QWEN_DEMO_CONCURRENCY": "3",
        "QWEN_DEMO_PYTHON": "off",
        "QWEN_DEMO_LANG": "en",
        "QWEN_DEMO_DB": "/data/db.json",
        "SPACE_ID": "me/demo",
    }
    a = web_demo.parse_args([], env=env)
    assert a.model == "qwen-14b-chat-int4" and a.host == "0.0.0.0" and a.port == 7861
    assert a.share is True and a.cpu_only is True and a.tools_dir == "/plugins"
    assert a.auth_pairs == [("ann", "pw1"), ("bob", "pw2")]
    assert (a.format, a.backend, a.base_url, a.api_key) == (
        "react",
        "openai",
        "http://localhost:8000/v1",
        "k",
    )
    assert a.concurrency == 3 and a.python is False and a.lang == "en"
    assert a.db_path == "/data/db.json" and a.on_space is True


def test_flags_win_over_environment():
    env = {"QWEN_DEMO_PORT": "9000", "QWEN_DEMO_PYTHON": "0", "QWEN_DEMO_LANG": "en"}
    a = web_demo.parse_args(["--port", "9001", "--enable-python", "--lang", "zh"], env=env)
    assert (a.port, a.python, a.lang) == (9001, True, "zh")
    assert web_demo.parse_args(["--disable-python"], env={}).python is False
    assert web_demo.parse_args(["--no-share"], env={"QWEN_DEMO_SHARE": "1"}).share is False


def test_openai_backend_defaults_to_more_concurrency():
    a = web_demo.parse_args(["--backend", "openai", "--base-url", "http://x/v1"], env={})
    assert a.concurrency == 4


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {"QWEN_DEMO_SHARE": "maybe"}, "QWEN_DEMO_SHARE='maybe' is not a boolean"),
        ([], {"QWEN_DEMO_PORT": "http"}, "is not a number"),
        (["--backend", "openai"], {}, "needs --base-url"),
        (["--auth", "nopassword"], {}, "expects user:pass"),
        (["--concurrency", "0"], {}, "at least 1"),
        ([], {"QWEN_DEMO_FORMAT": "xml"}, "unknown prompt format"),
    ],
)
def test_bad_configuration_is_a_clear_exit(argv, env, message):
    with pytest.raises(SystemExit, match=message):
        web_demo.parse_args(argv, env=env)


def test_help_is_fast_and_imports_nothing_heavy():
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "web_demo.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "--tools-dir" in out.stdout and "QWEN_DEMO_MODEL" in out.stdout
    code = (
        "import sys, web_demo; web_demo.parse_args(['--share'], env={}); "
        "print(sorted(m for m in ('gradio', 'torch', 'transformers') if m in sys.modules))"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert probe.stdout.strip() == "[]", probe.stderr
    assert time.perf_counter() - start < 20  # generous: 2 shared cores


def test_launch_with_share_offline_reports_and_serves_locally(tmp_path, capsys):
    """A share link cannot be made offline: the app says so and the local URL still works."""
    from gradio_client import Client

    script = tmp_path / "demo.json"
    script.write_text(json.dumps(["Final Answer: hello from the entry point"]))
    port = free_port()
    argv = ["--model", f"scripted:{script}", "--port", str(port), "--share", "--lang", "en"]
    demo = web_demo.main(argv, block=False)
    try:
        err = capsys.readouterr().err
        assert "Could not create a public share link" in err
        url = f"http://127.0.0.1:{port}/"
        assert urllib.request.urlopen(url, timeout=10).status == 200
        # the model loads in the background; chat once it is ready
        client = Client(url, verbose=False)
        deadline = time.monotonic() + 30
        chat = None
        while time.monotonic() < deadline:
            result = client.predict("hi", api_name="/chat")
            chat = result[1]
            if chat and "hello from the entry point" in json.dumps(chat):
                break
            time.sleep(0.5)
        assert chat and "hello from the entry point" in json.dumps(chat)
    finally:
        demo.close()


@pytest.mark.parametrize(
    ("argv", "env", "offered"),
    [
        ([], {}, True),
        (["--share"], {}, False),
        ([], {"QWEN_DEMO_SHARE": "1"}, False),
        ([], {"SPACE_ID": "me/demo"}, False),
        ([], {"MODELSCOPE_ENVIRONMENT": "studio"}, False),
        (["--share", "--enable-python"], {"SPACE_ID": "me/demo"}, True),
        ([], {"QWEN_DEMO_PYTHON": "off"}, False),
    ],
)
def test_python_tool_is_offered_as_web_demo_decides(argv, env, offered, tmp_path, monkeypatch):
    """The decision as build_tools applies it, and a missing sandbox leaves the tool out."""
    import tools.builtin

    env = {**env, "QWEN_DEMO_DB": str(tmp_path / "employees.sqlite")}
    for broken in (False, True):
        if broken:
            monkeypatch.setattr(tools.builtin, "sandbox_problem", lambda: "deno is not installed")
        problem = tools.builtin.sandbox_problem()
        registry, notices = web_demo.build_tools(web_demo.parse_args(argv, env=env))
        try:
            assert ("python" in registry) is (offered and problem is None)
            assert ("calculator" in registry) is True
            unavailable = [n for n in notices if n.startswith("python tool unavailable: ")]
            assert len(unavailable) == (1 if offered and problem else 0)
            if offered and broken:
                assert unavailable == ["python tool unavailable: deno is not installed"]
        finally:
            if "python" in registry:
                registry.get("python").func.__self__.close()
