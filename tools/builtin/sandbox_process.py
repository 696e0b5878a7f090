"""One started sandbox process and the signed pipe to it.

The command line gives Deno no permission but reading the verified Pyodide folder: no host
files, network, environment, subprocesses, FFI, system information or remote imports, and
no prompt; its environment is empty apart from a private temporary DENO_DIR. User code can
write to the process's stdout and read its stdin (Deno needs no permission for either), so
every message carries an HMAC under a key sent before any user code exists, and lines that
do not verify are dropped (see pyodide_runner.mjs for the other side).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from tools.builtin.wasm_runtime import Runtime

RUNNER = Path(__file__).with_name("pyodide_runner.mjs")
EOF = object()  # put on `messages` when the process's stdout closes


def deno_command(runtime: Runtime, memory_mb: int) -> list[str]:
    """Everything denied but reading the Pyodide folder; no config, lock file or network."""
    return [
        str(runtime.deno),
        "run",
        "--no-prompt",
        "--no-config",
        "--no-lock",
        "--no-remote",
        "--no-npm",
        f"--allow-read={runtime.pyodide_dir}",
        "--deny-write",
        "--deny-net",
        "--deny-env",
        "--deny-run",
        "--deny-ffi",
        "--deny-sys",
        "--deny-import",
        f"--v8-flags=--max-old-space-size={max(64, memory_mb)}",
        str(RUNNER),
        str(runtime.pyodide_dir),
    ]


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def worker_threads(pid: int) -> int | None:
    """How many Web Worker threads (Deno names them worker-N) the process has; None without
    /proc. A worker that spins without returning to its event loop survives the termination
    of the worker that started it, so the caller counts them after every call."""
    try:
        names = [
            (Path(f"/proc/{pid}/task") / tid / "comm").read_text()
            for tid in os.listdir(f"/proc/{pid}/task")
        ]
    except OSError:
        return None
    return sum(name.startswith("worker-") for name in names)


def verified(line: bytes, key: bytes) -> dict[str, Any] | None:
    """The message in a "<hex HMAC-SHA256> <JSON>" line, or None if the MAC does not match."""
    mac, _, body = line.rstrip(b"\n").partition(b" ")
    good = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(mac, good):
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class SandboxProcess:
    """A started runner: its pipes, its key and the verified messages it sent."""

    def __init__(self, runtime: Runtime, memory_mb: int, snapshot: str | None) -> None:
        self.key = secrets.token_bytes(32)
        self.messages: queue.Queue[Any] = queue.Queue()
        self.stderr_tail: collections.deque[bytes] = collections.deque(maxlen=40)
        self.deno_dir = tempfile.mkdtemp(prefix="qwen-demo-deno-")
        env = {"DENO_DIR": self.deno_dir, "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
        if sys.platform == "win32":  # Windows cannot start a process without these
            env.update({k: os.environ[k] for k in ("SYSTEMROOT", "TEMP") if k in os.environ})
        try:
            self.popen = subprocess.Popen(
                deno_command(runtime, memory_mb),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=runtime.pyodide_dir,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError:
            shutil.rmtree(self.deno_dir, ignore_errors=True)
            raise
        for target in (self._read_stdout, self._read_stderr):
            threading.Thread(target=target, daemon=True).start()
        self.baseline_rss = 0
        self.idle = threading.Event()  # set when the runner reports on the next interpreter
        self.idle_ok = False  # ... and whether that interpreter loaded
        try:
            self.send_raw(
                {
                    "key": self.key.hex(),
                    "memory_bytes": memory_mb * 1024 * 1024,
                    "snapshot": snapshot,
                    "want_snapshot": snapshot is None,
                }
            )
        except OSError:
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send_raw(self, message: dict[str, Any]) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(message).encode() + b"\n")
        self.popen.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        mac = hmac.new(self.key, body, hashlib.sha256).hexdigest().encode()
        assert self.popen.stdin is not None
        self.popen.stdin.write(mac + b" " + body + b"\n")
        self.popen.stdin.flush()

    def _read_stdout(self) -> None:
        """Keep only lines that carry a valid MAC; anything else (user code can write to
        this pipe) is dropped. Over-long lines are skipped without being kept."""
        assert self.popen.stdout is not None
        stream = self.popen.stdout
        limit = 64 << 20  # the ready message may carry the 31 MB snapshot (base64)
        while True:
            line = stream.readline(limit)
            if not line:
                break
            if not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):
                    line = stream.readline(limit)
                continue
            message = verified(line, self.key)
            if message is None:
                continue
            if message.get("ready") or message.get("idle"):
                self.idle_ok = bool(message.get("ready") or message.get("ok"))
                self.idle.set()
            if not message.get("idle"):
                self.messages.put(message)
        stream.close()
        self.messages.put(EOF)

    def _read_stderr(self) -> None:
        assert self.popen.stderr is not None
        for line in iter(lambda: self.popen.stderr.readline(4096), b""):  # type: ignore[union-attr]
            self.stderr_tail.append(line)
        self.popen.stderr.close()

    def stderr_text(self) -> str:
        return b"".join(self.stderr_tail).decode("utf-8", "replace").strip()[-2000:]

    def kill(self) -> None:
        try:
            if hasattr(os, "killpg"):
                os.killpg(self.popen.pid, signal.SIGKILL)
            else:  # pragma: no cover - Windows
                self.popen.kill()
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()
        try:
            self.popen.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass  # the readers close stdout and stderr when they reach end of file
        shutil.rmtree(self.deno_dir, ignore_errors=True)
