"""CPU speed of the embedded model: fp32 vs dynamic int8 vs bf16, side by side in one run.

Each variant runs in its own child process (so RSS and load time are its own) on the same
ReAct prompt the agent sends for the seed question (~300 tokens), with greedy decoding:

    python bench/bench_cpu.py [--threads 2] [--tokens 24] [--checkpoint DIR]

Prints load s, prefill tok/s, decode tok/s, peak RSS and the first 80 characters of each
output, then the ratios against fp32. On a shared machine run it when it is quiet and
compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VARIANTS = ("fp32", "int8", "bf16")
SEED_QUESTION = "张三的生日是10月吗？现在是2月，距离他生日还有几个月？"


def react_prompt_ids(model, tokenizer) -> list[int]:
    """The agent's first ReAct request for the seed question, encoded as the backend does."""
    from agent.react import ReactFormat
    from agent.settings import AgentSettings
    from llm.local import TransformersBackend
    from llm.types import ModelInfo
    from tools.builtin import default_registry

    tools = default_registry(enable_python=False).subset(["employee_db", "calculator"])
    fmt = ReactFormat(tools, [], AgentSettings(format="react"))
    request = fmt.request([{"role": "user", "content": SEED_QUESTION}])
    info = ModelInfo(name="bench", family="qwen2", backend="transformers")
    return TransformersBackend(model, tokenizer, info).encode(request)


def _rss_gb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in GB."""
    current = 0.0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return current, peak


def run_variant(variant: str, checkpoint: Path, threads: int, tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    started = time.perf_counter()
    dtype = torch.bfloat16 if variant == "bf16" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype).eval()
    if variant == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    load_s = time.perf_counter() - started

    ids = torch.tensor([react_prompt_ids(model, tokenizer)])
    greedy = {"do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.inference_mode():
        model(ids)  # warm-up at the real shape: first-call allocations are not speed
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=1, **greedy)  # prefill + one token
        prefill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **greedy)
        total_s = time.perf_counter() - t0
    new = out[0, ids.shape[1] :]
    decode_s = max(total_s - prefill_s, 1e-9)  # the same prefill, then tokens - 1 steps
    current, peak = _rss_gb()
    return {
        "variant": variant,
        "threads": threads,
        "prompt_tokens": int(ids.shape[1]),
        "new_tokens": int(new.numel()),
        "load_s": round(load_s, 2),
        "prefill_tok_s": round(ids.shape[1] / prefill_s, 1),
        "decode_tok_s": round((new.numel() - 1) / decode_s, 2),
        "rss_gb": round(current, 2),
        "peak_rss_gb": round(peak, 2),
        "text": tokenizer.decode(new, skip_special_tokens=True),
        "ids": new.tolist(),
    }


def cpu_features() -> str:
    """The CPU and the matrix extensions that decide bf16/int8 speed (AMX, AVX-512 BF16)."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni")
    return f"{model}; {' '.join(f for f in wanted if f in flags) or 'no AVX-512/AMX'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=24, help="decode this many tokens")
    parser.add_argument("--checkpoint", type=Path, help="HF dir (default: the embedded one)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs each")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = run_variant(args.child, args.checkpoint, args.threads, args.tokens)
        print("RESULT " + json.dumps(result, ensure_ascii=False))
        return 0

    checkpoint = args.checkpoint
    if checkpoint is None:
        from llm.embedded import ensure_checkpoint

        checkpoint = ensure_checkpoint(lambda f, m: print(f"  {m}", file=sys.stderr))
    variants = args.variants.split(",")
    best: dict[str, dict] = {}
    for round_no in range(args.rounds):  # alternate the order: a shared machine drifts
        order = variants if round_no % 2 == 0 else variants[::-1]
        for variant in order:
            cmd = [sys.executable, __file__, "--child", variant, "--checkpoint", str(checkpoint)]
            cmd += ["--threads", str(args.threads), "--tokens", str(args.tokens)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"{variant}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            result = json.loads(lines[-1].removeprefix("RESULT "))
            print(
                f"  round {round_no + 1} {variant}: {result['decode_tok_s']} tok/s", file=sys.stderr
            )
            if variant not in best:
                best[variant] = result
            else:  # best of the rounds for each figure
                kept = best[variant]
                for key in ("prefill_tok_s", "decode_tok_s"):
                    kept[key] = max(kept[key], result[key])
                kept["load_s"] = min(kept["load_s"], result["load_s"])
    results = [best[v] for v in variants if v in best]
    if not results:
        return 1
    print(
        f"\nEmbedded model on CPU, {args.threads} threads, "
        f"{results[0]['prompt_tokens']}-token ReAct prompt, {args.tokens} greedy tokens, "
        f"best of {args.rounds} rounds"
    )
    print(f"CPU: {cpu_features()}; load average {os.getloadavg()[0]:.1f}")
    header = f"{'variant':8} {'load s':>7} {'prefill t/s':>12} {'decode t/s':>11} {'RSS GB':>7}"
    print(header + f" {'peak GB':>8}  output (first 80 chars)")
    for r in results:
        text = r["text"][:80].replace("\n", "\\n")
        print(
            f"{r['variant']:8} {r['load_s']:7.1f} {r['prefill_tok_s']:12.1f} "
            f"{r['decode_tok_s']:11.2f} {r['rss_gb']:7.2f} {r['peak_rss_gb']:8.2f}  {text}"
        )
    base = next((r for r in results if r["variant"] == "fp32"), None)
    if base is not None:
        for r in results:
            if r is base:
                continue
            same = next(
                (i for i, (a, b) in enumerate(zip(r["ids"], base["ids"], strict=False)) if a != b),
                min(len(r["ids"]), len(base["ids"])),
            )
            print(
                f"{r['variant']}/fp32: load x{r['load_s'] / base['load_s']:.2f}, "
                f"prefill x{r['prefill_tok_s'] / base['prefill_tok_s']:.2f}, "
                f"decode x{r['decode_tok_s'] / base['decode_tok_s']:.2f}, "
                f"RSS x{r['rss_gb'] / base['rss_gb']:.2f}; "
                f"first {same}/{len(base['ids'])} tokens identical to fp32"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
