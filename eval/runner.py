"""Running cases through the real agent loop (agent.loop.run, what the app runs)."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from eval.answers import Window
from eval.cases import Case
from eval.scoring import CaseResult, score_events, summarise, tool_defaults
from eval.switches import EvalSetting

RunFn = Callable[..., Iterator[Any]]


def _default_run() -> RunFn:
    from agent.loop import run

    return run


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def run_case(
    backend: Any,
    registry: Any,
    case: Case,
    setting: EvalSetting,
    run: RunFn | None = None,
) -> CaseResult:
    """One case through the agent loop; an exception becomes an 'error' result, not a crash.
    The turn's start and end on the real clock are what answers about "now" are checked
    against."""
    run = run or _default_run()
    tools = registry.subset(case.tools) if case.tools is not None else registry
    missing = [t for t in (case.tools or ()) if t not in registry]
    wanted = registry.get(case.expected_tool) if case.expected_tool else None
    defaults = tool_defaults(wanted) if wanted is not None else {}
    events: list[Any] = []
    started = _now()
    if missing:
        error = f"tools not available: {missing}"
        return score_events(case, events, 0.0, error, window=Window.at(started))
    start = time.perf_counter()
    error = ""
    try:
        for ev in run(backend, tools, [], case.query, setting.settings, threading.Event()):
            events.append(ev)
    except Exception as e:  # noqa: BLE001 - one broken case must not end the whole eval
        error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - start
    return score_events(case, events, seconds, error, defaults, Window(started, _now()))


def evaluate(
    backend: Any,
    registry: Any,
    cases: Sequence[Case],
    setting: EvalSetting,
    run: RunFn | None = None,
    progress: bool = False,
    results: list[CaseResult] | None = None,
) -> list[CaseResult]:
    """Every case under one setting; progress: a tqdm bar on stderr with the running scores.
    results: a list to append to as cases finish (so an interrupted run keeps them)."""
    iterator: Iterable[Case] = cases
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(cases, desc=setting.label, unit="case", file=sys.stderr, dynamic_ncols=True)
        iterator = bar
    results = [] if results is None else results
    for case in iterator:
        result = run_case(backend, registry, case, setting, run)
        results.append(result)
        if bar is not None:
            s = summarise(results)
            right = "-" if s.answer_right_rate is None else f"{s.answer_right_rate:.2f}"
            bar.set_postfix(
                acc=f"{s.tool_accuracy:.2f}", right=right, last=result.outcome, refresh=False
            )
    return results
