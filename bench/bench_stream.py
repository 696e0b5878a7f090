"""Streaming service overhead vs raw model.generate, and tokens generated past a stop word.

Run: python -m bench.bench_stream [--model DIR] [--tokens 200] [--rounds 5] [--threads 1]
     python -m bench.bench_stream --hidden 1024 --layers 8   (a bigger random Qwen2)

Both paths run side by side in one process on the same model, prompt and generation config
(greedy, no KV prefix reuse), alternating rounds; medians are compared. Targets: service / raw
tokens/s >= 0.97, tokens past a stop word <= 1. Also: a ReAct second step with and without
reusing the first step's KV cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROMPT = "Who is Zhang San, and how many months until his birthday? Answer step by step."
STOP_TEXT = 'Thought: use the calculator\nAction: calculator\nAction Input: {"n": 1}\n'


def throughput(backend, tokens: int, rounds: int) -> tuple[float, float, float, int]:
    """Median tokens/s of service stream and raw generate on the same config, and the median
    of the per-round ratios (rounds run back to back, so load changes affect both alike)."""
    import torch

    from llm.types import GenerationConfig, GenerationRequest, drain

    config = GenerationConfig(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)
    request = GenerationRequest(messages=[{"role": "user", "content": PROMPT}], config=config)
    ids = torch.tensor([backend.encode(request)], device=backend.model.device)
    gen_config = backend._generation_config(request)
    service, raw = [], []
    count = 0
    backend.prefix_cache = False  # same work as raw generate: a full prefill each round
    drain(backend.stream(request))  # warm-up
    for _ in range(rounds):
        end = drain(backend.stream(request))
        service.append(end.completion_tokens / end.seconds)
        start = time.perf_counter()
        with torch.inference_mode():
            out = backend.model.generate(
                ids, attention_mask=torch.ones_like(ids), generation_config=gen_config
            )
        n = out.shape[1] - ids.shape[1]
        raw.append(n / (time.perf_counter() - start))
        if n != end.completion_tokens:
            raise SystemExit(f"token counts differ: service {end.completion_tokens}, raw {n}")
        count = n
    paired = statistics.median(s / r for s, r in zip(service, raw, strict=True))
    return statistics.median(service), statistics.median(raw), paired, count


def prefix_reuse(backend, rounds: int) -> tuple[float, float, int, int]:
    """Median seconds of a ReAct second step (prompt + Observation) with and without reusing
    the first step's KV cache; returns (with, without, cached tokens, prompt tokens)."""
    from llm.types import GenerationConfig, GenerationRequest, drain

    config = GenerationConfig(max_new_tokens=8, temperature=0)
    history = "Question: " + PROMPT + "\n" + STOP_TEXT * 8
    first = GenerationRequest(
        [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": history}],
        continue_final=True,
        config=config,
    )
    second = GenerationRequest(
        [
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": history + "Observation: 42\nThought:"},
        ],
        continue_final=True,
        config=config,
    )
    timings: dict[bool, list[float]] = {True: [], False: []}
    cached = prompt = 0
    for _ in range(rounds):
        for reuse in (True, False):
            backend.prefix_cache = reuse
            drain(backend.stream(first))
            end = drain(backend.stream(second))
            timings[reuse].append(end.seconds)
            if reuse:
                cached, prompt = end.cached_tokens, end.prompt_tokens
    backend.prefix_cache = True
    return statistics.median(timings[True]), statistics.median(timings[False]), cached, prompt


def overshoot(backend, per_char: bool) -> int:
    """Tokens generated after the one that completed "Observation:" (forced output)."""
    from llm.types import GenerationConfig, GenerationRequest, drain
    from tests.forcing import ForceTokens, char_ids, forced_backend

    tok = backend.tokenizer
    text = STOP_TEXT + "Observation: 42, and the model would go on and on here"
    ids = char_ids(tok, text) if per_char else tok.encode(text, add_special_tokens=False)
    stop_at = next(i + 1 for i in range(len(ids)) if "Observation:" in tok.decode(ids[: i + 1]))
    forced = forced_backend(
        backend, lambda request, prompt_ids: [ForceTokens(ids, len(prompt_ids))]
    )
    request = GenerationRequest(
        messages=[{"role": "user", "content": PROMPT}],
        stop=["Observation:"],
        config=GenerationConfig(max_new_tokens=len(ids) + 20, temperature=0),
    )
    end = drain(forced.stream(request))
    if end.text != STOP_TEXT or end.stop_word != "Observation:":
        raise SystemExit(f"stop word not honoured: {end}")
    return end.completion_tokens - stop_at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory or hub id (default: a tiny Qwen2)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--hidden", type=int, default=0, help="random model width instead of the tiny 64"
    )
    parser.add_argument("--layers", type=int, default=2, help="random model depth")
    args = parser.parse_args(argv)

    import torch

    from llm.loader import load_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model
        if source is None:
            from tests.tiny_models import build_tiny_qwen2

            sizes = {}
            if args.hidden:  # a bigger random model: per-token time closer to real models
                sizes = dict(
                    hidden_size=args.hidden,
                    intermediate_size=args.hidden * 3,
                    num_attention_heads=max(args.hidden // 64, 1),
                    num_key_value_heads=max(args.hidden // 256, 1),
                )
            sizes["num_hidden_layers"] = args.layers
            source = str(build_tiny_qwen2(Path(tmp) / "tiny", **sizes))
        backend = load_model(source, device=args.device)
        print(f"model: {backend.info.name} on {backend.info.device}, {args.threads} thread(s)")
        service, raw, paired, count = throughput(backend, args.tokens, args.rounds)
        print(f"raw model.generate : {raw:8.1f} tok/s ({count} tokens, median of {args.rounds})")
        print(f"service stream     : {service:8.1f} tok/s")
        print(
            f"ratio service/raw  : {service / raw:.3f} of medians, {paired:.3f} median of"
            f" per-round ratios   (target >= 0.97)"
        )
        with_s, without_s, cached, prompt = prefix_reuse(backend, args.rounds)
        print(
            f"ReAct step 2 with KV prefix reuse: {with_s * 1000:.1f} ms vs {without_s * 1000:.1f}"
            f" ms without ({cached}/{prompt} prompt tokens cached), speed-up "
            f"{without_s / with_s:.2f}x"
        )
        for per_char in (True, False):
            past = overshoot(backend, per_char)
            how = "one token per character" if per_char else "natural tokenisation"
            print(f"tokens past stop word ({how}): {past}   (target <= 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
