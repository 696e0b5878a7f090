"""The python tool: model-written code runs in Pyodide (CPython compiled to WebAssembly)
inside a Deno process that may read nothing but the Pyodide files.

The boundary is the WebAssembly runtime and Deno's permissions, not a check inside Python:
the code has no host filesystem, network, environment, processes or signals to reach, so
there is nothing for it to get around. How the process is run and limited:
tools/builtin/pyodide_worker.py; where Deno and Pyodide come from: wasm_runtime.py; the
security model: docs/tools.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tools.builtin.pyodide_worker import (
    GRACE_SECONDS,
    STARTUP_TIMEOUT,
    PyodideWorker,
    WorkerResult,
)
from tools.builtin.wasm_runtime import SandboxUnavailable, find_runtime
from tools.registry import Tool, make_tool


@dataclass(frozen=True)
class PythonLimits:
    """Per-call limits, all enforced from outside the sandbox."""

    wall_seconds: float = 15.0
    memory_mb: int = 1024  # the interpreter's heap; the Deno process is killed well above it
    max_output_bytes: int = 16_000  # kept of each of stdout and stderr
    max_code_chars: int = 100_000


@dataclass(frozen=True)
class SandboxResult:
    stdout: str
    stderr: str
    exit_code: int | None
    seconds: float
    timed_out: bool = False
    memory_exceeded: bool = False
    crashed: str | None = None  # why the sandbox process or interpreter died
    truncated: bool = False
    unavailable: str | None = None  # the sandbox could not run anything (code not run)


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


def sandbox_problem(download: bool = True) -> str | None:
    """None when the sandbox can run (Deno and Pyodide present and verified), else why not.
    With `download`, a missing Pyodide is fetched into the cache first (6.5 MB)."""
    try:
        find_runtime(download=download)
    except SandboxUnavailable as e:
        return str(e)
    return None


def _cut(text: str, total: int, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8", errors="replace")
    if total <= limit and len(data) <= limit:
        return text, False
    kept = data[:limit].decode("utf-8", errors="replace")
    return kept + f"\n...[output truncated: {max(total, len(data)) - limit} more bytes]", True


def to_result(r: WorkerResult, limits: PythonLimits) -> SandboxResult:
    out, cut_out = _cut(r.stdout, r.stdout_bytes, limits.max_output_bytes)
    err, cut_err = _cut(r.stderr, r.stderr_bytes, limits.max_output_bytes)
    return SandboxResult(
        stdout=out,
        stderr=err,
        exit_code=r.exit_code if r.outcome == "ok" else None,
        seconds=r.seconds,
        timed_out=r.outcome == "timeout",
        memory_exceeded=r.outcome == "memory",
        crashed=(r.detail or "crashed") if r.outcome == "crash" else None,
        truncated=cut_out or cut_err,
    )


class PythonSandbox:
    """The tool's warm worker plus its limits. One call at a time; each call is fresh."""

    def __init__(self, limits: PythonLimits | None = None, worker: PyodideWorker | None = None):
        self.limits = limits or PythonLimits()
        self.worker = worker or PyodideWorker(self.limits.memory_mb)

    def warm(self) -> None:
        """Start the worker in the background so the first call skips the cold start."""
        self.worker.start()

    def run(self, code: str) -> SandboxResult:
        lim = self.limits
        if len(code) > lim.max_code_chars:
            return SandboxResult(
                "", f"code is too long (limit {lim.max_code_chars} characters)", None, 0.0
            )
        try:
            r = self.worker.run(code, lim.wall_seconds, lim.max_output_bytes)
        except SandboxUnavailable as e:
            return SandboxResult("", "", None, 0.0, unavailable=str(e))
        return to_result(r, lim)

    def python(self, code: str) -> str:
        """Run Python 3 code and return what it printed. Python standard library only, runs
        in a WebAssembly sandbox: no files, no network. Like a notebook cell, the value of the
        last expression is shown too. Each call starts fresh: nothing is kept between calls.

        Args:
            code: The Python source code to run.
        """
        return format_result(self.run(code), self.limits)

    def close(self) -> None:
        self.worker.close()


def format_result(r: SandboxResult, limits: PythonLimits) -> str:
    """The Observation text: output, then errors, then why the run stopped if it was cut."""
    if r.unavailable:
        return f"Error: the Python sandbox is unavailable, so the code was not run: {r.unavailable}"
    parts = [r.stdout.rstrip("\n")] if r.stdout.strip() else []
    if r.stderr.strip():
        parts.append(r.stderr.rstrip("\n"))
    if r.timed_out:
        parts.append(f"Error: the code ran longer than {limits.wall_seconds:g} s and was stopped.")
    elif r.memory_exceeded:
        parts.append(
            f"Error: the code was stopped: it used more than the memory limit "
            f"({limits.memory_mb} MB for Python)."
        )
    elif r.crashed:
        parts.append(
            "Error: the sandbox stopped while running the code (most often the memory "
            f"limit: {r.crashed}); it is restarting."
        )
    elif r.exit_code not in (0, None) and not r.stderr.strip():
        parts.append(f"Error: the code exited with status {r.exit_code}.")
    if not parts:
        return "(the code ran successfully and printed nothing)"
    return "\n".join(parts)


def make_python_tool(
    limits: PythonLimits | None = None, *, sandbox: PythonSandbox | None = None, warm: bool = False
) -> Tool:
    """The python tool; `tool.func.__self__` is its PythonSandbox. Its registry timeout
    covers a cold start plus the wall limit. `warm` starts the sandbox now, in the background."""
    box = sandbox or PythonSandbox(limits)
    if warm:
        box.warm()
    return make_tool(
        box.python,
        name="python",
        name_for_human="Python Interpreter",
        timeout=box.limits.wall_seconds + STARTUP_TIMEOUT + GRACE_SECONDS + 10,
        needed_when=r"(?i)\bpython\b|代码|\bcode\b",
    )
