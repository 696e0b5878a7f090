"""Tool-use evaluation: run question cases through the real agent loop and score them.

    python -m agent.eval --model SOURCE [--format react|native] [--tools a,b] [--limit N]
        [--switch repair=on,off ...] [--json out.json] eval/cases.jsonl

Each case names the enabled tools, the tool the model should call first (or none) and its
arguments. Scores, per setting: tool selection accuracy (first tool call right, or no call
when none is wanted), Rouge-L of the first call's JSON arguments against the expected ones
(as Qwen's own plugin eval), false-positive rate (a tool called when none should be), the
share of turns that reached a Final Answer, mean model steps and seconds per turn. Several
settings (the product of the --switch values) run in one go on one loaded model, so the
effect of each robustness switch is measured side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import inspect
import itertools
import json
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.aids import AID_KEYS
from agent.errors import AgentInputError
from agent.events import (
    AgentFailed,
    AidFired,
    FinalAnswer,
    Observation,
    StepError,
    StepLimitReached,
    StepStarted,
    Stopped,
    ToolCall,
)
from agent.metrics import arguments_rouge_l, arguments_text, rouge_l
from agent.settings import AgentSettings
from llm.types import TextDelta

RunFn = Callable[..., Iterator[Any]]


class CaseFileError(ValueError):
    """cases.jsonl is malformed; the message names the line."""


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    id: str
    query: str
    expected_tool: str | None
    expected_arguments: dict[str, Any] | None = None
    tools: tuple[str, ...] | None = None  # None: every tool of the registry
    expected_sequence: tuple[str, ...] | None = None
    lang: str = ""
    category: str = ""


def parse_case(data: Any, where: str = "case") -> Case:
    if not isinstance(data, dict):
        raise CaseFileError(f"{where}: expected a JSON object, got {type(data).__name__}")
    for key in ("id", "query"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise CaseFileError(f"{where}: {key!r} must be a non-empty string")
    if "expected_tool" not in data:
        raise CaseFileError(f"{where}: 'expected_tool' is required (null when no tool is wanted)")
    tool = data["expected_tool"]
    if tool is not None and not isinstance(tool, str):
        raise CaseFileError(f"{where}: 'expected_tool' must be a tool name or null")
    args = data.get("expected_arguments")
    if tool is not None and not isinstance(args, dict):
        raise CaseFileError(
            f"{where}: 'expected_arguments' must be an object when a tool is wanted"
        )
    tools = data.get("tools")
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, str) for t in tools)
    ):
        raise CaseFileError(f"{where}: 'tools' must be a list of tool names")
    if tool is not None and tools is not None and tool not in tools:
        raise CaseFileError(f"{where}: expected tool {tool!r} is not among its tools {tools}")
    seq = data.get("expected_sequence")
    if seq is not None and (not isinstance(seq, list) or not all(isinstance(t, str) for t in seq)):
        raise CaseFileError(f"{where}: 'expected_sequence' must be a list of tool names")
    if seq and seq[0] != tool:
        raise CaseFileError(f"{where}: 'expected_sequence' must start with the expected tool")
    return Case(
        id=data["id"],
        query=data["query"],
        expected_tool=tool,
        expected_arguments=args if tool is not None else None,
        tools=tuple(tools) if tools is not None else None,
        expected_sequence=tuple(seq) if seq else None,
        lang=str(data.get("lang", "")),
        category=str(data.get("category", "")),
    )


def load_cases(path: str | Path) -> list[Case]:
    """Read a JSONL case file (blank lines and lines starting with # are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise CaseFileError(f"case file not found: {path}")
    cases: list[Case] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise CaseFileError(f"{where}: not valid JSON ({e.msg})") from None
        case = parse_case(data, where)
        if case.id in seen:
            raise CaseFileError(f"{where}: duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise CaseFileError(f"{path}: no cases")
    return cases


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class CaseResult:
    id: str
    lang: str
    category: str
    expected_tool: str | None
    called_tools: tuple[str, ...]
    scored_arguments: str  # the call text Rouge-L was computed on ("" when none)
    tool_correct: bool
    arguments_rouge_l: float | None  # None when no tool was expected
    false_positive: bool | None  # None when a tool was expected
    sequence_correct: bool | None  # None when the case has no expected sequence
    final_answer: bool
    outcome: str  # final_answer | step_limit | stopped | failed | error
    steps: int
    seconds: float
    step_errors: int
    repaired_calls: int
    rejected_answers: int
    answer: str = ""
    error: str = ""
    transcript: str = ""  # the model's raw text, steps separated by "\n--- step N ---\n"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_OUTCOMES = {
    FinalAnswer: "final_answer",
    StepLimitReached: "step_limit",
    Stopped: "stopped",
    AgentFailed: "failed",
}


def _collapse(names: Sequence[str]) -> tuple[str, ...]:
    """Drop immediate repeats: a retried call of the same tool is one step of the plan."""
    return tuple(n for i, n in enumerate(names) if i == 0 or names[i - 1] != n)


def tool_defaults(tool: Any) -> dict[str, Any]:
    """A tool's parameter defaults (from its function signature; the JSON schema has none)."""
    func = getattr(tool, "func", None)
    if func is None:
        return {}
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _score_arguments(
    calls: Sequence[ToolCall],
    invalid: set[str],
    wanted: str,
    expected: dict[str, Any] | None,
    defaults: dict[str, Any] | None,
) -> tuple[float, str]:
    """Rouge-L of the first call's arguments, and the text scored.

    0 when the first call is not the expected tool. If the agent refused that call and the
    model retried the same tool, the first attempt that ran counts (so retry and repair show
    in the score); if none ran, the model's raw Action Input is compared as text.
    """
    if not calls or calls[0].name != wanted:
        return 0.0, ""
    attempts = list(itertools.takewhile(lambda c: c.name == wanted, calls))
    ran = [c for c in attempts if c.call_id not in invalid]
    fill = defaults or {}
    want = {**fill, **(expected or {})}
    if ran:
        got = {**fill, **ran[0].arguments}
        return arguments_rouge_l(got, want), arguments_text(got)
    raw = attempts[0].raw_arguments
    return rouge_l(raw, arguments_text(want)).f, raw


def score_events(
    case: Case,
    events: Iterable[Any],
    seconds: float,
    error: str = "",
    defaults: dict[str, Any] | None = None,
) -> CaseResult:
    """Score one turn's event stream against its case (pure: no model, no clock).

    defaults: the expected tool's parameter defaults, filled into both the call and the
    expectation before Rouge-L, so clock() and clock(timezone="Asia/Shanghai") score alike.
    """
    calls: list[ToolCall] = []
    invalid: set[str] = set()  # call ids the agent refused (unknown tool, unusable arguments)
    step_errors = repaired = rejected = 0
    terminal: Any = None
    texts: list[tuple[int, list[str]]] = []  # per model call, in order
    for ev in events:
        if isinstance(ev, StepStarted):
            texts.append((ev.step, []))
        elif isinstance(ev, TextDelta) and texts:
            texts[-1][1].append(ev.text)
        elif isinstance(ev, ToolCall):
            calls.append(ev)
            repaired += ev.repaired
        elif isinstance(ev, Observation) and ev.source == "agent" and not ev.ok:
            invalid.add(ev.call_id)
        elif isinstance(ev, StepError):
            step_errors += 1
        elif isinstance(ev, AidFired) and ev.aid == "reject":
            rejected += 1
        elif type(ev) in _OUTCOMES:
            terminal = ev
    names = tuple(c.name for c in calls)
    first_name = calls[0].name if calls else None
    wanted = case.expected_tool
    rouge: float | None = None
    scored = ""
    if wanted is not None:
        rouge, scored = _score_arguments(calls, invalid, wanted, case.expected_arguments, defaults)
    seq_ok = None
    if case.expected_sequence and len(case.expected_sequence) > 1:
        seq_ok = _collapse(names) == _collapse(case.expected_sequence)
    outcome = "error" if error else _OUTCOMES.get(type(terminal), "error")
    return CaseResult(
        id=case.id,
        lang=case.lang,
        category=case.category,
        expected_tool=wanted,
        called_tools=names,
        scored_arguments=scored,
        tool_correct=first_name == wanted,
        arguments_rouge_l=rouge,
        false_positive=bool(calls) if wanted is None else None,
        sequence_correct=seq_ok,
        final_answer=isinstance(terminal, FinalAnswer) and not error,
        outcome=outcome,
        steps=terminal.steps if terminal is not None else 0,
        seconds=seconds,
        step_errors=step_errors,
        repaired_calls=repaired,
        rejected_answers=rejected,
        answer=terminal.text if isinstance(terminal, FinalAnswer) else "",
        error=error
        or (terminal.message if isinstance(terminal, AgentFailed | StepLimitReached) else ""),
        transcript="\n".join(f"--- step {n} ---\n{''.join(t)}" for n, t in texts),
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Summary:
    cases: int
    tool_accuracy: float | None
    arguments_rouge_l: float | None  # over cases that want a tool (no/wrong call scores 0)
    arguments_rouge_l_selected: float | None  # over cases where the right tool was called
    false_positive_rate: float | None  # over cases that want no tool
    sequence_accuracy: float | None  # over multi-step cases with an expected sequence
    final_answer_rate: float | None
    mean_steps: float | None
    mean_seconds: float | None
    step_errors: int
    repaired_calls: int
    rejected_answers: int
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summarise(results: Sequence[CaseResult]) -> Summary:
    tool_cases = [r for r in results if r.expected_tool is not None]
    none_cases = [r for r in results if r.expected_tool is None]
    selected = [r for r in tool_cases if r.tool_correct]
    seq_cases = [r for r in results if r.sequence_correct is not None]
    return Summary(
        cases=len(results),
        tool_accuracy=_mean([float(r.tool_correct) for r in results]),
        arguments_rouge_l=_mean([r.arguments_rouge_l or 0.0 for r in tool_cases]),
        arguments_rouge_l_selected=_mean([r.arguments_rouge_l or 0.0 for r in selected]),
        false_positive_rate=_mean([float(bool(r.false_positive)) for r in none_cases]),
        sequence_accuracy=_mean([float(bool(r.sequence_correct)) for r in seq_cases]),
        final_answer_rate=_mean([float(r.final_answer) for r in results]),
        mean_steps=_mean([float(r.steps) for r in results]),
        mean_seconds=_mean([r.seconds for r in results]),
        step_errors=sum(r.step_errors for r in results),
        repaired_calls=sum(r.repaired_calls for r in results),
        rejected_answers=sum(r.rejected_answers for r in results),
        errors=sum(r.outcome == "error" for r in results),
    )


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class EvalSetting:
    """One column of the comparison: the agent settings it runs with."""

    label: str
    settings: AgentSettings
    switches: dict[str, str] = field(default_factory=dict)


# System-prompt variants for the prompt switch. "default" keeps the settings' own prompt,
# "prefill" keeps it too and turns the prefill aid on; the others turn it off.
PROMPT_VARIANTS: dict[str, str | None] = {
    "default": None,
    "prefill": None,
    "tool-first": (
        "You are a helpful assistant. You cannot know facts about employees, the current "
        "time or exact arithmetic results without a tool: whenever one of your tools can "
        "answer, call it first and answer only from its result. Answer chit-chat and general "
        "knowledge directly without tools."
    ),
}

# Switches that turn several aids on or off at once (each aid key is a switch too).
GROUP_SWITCHES: dict[str, tuple[str, ...]] = {
    "robust": ("repair", "retry", "reject"),
    "aids": AID_KEYS,
}
_ON = {"on", "true", "yes", "1"}
_OFF = {"off", "false", "no", "0"}


def parse_switches(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """["repair=on,off", "retry=off"] -> [("repair", ["on", "off"]), ("retry", ["off"])]."""
    out: list[tuple[str, list[str]]] = []
    fields = {f.name for f in dataclasses.fields(AgentSettings)}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not vals:
            raise AgentInputError(f"--switch {spec!r}: expected NAME=VALUE[,VALUE...]")
        special = name == "prompt" or name in GROUP_SWITCHES or name in AID_KEYS
        if not special and name not in fields:
            known = sorted({*AID_KEYS, *GROUP_SWITCHES, "prompt", *fields} - {"generation", "aids"})
            raise AgentInputError(f"--switch {name!r}: unknown switch; known: {known}")
        if name == "prompt":
            bad = [v for v in vals if v not in PROMPT_VARIANTS]
            if bad:
                raise AgentInputError(
                    f"--switch prompt: unknown variant(s) {bad}; known: {list(PROMPT_VARIANTS)}"
                )
        out.append((name, vals))
    return out


def _value(field_type: Any, raw: str, name: str) -> Any:
    low = raw.lower()
    if field_type in (bool, "bool"):
        if low in _ON:
            return True
        if low in _OFF:
            return False
        raise AgentInputError(f"--switch {name}: expected on/off, got {raw!r}")
    if field_type in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise AgentInputError(f"--switch {name}: expected an integer, got {raw!r}") from None
    return raw


def build_settings(
    base: AgentSettings, switches: Sequence[tuple[str, list[str]]]
) -> list[EvalSetting]:
    """The product of all switch values, one EvalSetting each (base alone when no switches)."""
    types = {f.name: f.type for f in dataclasses.fields(AgentSettings)}
    names = [n for n, _ in switches]
    out: list[EvalSetting] = []
    for combo in itertools.product(*[vals for _, vals in switches]):
        settings, chosen = base, {}
        for name, raw in zip(names, combo, strict=True):
            chosen[name] = raw
            if name in GROUP_SWITCHES or name in AID_KEYS:
                on = _value(bool, raw, name)
                settings = settings.with_aids(
                    **dict.fromkeys(GROUP_SWITCHES.get(name, (name,)), on)
                )
            elif name == "prompt":
                text = PROMPT_VARIANTS[raw]
                settings = settings.with_aids(prefill=raw == "prefill")
                if text is not None:
                    settings = dataclasses.replace(settings, system_prompt=text)
            else:
                settings = dataclasses.replace(settings, **{name: _value(types[name], raw, name)})
        label = " ".join(f"{k}={v}" for k, v in chosen.items()) or "default"
        out.append(EvalSetting(label, settings, chosen))
    return out


# --------------------------------------------------------------------------- running


def _default_run() -> RunFn:
    from agent.loop import run

    return run


def run_case(
    backend: Any,
    registry: Any,
    case: Case,
    setting: EvalSetting,
    run: RunFn | None = None,
) -> CaseResult:
    """One case through the agent loop; an exception becomes an 'error' result, not a crash."""
    run = run or _default_run()
    tools = registry.subset(case.tools) if case.tools is not None else registry
    missing = [t for t in (case.tools or ()) if t not in registry]
    wanted = registry.get(case.expected_tool) if case.expected_tool else None
    defaults = tool_defaults(wanted) if wanted is not None else {}
    events: list[Any] = []
    if missing:
        return score_events(case, events, 0.0, error=f"tools not available: {missing}")
    start = time.perf_counter()
    error = ""
    try:
        for ev in run(backend, tools, [], case.query, setting.settings, threading.Event()):
            events.append(ev)
    except Exception as e:  # noqa: BLE001 - one broken case must not end the whole eval
        error = f"{type(e).__name__}: {e}"
    return score_events(case, events, time.perf_counter() - start, error, defaults)


def evaluate(
    backend: Any,
    registry: Any,
    cases: Sequence[Case],
    setting: EvalSetting,
    run: RunFn | None = None,
    progress: bool = False,
) -> list[CaseResult]:
    iterator: Iterable[Case] = cases
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(cases, desc=setting.label, unit="case", file=sys.stderr, dynamic_ncols=True)
        iterator = bar
    results = []
    for case in iterator:
        result = run_case(backend, registry, case, setting, run)
        results.append(result)
        if bar is not None:
            s = summarise(results)
            bar.set_postfix(acc=f"{s.tool_accuracy:.2f}", last=result.outcome, refresh=False)
    return results


# --------------------------------------------------------------------------- output

_COLUMNS = [
    ("setting", None),
    ("n", "cases"),
    ("tool acc", "tool_accuracy"),
    ("args R-L", "arguments_rouge_l"),
    ("R-L|right tool", "arguments_rouge_l_selected"),
    ("false pos", "false_positive_rate"),
    ("sequence", "sequence_accuracy"),
    ("final", "final_answer_rate"),
    ("steps", "mean_steps"),
    ("s/turn", "mean_seconds"),
    ("invalid", "step_errors"),
    ("repaired", "repaired_calls"),
    ("rejected", "rejected_answers"),
]


def _cell(value: Any, key: str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if key in ("mean_steps", "mean_seconds"):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_table(rows: Sequence[tuple[str, Summary]], markdown: bool = False) -> str:
    """A fixed-width (or Markdown) table, one row per setting."""
    head = [name for name, _ in _COLUMNS]
    body = [[label] + [_cell(getattr(s, key), key) for _, key in _COLUMNS[1:]] for label, s in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in body]
    return "\n".join(lines)


def report_json(
    runs: Sequence[tuple[EvalSetting, list[CaseResult]]], meta: dict[str, Any]
) -> dict[str, Any]:
    """JSON for dashboards: run metadata, then per setting its summary and every case."""
    return {
        **meta,
        "runs": [
            {
                "label": setting.label,
                "switches": setting.switches,
                "settings": {
                    k: sorted(v) if isinstance(v, frozenset) else v
                    for k, v in dataclasses.asdict(setting.settings).items()
                    if k != "system_prompt"
                }
                | {"system_prompt_variant": setting.switches.get("prompt", "default")},
                "summary": summarise(results).to_dict(),
                "cases": [r.to_dict() for r in results],
            }
            for setting, results in runs
        ],
    }


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agent.eval", description=__doc__.split("\n\n")[0].strip()
    )
    p.add_argument("cases", help="JSONL case file, e.g. eval/cases.jsonl")
    p.add_argument("--model", required=True, help="model source (registry key, hub id, dir)")
    p.add_argument("--format", choices=["auto", "react", "native"], default="auto")
    p.add_argument("--tools", default="", help="comma-separated tool names (default: all)")
    p.add_argument("--limit", type=int, default=0, help="only the first N cases (after --ids)")
    p.add_argument("--ids", default="", help="comma-separated case ids to run")
    p.add_argument(
        "--switch",
        action="append",
        default=[],
        metavar="NAME=V[,V]",
        help=f"an aid ({', '.join(AID_KEYS)}), robust (repair+retry+reject) or aids (all of "
        "them) with on/off, prompt ("
        + "|".join(PROMPT_VARIANTS)
        + ") or an AgentSettings field; several values run side by side (their product)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--cpu-int8", action="store_true", help="dynamic int8 on CPU (faster)")
    p.add_argument("--base-url", default="", help="server address for openai:<model> sources")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--max-steps", type=int, default=6)
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (reproducible)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", default="", help="write the JSON report here")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--no-progress", action="store_true")
    return p


def _select(cases: list[Case], ids: str, limit: int, tools: list[str]) -> list[Case]:
    if ids:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        by_id = {c.id: c for c in cases}
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            raise CaseFileError(f"--ids: unknown case id(s) {unknown}")
        cases = [by_id[i] for i in wanted]
    if tools:
        # Only cases whose expected tool is enabled; each case's tool set is cut to --tools.
        cases = [
            dataclasses.replace(c, tools=tuple(t for t in (c.tools or tools) if t in tools))
            for c in cases
            if c.expected_tool is None or c.expected_tool in tools
        ]
    return cases[:limit] if limit > 0 else cases


def _machine() -> str:
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python " + (
        platform.python_version()
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from llm.types import GenerationConfig

    try:
        cases = load_cases(args.cases)
        tool_names = [t.strip() for t in args.tools.split(",") if t.strip()]
        cases = _select(cases, args.ids, args.limit, tool_names)
        if not cases:
            raise CaseFileError("no cases left after --ids/--tools/--limit")
        base = AgentSettings(
            format=args.format,
            max_steps=args.max_steps,
            generation=GenerationConfig(
                max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed
            ),
        )
        settings = build_settings(base, parse_switches(args.switch))
    except (CaseFileError, AgentInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from tools.builtin import default_registry

    registry = default_registry()
    unknown = [t for t in tool_names if t not in registry]
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

    runs: list[tuple[EvalSetting, list[CaseResult]]] = []
    try:
        for setting in settings:
            results = evaluate(backend, registry, cases, setting, progress=not args.no_progress)
            runs.append((setting, results))
    except KeyboardInterrupt:
        print("interrupted: reporting the settings that finished", file=sys.stderr)
    finally:
        backend.close()

    print(format_table([(s.label, summarise(r)) for s, r in runs], markdown=args.markdown))
    if args.json_out:
        meta = {
            "model": backend.info.name,
            "source": args.model,
            "cases_file": str(args.cases),
            "case_ids": [c.id for c in cases],
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": _machine(),
            "load_seconds": round(load_s, 2),
        }
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(report_json(runs, meta), ensure_ascii=False, indent=2), encoding="utf-8"
        )
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
