"""The python tool's warm worker: one Deno process running pyodide_runner.mjs (started by
sandbox_process.py), one call at a time, with the limits enforced from here.

The runner gives each call a fresh interpreter in a fresh Web Worker. From here: the wall
clock (the runner stops the call at the limit; if it does not answer a few seconds later the
whole process is killed), the memory limit (the process's resident memory is polled and the
process killed above it), the output cap (applied again to what comes back). After a kill
or a crash a new process starts in the background; a call that finds none waits for it.
"""

from __future__ import annotations

import atexit
import base64
import queue
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tools.builtin.sandbox_process import EOF, SandboxProcess, rss_bytes, worker_threads
from tools.builtin.wasm_runtime import (
    Runtime,
    SandboxUnavailable,
    cached_snapshot,
    drop_snapshot,
    find_runtime,
    save_snapshot,
)

STARTUP_TIMEOUT = 90.0  # a first start took 24 s on two overloaded cores; far more is broken
ACK_TIMEOUT = 10.0
GRACE_SECONDS = 5.0
RUNTIME_MEMORY_MB = 512  # Deno, the snapshot and the worker's own code, above the user's heap
POLL_SECONDS = 0.02

Outcome = Literal["ok", "timeout", "memory", "crash"]


@dataclass(frozen=True)
class WorkerResult:
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    exit_code: int | None
    outcome: Outcome
    seconds: float
    detail: str = ""


_LIVE: weakref.WeakSet[PyodideWorker] = weakref.WeakSet()


@atexit.register
def close_all() -> None:
    """Kill every sandbox process (at exit; the parent's death also ends them: EOF)."""
    for worker in list(_LIVE):
        worker.close()


class PyodideWorker:
    """A warm sandbox process serving one call at a time; restarted after a kill or crash."""

    def __init__(
        self,
        memory_mb: int = 1024,
        *,
        grace_seconds: float = GRACE_SECONDS,
        ack_timeout: float = ACK_TIMEOUT,
        find: Callable[[], Runtime] = find_runtime,
    ) -> None:
        self.memory_mb = memory_mb
        self.grace_seconds = grace_seconds
        self.ack_timeout = ack_timeout
        self._find = find
        self._call_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._proc: SandboxProcess | None = None
        self._starting: threading.Thread | None = None
        self._start_error: str | None = None
        self._closed = False
        _LIVE.add(self)

    @property
    def pid(self) -> int | None:
        """The Deno process's pid while one is running (tests check that nothing else is)."""
        proc = self._proc
        return proc.pid if proc is not None else None

    def start(self) -> None:
        """Start the process in the background unless it runs or is starting."""
        with self._state_lock:
            if self._closed or self._proc is not None or self._starting is not None:
                return
            self._starting = threading.Thread(target=self._start_now, daemon=True)
            self._starting.start()

    def _start_now(self) -> None:
        proc = None
        error = None
        try:
            runtime = self._find()
            proc = self._launch(runtime, cached_snapshot(runtime.pyodide_dir))
        except SandboxUnavailable as e:
            error = str(e)
        except OSError as e:
            error = f"the sandbox could not be started: {e}"
        with self._state_lock:
            if self._closed and proc is not None:
                proc.kill()
                proc = None
            self._proc, self._start_error, self._starting = proc, error, None

    def _launch(self, runtime: Runtime, snapshot: str | None) -> SandboxProcess:
        """Start a process and wait for "ready"; a cached snapshot that fails is dropped and
        the start retried without it."""
        proc = SandboxProcess(runtime, self.memory_mb, snapshot)
        msg = self._next(proc, time.monotonic() + STARTUP_TIMEOUT)
        if isinstance(msg, dict) and msg.get("ready"):
            if isinstance(msg.get("snapshot"), str):
                save_snapshot(runtime.pyodide_dir, base64.b64decode(msg["snapshot"]))
            proc.baseline_rss = rss_bytes(proc.pid) or 0
            return proc
        proc.kill()
        if snapshot is not None:
            drop_snapshot(runtime.pyodide_dir)
            return self._launch(runtime, None)
        why = msg.get("fatal") if isinstance(msg, dict) else None
        raise SandboxUnavailable(
            f"the sandbox did not start: {why or proc.stderr_text() or 'no answer'}"
        )

    def _ready_process(self) -> SandboxProcess:
        self.start()
        starting = self._starting
        if starting is not None:
            starting.join(STARTUP_TIMEOUT + 30)
        with self._state_lock:
            if self._proc is None:
                raise SandboxUnavailable(self._start_error or "the sandbox is closed")
            return self._proc

    @staticmethod
    def _next(proc: SandboxProcess, deadline: float) -> Any:
        try:
            return proc.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def _discard(self, proc: SandboxProcess) -> None:
        """Kill the process and start its replacement in the background."""
        with self._state_lock:
            if self._proc is proc:
                self._proc = None
        proc.kill()
        self.start()

    def run(self, code: str, wall_seconds: float, max_output: int) -> WorkerResult:
        """Run `code` in a fresh interpreter; SandboxUnavailable if there is no sandbox."""
        with self._call_lock:
            for attempt in (1, 2):
                proc = self._ready_process()
                if not self._clean(proc):
                    self._discard(proc)
                    proc = self._ready_process()
                proc.idle.clear()
                request_id = secrets.token_hex(16)
                start = time.monotonic()
                try:
                    proc.send(
                        {
                            "id": request_id,
                            "code": code,
                            "wall_ms": int(wall_seconds * 1000),
                            "max_output": int(max_output),
                        }
                    )
                except OSError:
                    msg = None
                else:
                    msg = self._next(proc, start + self.ack_timeout)
                if isinstance(msg, dict) and msg.get("id") == request_id and msg.get("ack"):
                    return self._collect(proc, request_id, start, wall_seconds, max_output)
                # The request never arrived (the process died, or an earlier call's
                # leftover read took it): the code did not run, so retrying is safe.
                self._discard(proc)
                if attempt == 2:
                    raise SandboxUnavailable("the sandbox stopped answering; it is restarting")
        raise AssertionError("unreachable")

    def _collect(
        self, proc: SandboxProcess, request_id: str, start: float, wall: float, max_output: int
    ) -> WorkerResult:
        """Wait for "started" (the interpreter may still be loading), then for the result;
        kill the process on a crash, the memory limit or the hard deadline."""
        deadline = start + STARTUP_TIMEOUT
        started = False
        rss_limit = proc.baseline_rss + (self.memory_mb + RUNTIME_MEMORY_MB) * 1024 * 1024
        while True:
            msg = self._next(proc, min(deadline, time.monotonic() + POLL_SECONDS))
            now = time.monotonic()
            if msg is EOF:
                code = proc.popen.wait()
                self._discard(proc)
                return _failed("crash", now - start, f"exit status {code}")
            if isinstance(msg, dict) and msg.get("id") == request_id:
                if msg.get("started") and not started:
                    started, start = True, now
                    deadline = now + wall + self.grace_seconds
                elif not msg.get("ack") and not msg.get("started"):
                    result = _result(msg, now - start, max_output)
                    if not started or result.outcome == "timeout":
                        # No interpreter; or a worker stuck in synchronous code, which
                        # Deno's terminate() does not stop: replace the whole process.
                        self._discard(proc)
                    else:
                        threading.Thread(target=self._watch, args=(proc,), daemon=True).start()
                    return result
            rss = rss_bytes(proc.pid)
            if started and proc.baseline_rss and rss is not None and rss > rss_limit:
                self._discard(proc)
                return _failed("memory", now - start, f"{rss >> 20} MB resident")
            if now >= deadline:
                self._discard(proc)
                if not started:
                    raise SandboxUnavailable("the interpreter did not load; restarting")
                return _failed("timeout", now - start, "no answer; the process was killed")

    @staticmethod
    def _clean(proc: SandboxProcess) -> bool:
        """Whether the process is idle with nothing left of earlier calls: the next
        interpreter loaded and is its only worker thread. Deno's terminate() does not stop a
        worker busy in synchronous code, so this is checked after every call, and no request
        is sent to a process that fails it."""
        if not proc.idle.wait(STARTUP_TIMEOUT) or not proc.idle_ok:
            return False
        count = worker_threads(proc.pid)
        return count is None or count == 1

    def _watch(self, proc: SandboxProcess) -> None:
        """After a call: once the next interpreter is ready, replace the process if anything
        of the call is still running (a call in progress checks again before it starts)."""
        if not proc.idle.wait(STARTUP_TIMEOUT) or not self._call_lock.acquire(blocking=False):
            return
        try:
            if self._proc is proc and not self._clean(proc):
                self._discard(proc)
        finally:
            self._call_lock.release()

    def close(self) -> None:
        """Kill the process for good (the app's exit, or a test)."""
        with self._state_lock:
            self._closed = True
            proc, self._proc = self._proc, None
            starting = self._starting
        if proc is not None:
            proc.kill()
        if starting is not None:
            starting.join(STARTUP_TIMEOUT + 30)


def _failed(outcome: Outcome, seconds: float, detail: str) -> WorkerResult:
    return WorkerResult("", "", 0, 0, None, outcome, seconds, detail)


def _result(msg: dict[str, Any], seconds: float, max_output: int) -> WorkerResult:
    def text(key: str) -> str:
        value = msg.get(key)
        return value[: max_output + 1] if isinstance(value, str) else ""

    def count(key: str, fallback: str) -> int:
        value = msg.get(key)
        return value if isinstance(value, int) else len(fallback.encode())

    stdout, stderr = text("stdout"), text("stderr")
    error = msg.get("error")
    if msg.get("timed_out"):
        outcome: Outcome = "timeout"
    elif error:
        outcome = "crash"
    else:
        outcome = "ok"
    exit_code = msg.get("exit")
    return WorkerResult(
        stdout=stdout,
        stderr=stderr,
        stdout_bytes=count("stdout_bytes", stdout),
        stderr_bytes=count("stderr_bytes", stderr),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        outcome=outcome,
        seconds=seconds,
        detail=str(error)[:2000] if error else "",
    )
