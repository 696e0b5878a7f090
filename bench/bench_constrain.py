"""Per-token cost of constrained tool calls (llguidance) against the same decoding unconstrained.

Run: python -m bench.bench_constrain [--model DIR] [--rounds 5] [--threads 1]
     python -m bench.bench_constrain --hidden 1024 --layers 8   (a bigger random Qwen2)

Both runs decode the same tokens: a ReAct reply with three tool calls (every token after
"Action:" is under the grammar) and a plain answer (no trigger: only the trigger watch
runs), forced token by token. The forced ids are first recorded from a constrained run that
merely prefers the reply, so they are exactly tokens the grammar allows. Decode cost is
measured from the first streamed text to the end (prefill excluded) as the process's CPU
time, which other jobs on a shared machine barely move (wall time is printed beside it);
rounds alternate on/off and the median of the per-round ratios is reported. Target:
constrained / free <= 1.10 of CPU time per token.
Also: the one-time costs (llguidance's tokenizer, compiling the constraint, the first matcher).
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

TARGET = 1.10
QUESTION = "How old is Zhang San, what time is it in Tokyo, and what is 1234 * 5678?"
CALLS = (
    "Thought: I need three tools.\n"
    'Action: employee_db\nAction Input: {"name": "Zhang San"}\n'
    'Action: clock\nAction Input: {"timezone": "Asia/Tokyo"}\n'
    'Action: calculator\nAction Input: {"expression": "1234 * 5678 + (98765 - 4321) / 7"}\n'
    "Observation:"
)
ANSWER = (
    "Thought: I now know the final answer\nFinal Answer: Zhang San is 35 years old, it is "
    "three in the afternoon in Tokyo, and the product is 7006652; nothing else was needed."
)


def _request(constraint):
    from llm.types import GenerationConfig, GenerationRequest

    config = GenerationConfig(max_new_tokens=200, temperature=0, repetition_penalty=1.0)
    messages = [{"role": "user", "content": QUESTION}]
    return GenerationRequest(messages, stop=["Observation:"], config=config, constraint=constraint)


def _constraint():
    from agent.aids.constrain import call_schema
    from llm.constrain import react_constraint
    from tools.builtin import default_registry

    return react_constraint([(t.name, call_schema(t)) for t in default_registry()])


def allowed_ids(backend, reply: str, constraint) -> list[int]:
    """The ids a constrained run writes when it prefers `reply` (ASCII, line by line)."""
    from llm.types import drain
    from tests.forcing import forced_backend
    from tests.test_constrain_support import PreferredReplies

    preferred = forced_backend(backend, PreferredReplies(backend.tokenizer, [reply]))
    preferred.prefix_cache = False
    end = drain(preferred.stream(_request(constraint)))
    if not reply.startswith(end.text.rstrip("\n")[:40]):
        raise SystemExit(f"the preferred reply did not come out: {end.text!r}")
    prompt = len(backend.encode(_request(constraint)))
    return preferred.last_ids[prompt:]


def decode_cost(backend, ids: list[int], constraint) -> tuple[float, float, int, bool]:
    """CPU and wall seconds from the first streamed text to the end, tokens decoded after
    the first, and whether a structure was constrained."""
    from llm.types import GenerationEnd, TextDelta
    from tests.forcing import ForceTokens, forced_backend

    forced = forced_backend(
        backend, lambda request, prompt_ids: [ForceTokens(ids, len(prompt_ids))]
    )
    forced.prefix_cache = False
    first: tuple[float, float] | None = None
    end = None
    for event in forced.stream(_request(constraint)):
        if isinstance(event, TextDelta) and first is None:
            first = (time.process_time(), time.perf_counter())
        elif isinstance(event, GenerationEnd):
            end = event
    cpu, wall = time.process_time(), time.perf_counter()
    if end is None or end.error or first is None:
        raise SystemExit(f"generation failed: {end}")
    return cpu - first[0], wall - first[1], end.completion_tokens - 1, end.constrained


def one_time_costs(backend) -> tuple[float, float, float]:
    """Seconds to build llguidance's tokenizer, to compile the constraint, to start a matcher."""
    import llguidance.hf

    from llm.constrain.grammar import GrammarCache
    from llm.constrain.hf import logits_width

    start = time.perf_counter()
    lltok = llguidance.hf.from_tokenizer(backend.tokenizer, n_vocab=logits_width(backend.model))
    built = time.perf_counter()
    cache = GrammarCache(lltok)
    compiled = cache.compile(_constraint())
    compiled_at = time.perf_counter()
    cache.matcher(compiled.triggers[0].grammar)
    return built - start, compiled_at - built, time.perf_counter() - compiled_at


def engine_ms_per_token(backend, ids: list[int], constraint, rounds: int) -> float:
    """The processor's own time per token, replayed outside generate() on logits of the
    model's width (robust to the machine's load, unlike the end-to-end ratio)."""
    import torch

    from llm.constrain.hf import ConstraintProcessor, logits_width

    prompt = backend.encode(_request(constraint))
    eos = tuple(sorted(backend.eos_ids))
    scores = torch.zeros((1, logits_width(backend.model)))
    best = float("inf")
    for _ in range(rounds):
        processor = ConstraintProcessor(backend.tokenizer, constraint, len(prompt), eos)
        processor(torch.tensor([prompt]), scores)  # sets up the session (cached grammars)
        start = time.perf_counter()
        for k in range(1, len(ids) + 1):
            processor(torch.tensor([prompt + ids[:k]]), scores)
        best = min(best, (time.perf_counter() - start) / len(ids))
    return best * 1000


def measure(backend, label: str, reply: str, rounds: int) -> None:
    constraint = _constraint()
    ids = allowed_ids(backend, reply, constraint)
    cpu: dict[bool, list[float]] = {True: [], False: []}
    wall: dict[bool, list[float]] = {True: [], False: []}
    n = 0
    applied = False
    decode_cost(backend, ids, constraint)  # warm-up
    for _ in range(rounds):
        for on in (True, False):
            c, w, count, structured = decode_cost(backend, ids, constraint if on else None)
            if n and count != n:
                raise SystemExit(f"{label}: token counts differ ({count} vs {n})")
            n, applied = count, applied or structured
            cpu[on].append(c)
            wall[on].append(w)
    ratio = statistics.median(a / b for a, b in zip(cpu[True], cpu[False], strict=True))
    wall_ratio = statistics.median(a / b for a, b in zip(wall[True], wall[False], strict=True))
    verdict = "PASS" if ratio <= TARGET else "MISS"
    per_on = statistics.median(cpu[True]) / n * 1000
    per_off = statistics.median(cpu[False]) / n * 1000
    engine = engine_ms_per_token(backend, ids, constraint, rounds)
    print(
        f"{label}: {n} tokens, CPU constrained {per_on:.2f} ms/token, free {per_off:.2f} "
        f"ms/token, ratio {ratio:.3f} (target <= {TARGET}) {verdict}; wall ratio "
        f"{wall_ratio:.3f}{'' if applied else ' [no structure]'}"
    )
    print(
        f"  engine alone: {engine:.3f} ms/token replayed, i.e. ratio {1 + engine / per_off:.3f}"
        " of this model's free decoding"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory or hub id (default: a tiny Qwen2)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=0, help="random model width")
    parser.add_argument("--layers", type=int, default=2, help="random model depth")
    args = parser.parse_args(argv)

    import llguidance
    import torch

    from llm.loader import load_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model
        if source is None:
            from tests.tiny_models import build_tiny_qwen2

            sizes: dict[str, int] = {"num_hidden_layers": args.layers}
            if args.hidden:
                sizes.update(
                    hidden_size=args.hidden,
                    intermediate_size=args.hidden * 3,
                    num_attention_heads=max(args.hidden // 64, 1),
                    num_key_value_heads=max(args.hidden // 256, 1),
                )
            source = str(build_tiny_qwen2(Path(tmp) / "tiny", **sizes))
        backend = load_model(source, device=args.device)
        print(
            f"model: {backend.info.name} on {backend.info.device}, {args.threads} thread(s), "
            f"llguidance {llguidance.__version__}"
        )
        build, compile_s, matcher = one_time_costs(backend)
        print(
            f"one-time: llguidance tokenizer {build:.2f} s, compile {compile_s * 1000:.1f} ms, "
            f"first matcher {matcher * 1000:.1f} ms"
        )
        measure(backend, "three tool calls (all under the grammar)", CALLS, args.rounds)
        measure(backend, "plain answer (trigger watch only)", ANSWER, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
