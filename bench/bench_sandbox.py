"""The python tool's sandbox: cold start, warm call latency, CPU per call, resident memory.

    python bench/bench_sandbox.py [--calls 8] [--pause 3]

Runs in one process, in this order: a cold start without the cached snapshot (what the very
first start pays: Pyodide boots and is snapshotted), a cold start with it (every later start,
and every restart after a kill), warm calls that find the next interpreter ready (a pause
between calls, as when a model writes between tool calls), and back-to-back calls (each waits
for the next fresh interpreter). CPU is the Deno process's user+system time per call, from
/proc. On a shared machine compare within one run and give the load average with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.builtin.pyodide_worker import PyodideWorker  # noqa: E402
from tools.builtin.sandbox_process import rss_bytes  # noqa: E402
from tools.builtin.wasm_runtime import drop_snapshot, find_runtime  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_start() -> tuple[PyodideWorker, float]:
    worker = PyodideWorker()
    start = time.perf_counter()
    worker.run("1", 10, 1000)
    return worker, time.perf_counter() - start


def calls(worker: PyodideWorker, n: int, pause: float | None) -> tuple[list[float], list[float]]:
    """n calls; with `pause`, sleep before each and wait after it for the next interpreter
    (so its CPU is counted); without, one right after the other."""
    wall, cpu = [], []
    for _ in range(n):
        if pause is not None:
            time.sleep(pause)
        pid = worker.pid
        assert pid is not None
        before = cpu_seconds(pid)
        start = time.perf_counter()
        r = worker.run("sum(range(1000))", 10, 1000)
        wall.append(time.perf_counter() - start)
        assert r.stdout.strip() == "499500", r
        if pause is not None:
            time.sleep(pause)
            cpu.append(cpu_seconds(pid) - before)
    return wall, cpu


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--pause", type=float, default=3.0)
    args = ap.parse_args()
    runtime = find_runtime()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    drop_snapshot(runtime.pyodide_dir)
    worker, first = cold_start()
    worker.close()
    print(f"cold start, no snapshot (first start ever): {first:.1f} s")
    worker, cold = cold_start()
    print(f"cold start from the cached snapshot: {cold:.1f} s")
    print(f"resident memory, idle with one interpreter ready: {rss_bytes(worker.pid) >> 20} MB")
    wall, cpu = calls(worker, args.calls, args.pause)
    print(
        f"warm call (interpreter ready): {ms(wall)}; CPU per call incl. the next "
        f"interpreter: {ms(cpu)}"
    )
    wall, _ = calls(worker, args.calls, None)
    print(f"back-to-back call (waits for the next interpreter): {ms(wall)}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    worker.close()


if __name__ == "__main__":
    main()
