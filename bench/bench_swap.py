"""Process memory around a model swap: does swapping (and unloading) leave anything behind?

Run: python -m bench.bench_swap [--quick] [--threads 1]
     python -m bench.bench_swap --model-a qwen2.5-coder-0.5b --model-b DIR

Each measurement runs in a fresh Python subprocess, so nothing loaded before skews it. In the
swap process: RSS after the imports but before any load, after a warm-up load + unload of the
64-wide tiny model (transformers imports its model and generation code lazily at the first
load: that, not a leak, is most of the first load's RSS; "before first load"), after loading
model A and chatting twice (so A holds a KV cache), after ModelManager.load(B) and chatting
twice, and after ModelManager.unload(). A second process loads only B and chats twice ("B
alone"), which is what a swap should cost. With CUDA, torch.cuda.memory_allocated is reported
the same way. Default models: two random Qwen2 of different widths built into a temp dir (the
tiny ones with --quick).

Target (issue 8): memory after the swap, not counting B's own footprint (B alone - its before
first load), ÷ memory before the first load <= 1.1; likewise after the swap ÷ B alone and
after unload ÷ before first load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET = 1.1
MB = 2**20


def _sample(label: str) -> dict[str, Any]:
    import psutil

    torch = sys.modules.get("torch")
    cuda = None
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()
        cuda = torch.cuda.memory_allocated()
    return {"label": label, "rss": psutil.Process().memory_info().rss, "cuda": cuda}


def child(
    sources: list[str], device: str, threads: int, unload: bool, warmup: str | None
) -> list[dict[str, Any]]:
    """Load each source in turn through one ModelManager, chatting twice after each load."""
    import torch

    import llm.local  # noqa: F401 - the imports a load needs
    from llm.manager import ModelManager, release_memory
    from llm.types import GenerationConfig, GenerationRequest, drain

    torch.set_num_threads(threads)
    mgr = ModelManager(device=device)
    release_memory()
    samples = [_sample("before any load")]
    request = GenerationRequest(
        [{"role": "user", "content": "Who is Zhang San? Answer in one sentence."}],
        config=GenerationConfig(max_new_tokens=16, temperature=0),
    )

    def load_and_chat(source: str) -> None:
        mgr.load(source)
        with mgr.generating() as backend:
            drain(backend.stream(request))
            drain(backend.stream(request))  # the second one reuses and keeps a KV cache

    if warmup:  # transformers imports model and generation code lazily, at the first load
        load_and_chat(warmup)
        mgr.unload()
        samples.append(_sample("before first load (warm)"))
    for source in sources:
        load_and_chat(source)
        samples.append(_sample(f"loaded {Path(source).name or source}"))
    if unload:
        mgr.unload()
        samples.append(_sample("after unload"))
    return samples


def run_child(sources: list[str], args: argparse.Namespace, unload: bool) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "bench.bench_swap", "--child", *sources]
    cmd += ["--device", args.device, "--threads", str(args.threads)]
    if unload:
        cmd.append("--unload")
    if args.warmup_model:
        cmd += ["--warmup", args.warmup_model]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"the measuring process failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def ratio_line(label: str, top: float, bottom: float, target: float | None = TARGET) -> None:
    ratio = top / bottom
    tail = ""
    if target is not None:
        tail = f"  target <= {target}  {'PASS' if ratio <= target else 'MISS'}"
    print(f"{label}: {top / MB:.1f} MB / {bottom / MB:.1f} MB  ratio {ratio:.3f}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-a", help="first model source (default: random Qwen2, 512 wide)")
    parser.add_argument("--model-b", help="second model source (default: random, 768 wide)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the tiny models (smoke test)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--unload", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        samples = child(args.child, args.device, args.threads, args.unload, args.warmup)
        print("RESULT " + json.dumps(samples))
        return 0

    from bench.bench_kv import tiny_source

    with tempfile.TemporaryDirectory() as tmp:
        widths = (0, 0) if args.quick else (512, 768)
        a = args.model_a or tiny_source(Path(tmp) / "a", widths[0], 2 if args.quick else 4)
        b = args.model_b or tiny_source(Path(tmp) / "b", widths[1], 2 if args.quick else 4)
        args.warmup_model = tiny_source(Path(tmp) / "warmup")
        swap = run_child([a, b], args, unload=True)
        alone = run_child([b], args, unload=False)
    print(f"models: A {a if args.model_a else 'random'}, B {b if args.model_b else 'random'}")
    print("  (warm: after a 64-wide warm-up model was loaded, used and unloaded)")
    for s in [*swap, *({**x, "label": "B alone: " + x["label"]} for x in alone)]:
        cuda = f"  cuda {s['cuda'] / MB:8.1f} MB" if s["cuda"] is not None else ""
        print(f"  {s['label']:<36} rss {s['rss'] / MB:8.1f} MB{cuda}")
    cold, base, _, swapped, unloaded = (s["rss"] for s in swap)
    _, b_base, b_loaded = (s["rss"] for s in alone)
    b_own = b_loaded - b_base
    ratio_line("after swap, less B's own footprint / before first load", swapped - b_own, base)
    ratio_line("after swap / B alone", swapped, b_loaded)
    ratio_line("after unload / before first load", unloaded, base)
    ratio_line("after swap / before any load (raw, includes B)", swapped, cold, target=None)
    if swap[0]["cuda"] is not None:
        gpu = [s["cuda"] for s in swap]
        ratio_line("cuda: after swap / B alone", gpu[3], max(alone[2]["cuda"], 1))
        print(f"cuda: after unload {gpu[4] / MB:.1f} MB (before first load {gpu[1] / MB:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
