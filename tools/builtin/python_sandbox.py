"""The python tool: run model-written code in a separate, limited, throw-away process.

Layers, strongest first: a separate process in its own session (the whole group is killed
on timeout); an empty network namespace via `unshare` where the kernel allows it; resource
limits (CPU seconds, address space, file size, open files); a minimal environment with none
of the app's variables; a fresh temporary working directory deleted afterwards; and inside
the child an audit hook refusing sockets, processes, ctypes and file access outside the
temp dir and the Python installation. See docs/tools.md for what this does not stop.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tools.registry import Tool, make_tool

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_CHILD_FILE = Path(__file__).with_name("sandbox_child.py")
# `-c` program: compile the bootstrap under its own file name (see sandbox_child.py).
_CHILD_PROGRAM = "exec(compile({src!r}, {name!r}, 'exec'))".format(
    src=_CHILD_FILE.read_text(encoding="utf-8"), name="<qwen-demo-sandbox>"
)


@dataclass(frozen=True)
class PythonLimits:
    """Per-run limits. `deny_paths` are readable by nothing in the child."""

    wall_seconds: float = 15.0
    cpu_seconds: int = 10
    memory_mb: int = 1024
    file_size_mb: int = 16
    open_files: int = 256
    max_output_bytes: int = 16_000
    max_code_chars: int = 100_000
    isolate_network: bool = True
    deny_paths: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SandboxResult:
    stdout: str
    stderr: str
    exit_code: int | None
    seconds: float
    timed_out: bool = False
    signal_name: str | None = None
    truncated: bool = False
    network_isolated: bool = False


def running_on_space(env: Mapping[str, str] | None = None) -> bool:
    """True on a Hugging Face Space or a ModelScope studio (public by default)."""
    env = os.environ if env is None else env
    return bool(env.get("SPACE_ID") or env.get("MODELSCOPE_ENVIRONMENT"))


def python_tool_allowed(
    share: bool, on_space: bool | None = None, explicit: bool | None = None
) -> bool:
    """Whether to offer the python tool: an explicit choice wins; otherwise only when the
    app is neither shared by link nor on a Space (on_space=None detects it from env)."""
    if explicit is not None:
        return explicit
    public = share or (running_on_space() if on_space is None else on_space)
    return not public


@functools.lru_cache(maxsize=1)
def network_isolation_prefix() -> tuple[str, ...]:
    """The command prefix that gives the child an empty network namespace, or () if none
    works here (checked once: `unshare -n` needs root, `unshare -rn` user namespaces)."""
    unshare = shutil.which("unshare")
    if not unshare or not sys.platform.startswith("linux"):
        return ()
    for prefix in ((unshare, "-n", "--"), (unshare, "-rn", "--")):
        try:
            probe = subprocess.run(
                [*prefix, sys.executable, "-I", "-c", "pass"],
                capture_output=True,
                timeout=20,
                env={"PATH": "/usr/bin:/bin"},
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return prefix
    return ()


def _default_deny() -> tuple[str, ...]:
    from tools.builtin.employee_db import default_db_path

    deny = {str(PROJECT_ROOT), str(default_db_path().parent)}
    for var in ("QWEN_DEMO_CACHE", "HF_HOME"):
        if os.environ.get(var):
            deny.add(os.environ[var])
    deny.add(str(Path.home() / ".cache"))
    return tuple(sorted(deny))


def _reader(stream, keep: int, out: dict[str, object]) -> None:
    """Drain a pipe, keeping only the first `keep` bytes (a flood cannot fill our memory)."""
    kept = bytearray()
    total = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        total += len(chunk)
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    out["data"] = bytes(kept)
    out["total"] = total


def _signal_name(code: int | None) -> str | None:
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _rmtree(path: str) -> None:
    """Remove the work dir even if the code made parts of it unreadable."""

    def fix(func, p, _exc) -> None:  # noqa: ANN001 - shutil's onerror signature
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def run_python(code: str, limits: PythonLimits | None = None) -> SandboxResult:
    """Run `code` in a sandboxed child process and collect its output."""
    limits = limits or PythonLimits()
    if len(code) > limits.max_code_chars:
        return SandboxResult(
            "", f"code is too long (limit {limits.max_code_chars} characters)", None, 0.0
        )
    prefix = network_isolation_prefix() if limits.isolate_network else ()
    workdir = tempfile.mkdtemp(prefix="qwen-demo-py-")
    config = {
        "code": code,
        "workdir": workdir,
        "deny": list(limits.deny_paths or _default_deny()),
        "limits": {
            "RLIMIT_CPU": int(limits.cpu_seconds),
            "RLIMIT_AS": int(limits.memory_mb) * 1024 * 1024,
            "RLIMIT_FSIZE": int(limits.file_size_mb) * 1024 * 1024,
            "RLIMIT_NOFILE": int(limits.open_files),
            "RLIMIT_CORE": 0,
        },
    }
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    cmd = [*prefix, sys.executable, "-I", "-B", "-X", "utf8", "-c", _CHILD_PROGRAM]
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as e:
        _rmtree(workdir)
        return SandboxResult("", f"could not start Python: {e}", None, 0.0)
    outs: dict[str, dict[str, object]] = {"out": {}, "err": {}}
    readers = [
        threading.Thread(
            target=_reader, args=(stream, limits.max_output_bytes, outs[key]), daemon=True
        )
        for key, stream in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for t in readers:
        t.start()
    timed_out = False
    try:
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(config).encode("utf-8"))
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            proc.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it left behind
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        for t in readers:
            t.join(5)
        _rmtree(workdir)
    seconds = time.perf_counter() - start

    def text(d: dict[str, object]) -> tuple[str, bool]:
        data = d.get("data", b"")
        total = d.get("total", 0)
        assert isinstance(data, bytes) and isinstance(total, int)
        s = data.decode("utf-8", errors="replace")
        if total > len(data):
            return s + f"\n...[output truncated: {total - len(data)} more bytes]", True
        return s, False

    out, cut_out = text(outs["out"])
    err, cut_err = text(outs["err"])
    code_ = None if timed_out else proc.returncode
    return SandboxResult(
        stdout=out,
        stderr=err,
        exit_code=code_,
        seconds=seconds,
        timed_out=timed_out,
        signal_name=None if timed_out else _signal_name(proc.returncode),
        truncated=cut_out or cut_err,
        network_isolated=bool(prefix),
    )


def format_result(r: SandboxResult, limits: PythonLimits) -> str:
    """The Observation text: output, then errors, then why the run stopped if it was cut."""
    parts = [r.stdout.rstrip("\n")] if r.stdout.strip() else []
    if r.stderr.strip():
        parts.append(r.stderr.rstrip("\n"))
    if r.timed_out:
        parts.append(f"Error: the code ran longer than {limits.wall_seconds:g} s and was stopped.")
    elif r.signal_name in ("SIGXCPU", "SIGKILL"):
        parts.append(
            f"Error: the code was stopped ({r.signal_name}): it exceeded the CPU limit of "
            f"{limits.cpu_seconds} s or the memory limit of {limits.memory_mb} MB."
        )
    elif r.signal_name:
        parts.append(f"Error: the code was stopped by {r.signal_name}.")
    elif r.exit_code not in (0, None) and not r.stderr.strip():
        parts.append(f"Error: the code exited with status {r.exit_code}.")
    if not parts:
        return "(the code ran successfully and printed nothing)"
    return "\n".join(parts)


def make_python_tool(limits: PythonLimits | None = None) -> Tool:
    """The python tool with the given limits (its registry timeout covers the wall limit)."""
    lim = limits or PythonLimits()

    def python(code: str) -> str:
        """Run Python 3 code in an isolated sandbox and return what it printed, like a notebook
        cell: the value of the last expression is shown too. No network, no access to files
        outside a temporary working directory; each call starts fresh (no state is kept).

        Args:
            code: The Python source code to run.
        """
        return format_result(run_python(code, lim), lim)

    return make_tool(
        python,
        name="python",
        name_for_human="Python Interpreter",
        timeout=lim.wall_seconds + 10,
        needed_when=r"(?i)\bpython\b|代码|\bcode\b",
    )
