"""The python tool: a separate, limited process; no network, no app files, no app secrets."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.builtin import default_registry
from tools.builtin.python_sandbox import (
    PythonLimits,
    format_result,
    make_python_tool,
    network_isolation_prefix,
    python_tool_allowed,
    run_python,
    running_on_space,
)
from tools.registry import ToolRegistry

ROOT = Path(__file__).resolve().parent.parent
FAST = PythonLimits(wall_seconds=8, cpu_seconds=3, memory_mb=512)


@pytest.fixture(scope="module")
def reg() -> ToolRegistry:
    return ToolRegistry([make_python_tool(FAST)])


def _call(reg: ToolRegistry, code: str) -> str:
    res = reg.call("python", {"code": code})
    assert res.ok, res.text  # sandbox failures are Observations, not tool errors
    return res.text


def _still_works(reg: ToolRegistry) -> None:
    assert _call(reg, "6 * 7") == "42"


def test_stdout_and_last_expression_like_a_repl(reg):
    out = _call(reg, "import math\nprint('hello', '世界')\nx = 3\nmath.factorial(x) + 1")
    assert out == "hello 世界\n7"
    assert _call(reg, "x = 1") == "(the code ran successfully and printed nothing)"
    assert _call(reg, "None") == "(the code ran successfully and printed nothing)"
    assert _call(reg, "print('a'); 'b'") == "a\n'b'"


def test_errors_show_the_users_traceback_only(reg):
    out = _call(reg, "def f():\n    return 1 / 0\nf()")
    assert "ZeroDivisionError: division by zero" in out
    assert 'File "<code>", line 2, in f' in out
    assert "sandbox" not in out.split("ZeroDivisionError")[0]
    assert "SyntaxError" in _call(reg, "def f(:")
    assert "exited with status 3" in _call(reg, "import sys; sys.exit(3)")


def test_each_call_is_fresh_and_works_in_its_own_temp_dir(reg):
    out = _call(reg, "import os; open('data.txt', 'w').write('hi'); print(os.getcwd())")
    workdir = out.strip()
    assert "qwen-demo-py-" in workdir and not Path(workdir).exists()  # deleted afterwards
    assert "NameError" in _call(reg, "x")  # no state from earlier calls
    assert "FileNotFoundError" in _call(reg, "open('data.txt').read()")


def test_wall_clock_timeout_kills_the_process(reg):
    start = time.perf_counter()
    limits = PythonLimits(wall_seconds=2)
    r = run_python("import time\nprint('start', flush=True)\ntime.sleep(60)", limits)
    assert r.timed_out and time.perf_counter() - start < limits.wall_seconds + 5
    assert "longer than 2 s" in format_result(r, limits)
    assert r.stdout.startswith("start")
    _still_works(reg)


def test_cpu_limit_stops_a_busy_loop(reg):
    limits = PythonLimits(wall_seconds=30, cpu_seconds=1)
    start = time.perf_counter()
    r = run_python("while True:\n    pass", limits)
    assert time.perf_counter() - start < 20
    assert not r.timed_out and r.signal_name in ("SIGXCPU", "SIGKILL")
    assert "CPU limit of 1 s" in format_result(r, limits)
    _still_works(reg)


def test_memory_limit(reg):
    out = _call(reg, "x = bytearray(2 * 1024 ** 3)\nlen(x)")
    assert "MemoryError" in out
    _still_works(reg)


def test_output_is_truncated(reg):
    r = run_python("print('x' * 100_000)", FAST)
    assert r.truncated and len(r.stdout) < FAST.max_output_bytes + 200
    assert "output truncated" in r.stdout
    _still_works(reg)


@pytest.fixture
def listening_port():
    """A port listening in the test process; yields (port, accepted-connections list).

    The list is filled on teardown-free demand: a connection that reached the backlog is
    accepted by `drain()` without blocking for long."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)

    def drain() -> list[object]:
        try:
            return [server.accept()]
        except OSError:
            return []

    yield server.getsockname()[1], drain
    server.close()


def test_no_network_to_a_port_the_test_opened(reg, listening_port):
    port, drain = listening_port
    code = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(3)\n"
        f"s.connect(('127.0.0.1', {port}))\n"
        "print('CONNECTED')"
    )
    out = _call(reg, code)
    assert "CONNECTED" not in out and "sandbox: socket" in out
    out = _call(reg, f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/')")
    assert "Error" in out or "PermissionError" in out
    assert drain() == []
    _still_works(reg)


def test_network_namespace_alone_blocks_the_port(listening_port):
    """The namespace layer on its own (no audit hook): the port is unreachable."""
    prefix = network_isolation_prefix()
    if not prefix:
        pytest.skip("unshare cannot create a network namespace here; only the audit hook applies")
    port, drain = listening_port
    code = f"import socket; s = socket.socket(); s.settimeout(3); s.connect(('127.0.0.1', {port}))"
    proc = subprocess.run(
        [*prefix, sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode != 0
    assert "Connection refused" in proc.stderr or "unreachable" in proc.stderr
    assert drain() == []


def test_cannot_read_app_files_or_list_the_project(reg):
    conftest = ROOT / "tests" / "conftest.py"
    assert conftest.exists()
    out = _call(reg, f"open({str(conftest)!r}).read()")
    assert "PermissionError" in out and "not allowed" in out and "ONE_TORCH" not in out
    out = _call(reg, f"from pathlib import Path\nPath({str(conftest)!r}).read_bytes()")
    assert "PermissionError" in out
    out = _call(reg, f"import os\nos.listdir({str(ROOT)!r})")
    assert "PermissionError" in out and "conftest" not in out
    out = _call(reg, "open('/etc/passwd').read()")
    assert "PermissionError" in out and "root:" not in out
    out = _call(reg, f"open({str(ROOT / 'pwned.txt')!r}, 'w').write('x')")
    assert "PermissionError" in out and not (ROOT / "pwned.txt").exists()
    out = _call(reg, "import os; os.symlink('/etc/passwd', 'p'); open('p').read()")
    assert "PermissionError" in out and "root:" not in out
    _still_works(reg)


def test_parent_secrets_are_not_in_the_child(reg, monkeypatch):
    monkeypatch.setenv("QWEN_DEMO_TEST_SECRET", "hunter2-secret")
    out = _call(
        reg, "import os\nprint(sorted(os.environ))\nprint(os.environ.get('QWEN_DEMO_TEST_SECRET'))"
    )
    assert "hunter2" not in out and "QWEN_DEMO_TEST_SECRET" not in out
    out = _call(reg, "import os\nopen(f'/proc/{os.getppid()}/environ').read()")
    assert "hunter2" not in out and "PermissionError" in out
    _still_works(reg)


@pytest.mark.parametrize(
    "code",
    [
        "import subprocess; subprocess.run(['id'])",
        "import os; os.system('id')",
        "import os; os.fork()",
        "import os; os.execv('/bin/sh', ['sh'])",
        "import os, signal; os.kill(os.getppid(), signal.SIGTERM)",
        "import ctypes; ctypes.CDLL('libc.so.6')",
        "import resource; resource.setrlimit(resource.RLIMIT_CPU, (100, 100))",
        "import gc; gc.get_objects()",
    ],
)
def test_processes_signals_ctypes_and_limits_are_refused(reg, code):
    out = _call(reg, code)
    assert "PermissionError" in out and "sandbox" in out
    _still_works(reg)


def test_numpy_works_inside_if_installed(reg):
    pytest.importorskip("numpy")
    assert _call(reg, "import numpy as np\nint(np.arange(10).sum())") == "45"


def test_registered_as_a_builtin_with_a_readable_name(tmp_path):
    reg = default_registry(db_path=tmp_path / "e.sqlite")
    assert reg.names() == ["calculator", "employee_db", "clock", "python"]
    assert reg.get("python").name_for_human == "Python Interpreter"
    assert reg.get("python").timeout > PythonLimits().wall_seconds
    assert "python" not in default_registry(db_path=tmp_path / "e.sqlite", enable_python=False)
    assert run_python("1" * 200, PythonLimits(max_code_chars=100)).stderr.startswith("code is too")


@pytest.mark.parametrize(
    ("share", "on_space", "explicit", "allowed"),
    [
        (False, False, None, True),
        (True, False, None, False),
        (False, True, None, False),
        (True, True, True, True),
        (False, False, False, False),
    ],
)
def test_python_tool_allowed(share, on_space, explicit, allowed):
    assert python_tool_allowed(share, on_space, explicit) is allowed


def test_space_detection(monkeypatch):
    assert running_on_space({"SPACE_ID": "user/demo"})
    assert running_on_space({"MODELSCOPE_ENVIRONMENT": "studio"})
    assert not running_on_space({})
    monkeypatch.setenv("SPACE_ID", "user/demo")
    assert python_tool_allowed(False) is False
    monkeypatch.delenv("SPACE_ID")
    monkeypatch.delenv("MODELSCOPE_ENVIRONMENT", raising=False)
    assert python_tool_allowed(False) is True
