"""The headless runner: `python -m agent "question" --model ... --tools ...`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests.test_agent_support import SEED_QUESTION

ROOT = Path(__file__).resolve().parent.parent
SEED_SCRIPT = ROOT / "examples" / "scripted" / "seed_react.json"


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


@pytest.fixture
def tools_module(tmp_path: Path) -> Path:
    path = tmp_path / "my_tools.py"
    path.write_text(
        "from tests.test_agent_support import make_registry\nregistry = make_registry('clock')\n",
        encoding="utf-8",
    )
    return path


def _script(tmp_path: Path, completions: list[str], family: str = "qwen1") -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"completions": completions, "family": family}), encoding="utf-8")
    return f"scripted:{path}"


def test_seed_example_replays_with_the_builtin_tools():
    argv = [
        SEED_QUESTION,
        "--model",
        f"scripted:{SEED_SCRIPT}",
        "--tools",
        "calculator,employee_db,clock",
    ]
    code, text = _run(argv)
    assert code == EXIT_OK
    assert text.count("── step") == 3
    assert 'Action: employee_db {"name": "张三"}' in text
    assert "Action: calculator" in text and "Observation (ok" in text
    assert "Final Answer (3 steps): 不是，张三的生日是5月5日，距离现在还有3个月" in text
    # The database's own answer, from the tool's Observation event (the script's Thought
    # also says 5月5日, so the text above proves nothing about the tool).
    code, text = _run([*argv, "--json"])
    observations = [json.loads(line) for line in text.splitlines()]
    observations = [o for o in observations if o["type"] == "observation"]
    assert [o["name"] for o in observations] == ["employee_db", "calculator"]
    record = json.loads(observations[0]["text"])
    assert (record["birthday"], record["birth_month"]) == ("5月5日", 5)
    assert record["position"] == "业务员"
    assert observations[1]["text"] == "3"


def test_aid_flags_reach_the_agent(tmp_path, tools_module):
    call = 'Thought: x\nAction: calculator\nAction Input: {"expression": "37*89"}'
    script = ["Final Answer: 3000", call, "Final Answer: 3293"]
    common = ["--tools-module", str(tools_module), "--tools", "calculator"]
    code, text = _run(["What is 37 times 89?", "--model", _script(tmp_path, script), *common])
    assert code == EXIT_OK and "! aid reject:" in text and "use calculator" in text
    assert "(set aside: 3000)" in text
    assert "Final Answer (3 steps): 3293" in text
    argv = ["What is 37 times 89?", "--model", _script(tmp_path, script), *common, "--no-reject"]
    code, text = _run([*argv, "--no-prefill", "--no-dedupe"])
    assert code == EXIT_OK and "! aid" not in text and "Final Answer (1 step): 3000" in text


def test_json_lines_one_object_per_event(tmp_path, tools_module):
    model = _script(
        tmp_path, ['Action: calculator\nAction Input: {"expression": "6*7"}', "Final Answer: 42"]
    )
    argv = ["6*7?", "--model", model, "--tools", "calculator", "--json"]
    code, text = _run([*argv, "--tools-module", str(tools_module)])
    assert code == EXIT_OK
    objs = [json.loads(line) for line in text.splitlines()]
    types = [o["type"] for o in objs]
    assert types[0] == "step_started" and types[-1] == "final_answer"
    assert "text_delta" in types and types.count("final_answer") == 1
    observation = next(o for o in objs if o["type"] == "observation")
    assert observation["text"] == "42" and observation["ok"] is True
    assert objs[-1]["messages"][0] == {"role": "user", "content": "6*7?"}


def test_forced_native_format_and_step_limit(tmp_path, tools_module):
    call = '<tool_call>{"name": "clock", "arguments": {}}</tool_call>'
    model = _script(tmp_path, [call] * 3, family="qwen1")
    argv = ["time?", "--model", model, "--tools", "all", "--format", "native", "--max-steps", "2"]
    code, text = _run([*argv, "--tools-module", str(tools_module), "--json"])
    assert code == EXIT_FAILED
    objs = [json.loads(line) for line in text.splitlines()]
    assert [o["name"] for o in objs if o["type"] == "tool_call"] == ["clock", "clock"]
    assert objs[-1]["type"] == "step_limit"


def test_plain_chat_without_tools(tmp_path, tools_module):
    code, text = _run(
        ["hi", "--model", _script(tmp_path, ["Hello!"]), "--tools-module", str(tools_module)]
    )
    assert code == EXIT_OK and "Final Answer (1 step): Hello!" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tools", "calculator,web_search"], "unknown tool(s) ['web_search']"),
        (["--max-steps", "0"], "max_steps"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, tools_module, capsys, argv, message):
    base = ["q", "--model", _script(tmp_path, ["x"]), "--tools-module", str(tools_module)]
    code, _ = _run([*base, *argv])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_missing_scripted_file_is_reported(tmp_path, tools_module, capsys):
    code, _ = _run(
        ["q", "--model", f"scripted:{tmp_path}/nope.json", "--tools-module", str(tools_module)]
    )
    assert code == EXIT_USAGE
    assert "nope.json" in capsys.readouterr().err


def test_python_dash_m_agent_runs(tmp_path):
    model = _script(tmp_path, ["Final Answer: 你好"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "你好",
            "--model",
            model,
            "--tools",
            "calculator",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["type"] == "final_answer" and last["text"] == "你好"
