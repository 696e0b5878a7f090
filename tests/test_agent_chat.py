"""The terminal chat: `python -m agent` with no question (the seed's cli_demo)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from agent.cli import EXIT_OK, main

ROOT = Path(__file__).resolve().parent.parent


def _script(tmp_path: Path, completions: list[str]) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"completions": completions, "family": "qwen2"}), "utf-8")
    return f"scripted:{path}"


def _chat(monkeypatch, tmp_path, completions, lines, *extra):
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{line}\n" for line in lines)))
    out = io.StringIO()
    code = main(["--model", _script(tmp_path, completions), *extra], out=out)
    return code, out.getvalue()


def test_chat_streams_keeps_history_and_clears_it(monkeypatch, tmp_path):
    from llm.scripted import ScriptedBackend

    seen: list = []
    real = ScriptedBackend.stream

    def record(self, request):
        seen.append([m["content"] for m in request.messages if m["role"] == "user"])
        return real(self, request)

    monkeypatch.setattr(ScriptedBackend, "stream", record)
    lines = ["你好", "我叫什么？", ":clear", "再见", ":exit", "never read"]
    code, text = _chat(monkeypatch, tmp_path, ["你好！", "你没说。", "再见！"], lines)
    assert code == EXIT_OK
    assert "你好！" in text and "你没说。" in text and "再见！" in text
    assert "(conversation cleared)" in text
    # the second turn saw the first; after :clear the history is gone
    assert seen == [["你好"], ["你好", "我叫什么？"], ["再见"]]


def test_chat_runs_tools_and_prints_the_trace_lines(monkeypatch, tmp_path):
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    module = tmp_path / "my_tools.py"
    module.write_text(
        "from tests.test_agent_support import make_registry\nregistry = make_registry()\n"
    )
    code, text = _chat(
        monkeypatch,
        tmp_path,
        [call, "42"],
        ["6*7?"],
        "--tools",
        "calculator",
        "--tools-module",
        str(module),
    )
    assert code == EXIT_OK  # end of input leaves the chat
    assert 'Action: calculator {"expression": "6*7"}' in text
    assert "Observation (ok" in text and "Final Answer (2 steps): 42" in text


def test_chat_as_a_user_runs_it(tmp_path):
    """Through `python -m agent`, stdin piped in, as a person would start it."""
    model = _script(tmp_path, ["Hello there!"])
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "--model", model],
        input="hi\n:exit\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Hello there!" in proc.stdout and ":clear" in proc.stdout
