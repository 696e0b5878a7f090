"""`python -m eval`: load a model once, run the cases under each setting, print and save.

python -m eval eval/cases.jsonl --model SOURCE [--format react|native] [--tools a,b]
    [--ids a,b] [--limit N] [--switch junk=on,off ...] [--json out.json] [--plot out.png]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.errors import AgentInputError
from agent.settings import AgentSettings
from eval.cases import Case, CaseFileError, load_cases, select_cases
from eval.report import best_run, format_misses, format_table, report_json
from eval.runner import evaluate
from eval.scoring import CaseResult, summarise
from eval.switches import EvalSetting, build_settings, parse_switches, switch_help


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eval",
        description="Tool-use evaluation: run question cases through the real agent loop and "
        "score the calls and the answers, for several settings side by side.",
    )
    p.add_argument("cases", help="JSONL case file, e.g. eval/cases.jsonl")
    p.add_argument("--model", required=True, help="model source (registry key, hub id, dir)")
    p.add_argument("--format", choices=["auto", "react", "native"], default="auto")
    p.add_argument("--tools", default="", help="comma-separated tool names (default: all)")
    p.add_argument("--limit", type=int, default=0, help="only the first N cases (after --ids)")
    p.add_argument("--ids", default="", help="comma-separated case ids to run")
    p.add_argument(
        "--switch", action="append", default=[], metavar="NAME=V[,V]", help=switch_help()
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--cpu-int8", action="store_true", help="dynamic int8 on CPU (faster)")
    p.add_argument("--base-url", default="", help="server address for openai:<model> sources")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--max-steps", type=int, default=6)
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (reproducible)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lang", choices=["en", "zh"], default="en", help="language of agent notes")
    p.add_argument("--json", dest="json_out", default="", help="write the JSON report here")
    p.add_argument("--plot", default="", help="write a PNG comparing the settings here")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--misses", action="store_true", help="list the wrong answers and why")
    p.add_argument("--no-progress", action="store_true")
    return p


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python " + (
        platform.python_version()
    )


def _plan(args: argparse.Namespace) -> tuple[list[Case], list[EvalSetting]]:
    """The cases and settings to run; CaseFileError / AgentInputError on bad input."""
    from llm.types import GenerationConfig

    cases = select_cases(load_cases(args.cases), _split(args.ids), args.limit, _split(args.tools))
    if not cases:
        raise CaseFileError("no cases left after --ids/--tools/--limit")
    base = AgentSettings(
        format=args.format,
        max_steps=args.max_steps,
        lang=args.lang,
        generation=GenerationConfig(
            max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed
        ),
    )
    return cases, build_settings(base, parse_switches(args.switch))


def _write_outputs(
    args: argparse.Namespace,
    runs: list[tuple[EvalSetting, list[CaseResult]]],
    meta: dict[str, Any],
    plot: bool = True,
) -> dict[str, Any]:
    report = report_json(runs, meta)
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    if plot and args.plot and runs:
        from eval.plot import write_plot

        print(f"wrote {write_plot([report], args.plot)}", file=sys.stderr)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cases, settings = _plan(args)
    except (CaseFileError, AgentInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from tools.builtin import default_registry

    registry = default_registry()
    unknown = [t for t in _split(args.tools) if t not in registry]
    if unknown:
        print(f"error: unknown tool(s) {unknown}; available: {registry.names()}", file=sys.stderr)
        return 2

    from llm.sources import open_backend

    t0 = time.perf_counter()
    try:
        options: dict[str, Any] = {"cpu_int8": args.cpu_int8}
        if args.base_url:
            options["base_url"] = args.base_url
        backend = open_backend(args.model, device=args.device, **options)
    except Exception as e:  # noqa: BLE001 - report any load failure plainly
        print(f"error: could not load model {args.model!r}: {e}", file=sys.stderr)
        return 1
    load_s = time.perf_counter() - t0
    print(f"loaded {backend.info.name} in {load_s:.1f} s", file=sys.stderr)

    meta = {
        "model": backend.info.name,
        "source": args.model,
        "backend": backend.info.backend,
        "cases_file": str(args.cases),
        "case_ids": [c.id for c in cases],
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "load_seconds": round(load_s, 2),
        "max_new_tokens": args.max_new_tokens,
        "max_steps": args.max_steps,
        "env": {
            k: os.environ[k] for k in ("QWEN_DEMO_THREADS", "OMP_NUM_THREADS") if k in os.environ
        },
    }
    runs = _run_all(args, backend, registry, cases, settings, meta)
    print(format_table([(s.label, summarise(r)) for s, r in runs], markdown=args.markdown))
    if args.misses:
        print(format_misses(runs))
    report = _write_outputs(args, runs, meta)
    if len(runs) > 1:
        print(f"best by answer right, then false positives, then time: {best_run(report)['label']}")
    return 0


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # a timeout's SIGTERM reports what finished, like Ctrl-C


def _run_all(
    args: argparse.Namespace,
    backend: Any,
    registry: Any,
    cases: list[Case],
    settings: list[EvalSetting],
    meta: dict[str, Any],
) -> list[tuple[EvalSetting, list[CaseResult]]]:
    """Every setting in turn; the JSON report is rewritten after each one, and an interrupted
    setting is reported with the cases it finished (its label marked "(partial)")."""
    runs: list[tuple[EvalSetting, list[CaseResult]]] = []
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        for setting in settings:
            results: list[CaseResult] = []
            try:
                evaluate(backend, registry, cases, setting, None, not args.no_progress, results)
            except KeyboardInterrupt:
                print("interrupted: reporting the cases that finished", file=sys.stderr)
                if results:
                    partial = dataclasses.replace(setting, label=f"{setting.label} (partial)")
                    runs.append((partial, results))
                break
            runs.append((setting, results))
            if args.json_out and setting is not settings[-1]:
                _write_outputs(args, runs, meta, plot=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
        backend.close()
    return runs
