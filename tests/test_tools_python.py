"""The python tool: Pyodide under Deno with no permission but reading the Pyodide files.

Each escape that broke the old audit-hook sandbox (issue 16) is a test here, written so that
it succeeds against a normal CPython child; plus bombs, loops, leftovers between calls and
attacks on the pipe between the app and the sandbox.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from tools.builtin import default_registry
from tools.builtin.pyodide_worker import GRACE_SECONDS, PyodideWorker
from tools.builtin.python_sandbox import (
    PythonLimits,
    PythonSandbox,
    format_result,
    make_python_tool,
    python_tool_allowed,
    running_on_space,
)
from tools.builtin.sandbox_process import verified
from tools.builtin.wasm_runtime import SandboxUnavailable, find_deno, find_runtime
from tools.registry import ToolRegistry

ROOT = Path(__file__).resolve().parent.parent
FAST = PythonLimits(wall_seconds=8, memory_mb=256)
ON_LINUX = sys.platform.startswith("linux")


@pytest.fixture(scope="module")
def box() -> PythonSandbox:
    find_deno()  # requirements.txt installs deno: its absence is a failure, not a skip
    try:
        find_runtime()
    except SandboxUnavailable as e:  # pyodide is fetched on first use: no network here
        pytest.skip(str(e))
    sandbox = PythonSandbox(FAST, PyodideWorker(FAST.memory_mb, ack_timeout=3.0))
    assert sandbox.run("1").stdout == "1\n"  # started: every test sees its process
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def reg(box) -> ToolRegistry:
    return ToolRegistry([make_python_tool(sandbox=box)])


def _call(reg: ToolRegistry, code: str) -> str:
    res = reg.call("python", {"code": code})
    assert res.ok, res.text  # sandbox failures are Observations, not tool errors
    return res.text


def _probes(reg: ToolRegistry, *attempts: str) -> list[str]:
    """Run several one-line attempts in one call; one line each: OK <repr> or <Exception>."""
    code = "import js, os, socket, sys\n"
    for attempt in attempts:
        code += (
            f"try:\n    r = {attempt}\n    print('OK', repr(r)[:300])\n"
            "except BaseException as e:\n    print(type(e).__name__, str(e)[:300])\n"
        )
    lines = _call(reg, code).splitlines()
    assert len(lines) == len(attempts), lines
    return lines


def _still_works(reg: ToolRegistry) -> None:
    assert _call(reg, "6 * 7") == "42"


def _children() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def _sandbox(box: PythonSandbox, reg: ToolRegistry) -> psutil.Process:
    """The sandbox's Deno process, started first if an earlier test had it replaced."""
    if box.worker.pid is None:
        _still_works(reg)
    return psutil.Process(box.worker.pid)


def _busy_seconds(proc: psutil.Process, window: float = 2.0) -> float:
    """CPU the process uses over `window` once the next interpreter has had time to load."""
    time.sleep(4)
    before = sum(proc.cpu_times()[:2])
    time.sleep(window)
    return sum(proc.cpu_times()[:2]) - before


def _only_the_sandbox_runs(box: PythonSandbox) -> None:
    """The test process's only descendant is the sandbox's Deno process (no leftovers)."""
    pids = [p.pid for p in _children() if p.status() != psutil.STATUS_ZOMBIE]
    assert pids == [box.worker.pid]


@pytest.fixture
def secret_file(tmp_path) -> tuple[Path, str]:
    """A host file the code must not see: 4321 bytes of which the first 32 are random."""
    token = secrets.token_hex(16)
    path = tmp_path / "secret.txt"
    path.write_text(token + "x" * (4321 - len(token)))
    return path, token


@pytest.fixture
def victim():
    """A process of ours that the code must not be able to signal."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


# ---- behaviour for users ----


def test_stdout_and_last_expression_like_a_repl(reg):
    out = _call(reg, "import math\nprint('hello', '世界')\nx = 3\nmath.factorial(x) + 1")
    assert out == "hello 世界\n7"
    assert _call(reg, "x = 1") == "(the code ran successfully and printed nothing)"
    assert _call(reg, "None") == "(the code ran successfully and printed nothing)"
    assert _call(reg, "print('a'); 'b'") == "a\n'b'"


def test_errors_show_the_users_traceback_only(reg):
    out = _call(reg, "def f():\n    return 1 / 0\nf()")
    assert out.startswith("Traceback (most recent call last):\n")
    assert 'File "<code>", line 2, in f' in out and "ZeroDivisionError: division by zero" in out
    assert "_qwen_run" not in out and "pyodide" not in out and "<exec>" not in out
    assert "SyntaxError" in _call(reg, "def f(:")
    assert _call(reg, "import sys; sys.exit(3)") == "Error: the code exited with status 3."
    assert "EOFError" in _call(reg, "input('name? ')")


def test_standard_library_only_and_nothing_is_fetched(reg):
    code = (
        "import json, re, sqlite3, zoneinfo\n"
        "import pyodide_js\n"
        "try:\n"
        "    await pyodide_js.loadPackage('numpy')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
        "import numpy\n"
    )
    assert _call(reg, code).endswith("ModuleNotFoundError: No module named 'numpy'")


def test_each_call_gets_a_fresh_interpreter(reg):
    setup = (
        "import builtins, sys, js\n"
        "x = 41\n"
        "sys.modules['planted'] = sys\n"
        "builtins.print = lambda *a, **k: None\n"
        "js.globalThis.planted = 'from the first call'\n"
        "open('data.txt', 'w').write('hi')\n"
    )
    assert _call(reg, setup) == "(the code ran successfully and printed nothing)"
    assert "NameError: name 'x' is not defined" in _call(reg, "x")
    assert _call(reg, "import sys; 'planted' in sys.modules") == "False"
    assert _call(reg, "print('printing works')") == "printing works"
    assert _call(reg, "import js; hasattr(js.globalThis, 'planted')") == "False"
    assert "FileNotFoundError" in _call(reg, "open('data.txt').read()")


def test_output_is_truncated(box, reg):
    r = box.run("print('x' * 100_000)")
    assert r.truncated and r.stdout.startswith("x" * FAST.max_output_bytes)
    assert r.stdout.endswith(f"[output truncated: {100_001 - FAST.max_output_bytes} more bytes]")
    _still_works(reg)


def test_description_says_what_the_sandbox_allows(reg, tmp_path):
    desc = reg.get("python").description
    assert "Python standard library only, runs in a WebAssembly sandbox: no files, no network" in (
        desc
    )
    builtins_reg = default_registry(db_path=tmp_path / "e.sqlite")
    assert builtins_reg.names() == ["calculator", "employee_db", "clock", "python"]
    assert builtins_reg.get("python").name_for_human == "Python Interpreter"
    assert builtins_reg.get("python").timeout > PythonLimits().wall_seconds
    assert "python" not in default_registry(db_path=tmp_path / "e.sqlite", enable_python=False)
    too_long = PythonSandbox(PythonLimits(max_code_chars=100)).run("1" * 200)
    assert too_long.stderr == "code is too long (limit 100 characters)"


# ---- the escapes from issue 16, each written to work against a plain CPython child ----


def test_escape_dir_fd_reads_and_writes_nothing_on_the_host(box, reg, tmp_path, secret_file):
    """openat() relative to a directory fd outside the work dir, through a symlink that
    makes the path look like it stays inside (it fooled the old hook's path check)."""
    secret, token = secret_file
    env_victim = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**os.environ, "OPENAI_API_KEY": "sk-" + token},
    )
    pwned = tmp_path / "pwned.txt"
    prelude = (
        "import os\n"
        "base = os.path.dirname(os.__file__)\n"
        "depth = len([p for p in base.split('/') if p])\n"
        "deep = '/'.join(f'd{i}' for i in range(depth + 2))\n"
        "os.makedirs(deep, exist_ok=True)\n"
        "if not os.path.islink('json'):\n"
        "    os.symlink(deep, 'json')\n"
        "fd = os.open(base, os.O_RDONLY)\n"
        "def outside(path):\n"
        "    return 'json/' + '../' * (depth + 1) + path.lstrip('/')\n"
    )
    try:
        read = prelude + (
            f"for target in ({str(secret)!r}, '/proc/{env_victim.pid}/environ'):\n"
            "    try:\n"
            "        f = os.open(outside(target), os.O_RDONLY, dir_fd=fd)\n"
            "        print(os.read(f, 100000))\n"
            "    except Exception as e:\n"
            "        print(type(e).__name__)\n"
        )
        out = _call(reg, read)
        assert token not in out and "OPENAI_API_KEY" not in out
        write = prelude + (
            f"f = os.open(outside({str(pwned)!r}), os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)\n"
            "os.write(f, b'pwned')\n"
        )
        _call(reg, write)
        assert not pwned.exists()
    finally:
        env_victim.kill()
        env_victim.wait()
    _only_the_sandbox_runs(box)


def test_escape_subinterpreter_has_no_host_either(box, secret_file):
    secret, token = secret_file
    code = f'import _testcapi\n_testcapi.run_in_subinterp("print(open({str(secret)!r}).read())")'
    slow = PythonSandbox(replace(FAST, wall_seconds=60), box.worker)  # a second Python start-up
    out = slow.python(code)
    assert token not in out and "FileNotFoundError" in out


def test_escape_posixsubprocess_under_another_name_starts_nothing(box, reg, tmp_path):
    """The old exploit (the extension file loaded under another name) and Pyodide's own
    built-in _posixsubprocess: neither can start /bin/sh or leave an orphan behind."""
    marker = tmp_path / "ran.txt"
    orphan = f"{secrets.randbelow(10_000) + 300}.{secrets.randbelow(1000)}"
    cmd = f"echo ran > {marker}; (sleep {orphan} &)"
    code = (
        "import importlib.machinery, importlib.util, os\n"
        "def under_another_name():\n"
        "    d = os.path.join(os.path.dirname(os.__file__), 'lib-dynload')\n"
        "    so = [f for f in os.listdir(d) if f.startswith('_posixsubprocess')][0]\n"
        "    name = 'innocent._posixsubprocess'\n"
        "    loader = importlib.machinery.ExtensionFileLoader(name, os.path.join(d, so))\n"
        "    spec = importlib.util.spec_from_loader(name, loader)\n"
        "    return importlib.util.module_from_spec(spec)\n"
        "def built_in():\n"
        "    return __import__('_posixsubprocess')\n"
        "for get in (under_another_name, built_in):\n"
        "    try:\n"
        "        m = get()\n"
        "        r, w = os.pipe()\n"
        f"        args = [[b'/bin/sh', b'-c', {cmd.encode()!r}], [b'/bin/sh'], True, (w,),\n"
        "                None, None, -1, -1, -1, -1, -1, -1, r, w, True, True, -1, None, None,\n"
        "                None, -1, None]\n"
        "        try:\n"
        "            m.fork_exec(*args, False)  # 3.11 takes allow_vfork too\n"
        "        except TypeError:\n"
        "            m.fork_exec(*args)\n"
        "        os.close(w)\n"
        "        os.read(r, 100)\n"
        "        print('ran')\n"
        "    except Exception as e:\n"
        "        print(type(e).__name__, e)\n"
    )
    out = _call(reg, code)
    time.sleep(0.5)
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if orphan in (p.info["cmdline"] or [])]
    for p in leftovers:
        p.kill()
    assert not marker.exists() and leftovers == []
    assert out.splitlines() == [
        "NotADirectoryError [Errno 54] Not a directory: '/lib/python314.zip/lib-dynload'",
        "OSError [Errno 52] Function not implemented",
    ]
    _only_the_sandbox_runs(box)


def test_escape_pidfd_signal_cannot_reach_host_processes(box, reg, victim):
    sandbox_pid = _sandbox(box, reg).pid
    code = (
        "import os, signal\n"
        f"for pid in ({victim.pid}, os.getppid()):\n"
        "    for kill in (lambda: signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGKILL),\n"
        "                 lambda: os.kill(pid, signal.SIGKILL)):\n"
        "        try:\n"
        "            kill()\n"
        "            print('sent')\n"
        "        except Exception as e:\n"
        "            print(type(e).__name__)\n"
    )
    out = _call(reg, code)
    assert "sent" not in out and len(out.splitlines()) == 4
    time.sleep(0.3)
    assert victim.poll() is None  # still alive
    assert box.worker.pid == sandbox_pid  # and so is the sandbox process itself
    _still_works(reg)


def test_escape_stat_and_listdir_see_no_host_files(reg, tmp_path, secret_file):
    secret, _ = secret_file
    lines = _probes(
        reg,
        f"os.stat({str(secret)!r}).st_size",
        f"os.listdir({str(tmp_path)!r})",
        f"os.listdir({str(ROOT)!r})",
    )
    assert all(line.startswith("FileNotFoundError") for line in lines), lines
    assert "4321" not in lines[0] and "secret.txt" not in lines[1] and "conftest" not in lines[2]


# ---- host access through the JavaScript side: Deno's permissions refuse it ----


def test_no_host_files_through_python_or_javascript(reg, tmp_path, secret_file):
    secret, token = secret_file
    conftest = ROOT / "tests" / "conftest.py"
    assert "HF_HUB_OFFLINE" in conftest.read_text()
    pwned = tmp_path / "pwned.txt"
    lines = _probes(
        reg,
        f"open({str(conftest)!r}).read()",
        f"open({str(pwned)!r}, 'w').write('x') and open({str(pwned)!r}).read()",
        f"js.Deno.readTextFileSync({str(secret)!r})",
        "js.Deno.readTextFileSync('/etc/passwd')",
        f"js.Deno.writeTextFileSync({str(pwned)!r}, 'x')",
        "js.Deno.readDirSync('/')",
        f"(await js.eval('import(\"node:fs\")')).readFileSync({str(secret)!r})",
        f"js.Deno.openSync({str(secret)!r})",
    )
    assert lines[0].startswith("FileNotFoundError") and "HF_HUB_OFFLINE" not in lines[0]
    assert lines[1].startswith("FileNotFoundError")  # the folder does not exist in there
    assert all(line.startswith("JsException NotCapable") for line in lines[2:]), lines
    assert token not in "".join(lines) and not pwned.exists()


def test_parent_environment_is_not_reachable(reg, monkeypatch):
    monkeypatch.setenv("QWEN_DEMO_TEST_SECRET", "hunter2-secret")
    lines = _probes(
        reg,
        "sorted(os.environ)",
        "js.Deno.env.get('QWEN_DEMO_TEST_SECRET')",
        "js.Deno.env.toObject()",
        "js.Deno.readTextFileSync('/proc/self/environ')",
        f"js.Deno.readTextFileSync('/proc/{os.getpid()}/environ')",
    )
    assert lines[0].startswith("OK ['HOME', 'LANG'") and "QWEN_DEMO" not in lines[0]
    assert all(line.startswith("JsException NotCapable") for line in lines[1:]), lines
    assert "hunter2" not in "".join(lines)


def test_no_subprocesses_ffi_or_system_information(box, reg):
    lines = _probes(
        reg,
        "__import__('subprocess').run(['/usr/bin/id'])",
        "os.system('id')",
        "js.Deno.Command.new('/usr/bin/id').outputSync()",
        'js.Deno.Command.new(\'/bin/sh\', js.JSON.parse(\'{"args": ["-c", "id"]}\')).spawn()',
        "js.Deno.hostname()",
        "js.Deno.osRelease()",
        "js.Deno.dlopen('libc.so.6', js.Object.new())",
    )
    assert lines[0].startswith(("OSError", "RuntimeError"))
    assert lines[1] == "OSError [Errno 38] the sandbox cannot start processes"
    assert all(line.startswith("JsException NotCapable") for line in lines[2:6]), lines
    assert lines[6].startswith(("JsException NotCapable", "TypeError")), lines[6]
    assert "uid=" not in "".join(lines)
    _only_the_sandbox_runs(box)


@pytest.fixture
def listening_port():
    """A port listening in the test process; drain() returns connections that reached it."""
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
    lines = _probes(
        reg,
        f"socket.create_connection(('127.0.0.1', {port}), timeout=3)",
        f"__import__('urllib.request').request.urlopen('http://127.0.0.1:{port}/', timeout=3)",
        f"await js.fetch('http://127.0.0.1:{port}/')",
        f"await js.eval('import(\"http://127.0.0.1:{port}/x.js\")')",
        "await js.fetch('https://registry.npmjs.org/')",
        f"await js.Deno.connect(js.JSON.parse('{{\"port\": {port}}}'))",
    )
    assert not any(line.startswith("OK") for line in lines), lines
    assert lines[2].startswith("JsException NotCapable") and "net access" in lines[2]
    assert lines[4].startswith("JsException NotCapable")
    assert drain() == []


# ---- bombs and loops: limits enforced from outside ----


def test_fork_and_thread_bombs_start_nothing(box, reg):
    out = _call(reg, "import os\nwhile True:\n    os.fork()")
    assert out.endswith("OSError: [Errno 52] Function not implemented")
    out = _call(
        reg,
        "import threading, time\n"
        "for _ in range(10_000):\n"
        "    threading.Thread(target=time.sleep, args=(60,)).start()",
    )
    assert out.endswith("RuntimeError: can't start new thread")
    out = _call(reg, "import multiprocessing\nmultiprocessing.Process(target=print).start()")
    assert out.endswith("ModuleNotFoundError: No module named '_multiprocessing'")
    _only_the_sandbox_runs(box)


@pytest.mark.skipif(not ON_LINUX, reason="worker threads are counted in /proc")
def test_workers_started_by_the_code_end_with_its_call(box, reg):
    """A JavaScript worker spinning forever outlives the termination of the call's worker
    (Deno's terminate() does not stop synchronous code): the process is replaced."""
    old = _sandbox(box, reg)
    spin = 'js.eval(\'new Worker("data:text/javascript,for(;;){}", {type: "module"})\')'
    assert _call(reg, f"import js, time\nfor _ in range(4):\n    {spin}\ntime.sleep(1)\n1") == "1"
    old.wait(timeout=60)  # replaced once the next interpreter was ready and counted
    assert _busy_seconds(_sandbox(box, reg)) < 0.5  # 4 spinning workers would burn ~4 s
    _only_the_sandbox_runs(box)


@pytest.mark.parametrize("code", ["while True:\n    pass", "import time\ntime.sleep(60)"])
def test_infinite_loop_stops_at_the_wall_clock_limit(box, reg, code):
    old = _sandbox(box, reg)
    short = PythonSandbox(replace(FAST, wall_seconds=2), box.worker)
    r = short.run("print('start', flush=True)\n" + code)
    # stopped by the runner at the limit (with the output so far), before the hard deadline
    assert r.timed_out and 1.5 <= r.seconds < 2 + GRACE_SECONDS and r.stdout == "start\n"
    assert "Error: the code ran longer than 2 s and was stopped." in short.python(code)
    # Deno cannot stop a worker stuck in synchronous code: the process is replaced
    old.wait(timeout=10)
    _still_works(reg)
    _only_the_sandbox_runs(box)


def test_a_process_that_misses_the_deadline_is_killed_and_replaced(box, reg, monkeypatch):
    old = _sandbox(box, reg)
    monkeypatch.setattr(box.worker, "grace_seconds", -FAST.wall_seconds + 1)
    r = box.run("while True:\n    pass")
    assert r.timed_out and r.seconds < 4
    monkeypatch.undo()
    assert not old.is_running()
    _still_works(reg)  # waits for the replacement
    assert box.worker.pid != old.pid
    _only_the_sandbox_runs(box)


def test_memory_bomb_raises_memory_error(reg):
    assert "MemoryError" in _call(reg, "x = bytearray(1024 ** 3)")
    assert "MemoryError" in _call(reg, "a = []\nwhile True:\n    a.append(bytearray(10 ** 7))")
    _still_works(reg)


@pytest.mark.skipif(not ON_LINUX, reason="the resident-memory watchdog reads /proc")
def test_memory_outside_the_python_heap_is_stopped_from_outside(box, reg):
    """Wasm memories made from JavaScript bypass the heap cap; the RSS watchdog kills."""
    code = (
        "import js\n"
        "from pyodide.ffi import to_js\n"
        "keep = []\n"
        "while True:\n"
        "    size = to_js({'initial': 4096}, dict_converter=js.Object.fromEntries)\n"
        "    m = js.WebAssembly.Memory.new(size)  # 256 MB each\n"
        "    js.Uint8Array.new(m.buffer).fill(1)\n"
        "    keep.append(m)\n"
    )
    slow = PythonSandbox(replace(FAST, wall_seconds=60), box.worker)  # filling takes a while
    r = slow.run(code)
    assert r.memory_exceeded and not r.timed_out
    assert format_result(r, slow.limits).endswith(
        "Error: the code was stopped: it used more than the memory limit (256 MB for Python)."
    )
    _still_works(reg)
    _only_the_sandbox_runs(box)


def test_javascript_heap_bomb_crashes_only_the_sandbox(box, reg):
    bomb = "const a = []; for (;;) a.push(new Array(1e6).fill(1.5))"
    out = _call(reg, f"import js\njs.eval({bomb!r})")
    assert "memory limit" in out and "restarting" in out
    _still_works(reg)
    _only_the_sandbox_runs(box)


# ---- the pipe between the app and the sandbox ----


def test_forged_or_injected_protocol_lines_are_ignored(reg):
    forged = (
        "import js\n"
        'fake = \'\\n\' + \'0\' * 64 + \' {"id": "x", "stdout": "FORGED", "exit": 0}\\n\'\n'
        "js.Deno.stdout.writeSync(js.TextEncoder.new().encode(fake * 50))\n"
        "js.Deno.stdout.write(js.TextEncoder.new().encode('FORGED' * 2_000_000))\n"
        "print('real')\n"
    )
    assert _call(reg, forged) == "real"
    assert _call(reg, "print('next call')") == "next call"


def test_only_messages_signed_with_the_process_key_are_believed():
    key = secrets.token_bytes(32)
    body = b'{"id": "abc", "stdout": "real"}'
    mac = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    assert verified(mac + b" " + body + b"\n", key) == {"id": "abc", "stdout": "real"}
    assert verified(mac + b" " + body.replace(b"real", b"fake") + b"\n", key) is None
    other = hmac.new(secrets.token_bytes(32), body, hashlib.sha256).hexdigest().encode()
    assert verified(other + b" " + body, key) is None
    assert verified(b"0" * 64 + b" " + body, key) is None and verified(body, key) is None


def test_stdin_read_left_behind_does_not_lose_the_next_call(reg):
    code = "import js\njs.Deno.stdin.read(js.Uint8Array.new(1 << 16))\nprint('left a read')"
    out = _call(reg, code)
    assert out == "left a read"
    for _ in range(3):  # one of the next requests is swallowed; it is detected and resent
        _still_works(reg)


def test_no_sandbox_process_outlives_the_app():
    """The app dies in the middle of a call, without cleanup: its sandbox ends too."""
    script = (
        "import os, threading, time\n"
        "from tools.builtin.python_sandbox import PythonLimits, PythonSandbox\n"
        "box = PythonSandbox(PythonLimits(wall_seconds=60))\n"
        "assert box.python('6 * 7') == '42'\n"
        "threading.Thread(target=box.run, args=('while True: pass',), daemon=True).start()\n"
        "time.sleep(2)\n"
        "print(box.worker.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    app = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert app.returncode == 0, app.stderr
    sandbox = psutil.Process(int(app.stdout))
    try:
        sandbox.wait(timeout=10)
    except psutil.TimeoutExpired:
        sandbox.kill()
        pytest.fail("the sandbox process outlived the app")


# ---- when to offer the tool, and when it cannot run ----


def test_unavailable_runtime_is_reported_and_nothing_runs(tmp_path, monkeypatch):
    from tools.builtin import wasm_runtime

    def missing():
        raise SandboxUnavailable("deno is not installed; run `pip install deno==2.9.8`")

    box = PythonSandbox(FAST, PyodideWorker(FAST.memory_mb, find=missing))
    out = box.python(f"open({str(tmp_path / 'ran')!r}, 'w')")
    assert out == (
        "Error: the Python sandbox is unavailable, so the code was not run: "
        "deno is not installed; run `pip install deno==2.9.8`"
    )
    assert not (tmp_path / "ran").exists() and box.worker.pid is None
    monkeypatch.setattr(wasm_runtime, "deno_candidates", lambda: [])
    with pytest.raises(SandboxUnavailable, match="pip install deno==2.9.8"):
        wasm_runtime.find_deno()
    fake = tmp_path / "deno"
    fake.write_bytes(b'#!/bin/sh\nexec python3 "$@"\n')
    monkeypatch.setattr(wasm_runtime, "deno_candidates", lambda: [fake])
    with pytest.raises(SandboxUnavailable, match="not the pinned deno 2.9.8"):
        wasm_runtime.find_deno()


def test_pyodide_files_are_checked_against_the_pins(tmp_path, monkeypatch):
    from tools.builtin import wasm_runtime

    try:
        real = wasm_runtime.find_pyodide()
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    copy = tmp_path / "pyodide"
    copy.mkdir()
    for name in wasm_runtime.PYODIDE_FILES:
        (copy / name).write_bytes((real / name).read_bytes())
    assert wasm_runtime.check_pyodide_dir(copy) is None
    (copy / "pyodide.mjs").write_text("globalThis.pwned = 1;")
    assert "pyodide.mjs is not the file of pyodide 314.0.8" in wasm_runtime.check_pyodide_dir(copy)
    monkeypatch.setenv(wasm_runtime.PYODIDE_DIR_ENV, str(copy))
    with pytest.raises(SandboxUnavailable, match="QWEN_DEMO_PYODIDE_DIR"):
        wasm_runtime.find_pyodide()
    with pytest.raises(SandboxUnavailable, match="does not match the pinned sha512"):
        wasm_runtime.unpack_pyodide(b"not the tarball", tmp_path / "unpacked")
    assert not (tmp_path / "unpacked").exists()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/pyodide.tgz"
    with pytest.raises(SandboxUnavailable, match="could not download pyodide 314.0.8"):
        wasm_runtime.download_pyodide(tmp_path / "dl", url=url)


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
