"""KV-cache prefix reuse: prefill tokens and wall time of an agent turn with reuse ÷ without.

Run: python -m bench.bench_kv [--rounds 3] [--threads 1] [--quick]
     python -m bench.bench_kv --model qwen2.5-coder-0.5b       (the offline 0.5B model; slow)
     python -m bench.bench_kv --hidden 1024 --layers 8          (a bigger random Qwen2)
     python -m bench.bench_kv --random-7b                       (GPU only: random Qwen-7B)

A 3-step ReAct episode (employee_db → calculator → Final Answer) runs through agent.loop.run
with the real built-in tools. The model's output is forced: the backend's test-only
logits_hook installs a LogitsProcessor that sets every logit but the scripted next token to
-inf, so the random (or real) model writes exactly the scripted replies, stops at
"Observation:" through the normal stop-word path, and both variants do the same work. The only
difference is TransformersBackend(prefix_cache=True|False) on the same weights. Each episode
starts with a cold cache (a fresh backend object); rounds alternate reuse/no-reuse and medians
are compared. A second measurement continues the conversation: turn 2 (a tool step and an
answer) after turn 1, with the cache left by turn 1 vs none.

Targets (issue 8): prefill tokens with ÷ without <= 0.4, wall time with ÷ without <= 0.7.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUESTION = "张三的生日是10月吗？现在是2月，距离他生日还有几个月？"
EPISODE = [  # one forced reply per model call; the stop word ends the first two
    "Thought: I need Zhang San's birthday from the employee database.\n"
    'Action: employee_db\nAction Input: {"name": "张三"}\nObservation:',
    " His birthday is May 5, not in October. From February to May is 5 - 2 months.\n"
    'Action: calculator\nAction Input: {"expression": "5 - 2"}\nObservation:',
    " I now know the final answer\nFinal Answer: 不是，张三的生日是5月5日，还有3个月。",
]
QUESTION_2 = "那李四呢？他的职位是什么？"
TURN_2 = [
    'Thought: Look up Li Si.\nAction: employee_db\nAction Input: {"name": "李四"}\nObservation:',
    " I now know the final answer\nFinal Answer: 李四的信息见上面的查询结果。",
]
NATIVE_EPISODE = [  # the same turns as <tool_call> function calling (Qwen2.5 chat template)
    "I need Zhang San's birthday from the employee database.\n<tool_call>\n"
    '{"name": "employee_db", "arguments": {"name": "张三"}}\n</tool_call>',
    "His birthday is May 5, not in October. From February to May is 5 - 2 months.\n"
    '<tool_call>\n{"name": "calculator", "arguments": {"expression": "5 - 2"}}\n</tool_call>',
    "不是，张三的生日是5月5日，还有3个月。",
]
NATIVE_TURN_2 = [
    'Look up Li Si.\n<tool_call>\n{"name": "employee_db", "arguments": {"name": "李四"}}\n'
    "</tool_call>",
    "李四的信息见上面的查询结果。",
]
REPLIES = {"react": (EPISODE, TURN_2), "native": (NATIVE_EPISODE, NATIVE_TURN_2)}
TARGET_PREFILL = 0.4
TARGET_WALL = 0.7

# Qwen/Qwen-7B-Chat's config.json (v1 remote-code format), the fields the converter reads.
QWEN_7B_V1_CONFIG: dict[str, Any] = {
    "hidden_size": 4096,
    "intermediate_size": 22016,
    "kv_channels": 128,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "vocab_size": 151936,
    "seq_length": 8192,
    "max_position_embeddings": 32768,
    "layer_norm_epsilon": 1e-6,
    "rotary_emb_base": 10000,
    "rotary_pct": 1.0,
    "no_bias": True,
    "tie_word_embeddings": False,
}
QWEN_TIKTOKEN = (
    Path(__file__).resolve().parent.parent / "tests" / "data" / "qwen-v1" / "qwen.tiktoken"
)


# ---------------------------------------------------------------------------- forcing


def ForcedReplies(tokenizer: Any, replies: list[str]) -> Any:  # noqa: N802 - a factory
    """logits_hook: the n-th model call writes replies[n] in the tokenizer's own encoding."""
    from tests.forcing import ForcedReplies as Hook

    return Hook(tokenizer, replies, per_char=False)


# ---------------------------------------------------------------------------- models


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model options every bench here shares."""
    parser.add_argument("--model", help="source: registry key, directory, hub id (default: tiny)")
    parser.add_argument(
        "--random-7b",
        action="store_true",
        help="a random-weight model with Qwen-7B-Chat's configuration (needs a CUDA GPU)",
    )
    parser.add_argument("--tokenizer", default=str(QWEN_TIKTOKEN), help="qwen.tiktoken for -7b")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--hidden", type=int, default=0, help="random model width (default 64)")
    parser.add_argument("--layers", type=int, default=2, help="random model depth")


def tiny_source(directory: Path, hidden: int = 0, layers: int = 2) -> str:
    """Build the tiny random Qwen2 (or a wider one) into directory; return its path."""
    from tests.tiny_models import build_tiny_qwen2

    sizes: dict[str, int] = {"num_hidden_layers": layers}
    if hidden:
        sizes.update(
            hidden_size=hidden,
            intermediate_size=hidden * 3,
            num_attention_heads=max(hidden // 64, 1),
            num_key_value_heads=max(hidden // 256, 1),
        )
    return str(build_tiny_qwen2(directory, **sizes))


def random_qwen1_backend(v1_config: dict[str, Any], tiktoken_file: str | Path, device: str):
    """A TransformersBackend: random weights with a Qwen v1 configuration (converted to Qwen2
    as llm.qwen1 converts real checkpoints) and the real v1 tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    from llm.local import TransformersBackend
    from llm.qwen1 import qwen2_config_from_qwen1, tokenizer_from_tiktoken
    from llm.types import ModelInfo

    if not Path(tiktoken_file).is_file():
        raise SystemExit(f"the Qwen v1 tokenizer file is missing: {tiktoken_file} (--tokenizer)")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    fields = qwen2_config_from_qwen1(v1_config)
    for key in ("architectures", "model_type", "qwen1_source"):
        fields.pop(key, None)
    config = Qwen2Config(**fields)
    tokenizer = tokenizer_from_tiktoken(tiktoken_file)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    eos = [config.eos_token_id, config.pad_token_id]
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=eos[1])
    params = sum(p.numel() for p in model.parameters())
    info = ModelInfo(
        name=f"random Qwen v1 config ({params / 1e9:.2f}B, {str(dtype).removeprefix('torch.')})",
        family="qwen1",
        backend="transformers",
        device=device,
        memory_gb=params * (2 if device == "cuda" else 4) / 2**30,
        source="random",
    )
    return TransformersBackend(model, tokenizer, info)


def random_7b_backend(tiktoken_file: str | Path):
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(
            "--random-7b needs a CUDA GPU (a random-weight Qwen-7B takes ~15 GB in bf16); "
            "no CUDA device was found. Use --model or the default tiny model here."
        )
    return random_qwen1_backend(QWEN_7B_V1_CONFIG, tiktoken_file, "cuda")


def open_model(args: argparse.Namespace, tmp: Path):
    """The TransformersBackend the options ask for (tiny by default)."""
    import torch

    from llm.local import TransformersBackend
    from llm.sources import open_backend

    torch.set_num_threads(args.threads)
    if args.random_7b:
        return random_7b_backend(args.tokenizer)
    source = args.model or tiny_source(tmp / "tiny", args.hidden, args.layers)
    backend = open_backend(source, device=args.device)
    if not isinstance(backend, TransformersBackend):
        raise SystemExit(f"{source} is not a local transformers model; nothing to measure")
    return backend


def twin(backend: Any, *, hook: Any = None, prefix_cache: bool = True):
    """A fresh backend object (empty KV cache) on the same weights."""
    from llm.local import TransformersBackend

    return TransformersBackend(
        backend.model, backend.tokenizer, backend.info, logits_hook=hook, prefix_cache=prefix_cache
    )


# ---------------------------------------------------------------------------- measuring


@dataclass
class TurnRun:
    prefill: int  # prompt tokens actually computed: prompt - cached, summed over model calls
    prompt: int  # prompt tokens, summed
    seconds: float  # wall time of the whole turn (model calls and tools)
    steps: int
    transcript: tuple[str, ...]  # what the user saw: step texts, observations, final answer
    messages: tuple[dict[str, Any], ...]


def run_turn(backend: Any, history: list[dict[str, Any]], query: str, fmt: str) -> TurnRun:
    from agent import events as ev
    from agent.loop import run
    from agent.settings import AgentSettings
    from llm.types import GenerationConfig
    from tools.builtin import default_registry

    tools = default_registry(enable_python=False).subset(["employee_db", "calculator"])
    config = GenerationConfig(max_new_tokens=256, temperature=0, repetition_penalty=1.0)
    settings = AgentSettings(format=fmt, generation=config)
    start = time.perf_counter()
    events = list(run(backend, tools, history, query, settings))
    seconds = time.perf_counter() - start
    ends = [e for e in events if isinstance(e, ev.ModelCallEnd)]
    final = events[-1]
    if not isinstance(final, ev.FinalAnswer):
        raise SystemExit(f"the forced episode did not end with a final answer: {final}")
    shown: list[str] = []  # per step: the streamed text (delta boundaries vary with timing)
    for e in events:
        if isinstance(e, ev.StepStarted):
            shown.append("")
        elif isinstance(e, ev.TextDelta):
            shown[-1] += e.text
        elif isinstance(e, ev.Observation | ev.FinalAnswer):
            shown.append(e.text)
    return TurnRun(
        prefill=sum(e.end.prompt_tokens - e.end.cached_tokens for e in ends),
        prompt=sum(e.end.prompt_tokens for e in ends),
        seconds=seconds,
        steps=len(ends),
        transcript=tuple(shown),
        messages=final.messages,
    )


def episode(backend: Any, reuse: bool, fmt: str) -> tuple[TurnRun, TurnRun]:
    """Turn 1 (3 steps, cold cache) then turn 2 of the same conversation."""
    replies_1, replies_2 = REPLIES[fmt]
    same = twin(backend, hook=ForcedReplies(backend.tokenizer, replies_1), prefix_cache=reuse)
    one = run_turn(same, [], QUESTION, fmt)
    same.logits_hook = ForcedReplies(backend.tokenizer, replies_2)  # same backend: its cache
    two = run_turn(same, list(one.messages), QUESTION_2, fmt)
    return one, two


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def report(label: str, with_runs: list[TurnRun], without_runs: list[TurnRun]) -> None:
    """Two ratio lines (prefill tokens, wall seconds), raw numbers first."""
    pre_w = statistics.median(r.prefill for r in with_runs)
    pre_wo = statistics.median(r.prefill for r in without_runs)
    sec_w = statistics.median(r.seconds for r in with_runs)
    sec_wo = statistics.median(r.seconds for r in without_runs)
    prompt = with_runs[0].prompt
    ratio = pre_w / pre_wo
    print(
        f"{label}: prefill tokens  with reuse {pre_w:.0f}  without {pre_wo:.0f}"
        f"  (of {prompt} prompt tokens)  ratio {ratio:.3f}  target <= {TARGET_PREFILL}"
        f"  {verdict(ratio, TARGET_PREFILL)}"
    )
    ratio = sec_w / sec_wo
    print(
        f"{label}: wall seconds    with reuse {sec_w:.3f}  without {sec_wo:.3f}"
        f"  ratio {ratio:.3f}  target <= {TARGET_WALL}  {verdict(ratio, TARGET_WALL)}"
    )


def compare(backend: Any, fmt: str, rounds: int, warm_up: bool) -> bool:
    """Print the ratio lines for one format; False if reuse changed what the user sees."""
    if warm_up:
        episode(backend, True, fmt)  # allocator, kernels, tool imports
    runs: dict[bool, list[tuple[TurnRun, TurnRun]]] = {True: [], False: []}
    for _ in range(rounds):
        for reuse in (True, False):  # alternating: load changes hit both alike
            runs[reuse].append(episode(backend, reuse, fmt))
    for (a1, a2), (b1, b2) in zip(runs[True], runs[False], strict=True):
        if a1.transcript != b1.transcript or a2.transcript != b2.transcript:
            print(f"{fmt}: MISMATCH: the turns differ with and without reuse")
            return False
    steps = runs[True][0][0].steps, runs[True][0][1].steps
    print(
        f"{fmt}: outputs identical with and without reuse"
        f" (turns of {steps[0]} and {steps[1]} steps)"
    )
    report(
        f"{fmt} turn 1 ({steps[0]} steps)", [r[0] for r in runs[True]], [r[0] for r in runs[False]]
    )
    report(f"{fmt} turn 2 (same chat)", [r[1] for r in runs[True]], [r[1] for r in runs[False]])
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (medians)")
    parser.add_argument("--quick", action="store_true", help="one round, no warm-up (smoke test)")
    parser.add_argument("--format", default="both", choices=["react", "native", "both"])
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else max(args.rounds, 1)

    with tempfile.TemporaryDirectory() as tmp:
        backend = open_model(args, Path(tmp))
        print(
            f"model: {backend.info.name} on {backend.info.device}, {args.threads} thread(s), "
            f"{rounds} round(s)"
        )
        formats = ["react", "native"] if args.format == "both" else [args.format]
        for fmt in formats:
            if not compare(backend, fmt, rounds, warm_up=not args.quick):
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
