"""Scoring one turn's event stream against its case, and summing the scores per setting.

Qwen's three tool metrics (tool selection, Rouge-L of the arguments, false positives), plus
what the user got: whether the final answer is right (eval/answers.py), junk, or the agent's
fallback (the readable tool result shown because the model did not phrase an answer).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.answers import junk_kind
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
from eval.answers import Window, check_answer
from eval.cases import Case
from eval.metrics import arguments_rouge_l, arguments_text, rouge_l
from llm.types import TextDelta


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
    answer_right: bool | None = None  # None when the case has no answer spec
    junk: str | None = None  # agent.answers.junk_kind of what the user got (empty: nothing)
    fallback: bool = False  # the agent showed the last tool result instead of the model's
    answer_problems: tuple[str, ...] = ()  # why the answer is not right
    aids_fired: tuple[str, ...] = ()  # the aids that acted, in order
    started: str = ""  # when the turn ran (ISO, UTC): clock answers are checked against it
    ended: str = ""
    error: str = ""
    transcript: str = ""  # the model's raw text, steps separated by "\n--- step N ---\n"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        """From a JSON report (older reports lack the newer fields: they get defaults)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        for key in ("called_tools", "answer_problems", "aids_fired"):
            if key in kept:
                kept[key] = tuple(kept[key])
        return cls(**kept)


_OUTCOMES = {
    FinalAnswer: "final_answer",
    StepLimitReached: "step_limit",
    Stopped: "stopped",
    AgentFailed: "failed",
}
_NO_CLOCK = Window.at(dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc))  # for clock-free specs


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
    window: Window | None = None,
) -> CaseResult:
    """Score one turn's event stream against its case (pure: no model, no clock).

    defaults: the expected tool's parameter defaults, filled into both the call and the
    expectation before Rouge-L, so clock() and clock(timezone="Asia/Shanghai") score alike.
    window: when the turn ran, for answers about "now" (required when the case has any).
    """
    calls: list[ToolCall] = []
    invalid: set[str] = set()  # call ids the agent refused (unknown tool, unusable arguments)
    step_errors = repaired = 0
    fired: list[str] = []
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
        elif isinstance(ev, AidFired):
            fired.append(ev.aid)
        elif type(ev) in _OUTCOMES:
            terminal = ev
    names = tuple(c.name for c in calls)
    wanted = case.expected_tool
    rouge: float | None = None
    scored = ""
    if wanted is not None:
        rouge, scored = _score_arguments(calls, invalid, wanted, case.expected_arguments, defaults)
    seq_ok = None
    if case.expected_sequence and len(case.expected_sequence) > 1:
        seq_ok = _collapse(names) == _collapse(case.expected_sequence)
    final = isinstance(terminal, FinalAnswer) and not error
    answer = terminal.text if isinstance(terminal, FinalAnswer) else ""
    right: bool | None = None
    problems: tuple[str, ...] = ()
    if case.answer is not None:
        if window is None and case.answer.clock is not None:
            raise ValueError(f"case {case.id}: its answer depends on the clock; pass window")
        check = check_answer(case.answer, answer if final else "", window or _NO_CLOCK)
        right, problems = check.right, check.problems
        if not final:
            problems = (f"no final answer ({_OUTCOMES.get(type(terminal), 'error')})",)
    outcome = "error" if error else _OUTCOMES.get(type(terminal), "error")
    return CaseResult(
        id=case.id,
        lang=case.lang,
        category=case.category,
        expected_tool=wanted,
        called_tools=names,
        scored_arguments=scored,
        tool_correct=(calls[0].name if calls else None) == wanted,
        arguments_rouge_l=rouge,
        false_positive=bool(calls) if wanted is None else None,
        sequence_correct=seq_ok,
        final_answer=final,
        outcome=outcome,
        steps=terminal.steps if terminal is not None else 0,
        seconds=seconds,
        step_errors=step_errors,
        repaired_calls=repaired,
        rejected_answers=fired.count("reject"),
        answer=answer,
        answer_right=right,
        junk=junk_kind(answer if final else ""),
        fallback=isinstance(terminal, FinalAnswer) and terminal.fallback,
        answer_problems=problems,
        aids_fired=tuple(fired),
        started=window.start.isoformat(timespec="seconds") if window else "",
        ended=window.end.isoformat(timespec="seconds") if window else "",
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
    answer_right_rate: float | None  # over cases with an answer spec
    junk_rate: float | None  # what the user got was junk (or nothing)
    fallback_rate: float | None  # the agent showed the tool result instead of an answer
    fallback_right: int  # fallbacks that were right all the same
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
    spec_cases = [r for r in results if r.answer_right is not None]
    return Summary(
        cases=len(results),
        tool_accuracy=_mean([float(r.tool_correct) for r in results]),
        arguments_rouge_l=_mean([r.arguments_rouge_l or 0.0 for r in tool_cases]),
        arguments_rouge_l_selected=_mean([r.arguments_rouge_l or 0.0 for r in selected]),
        false_positive_rate=_mean([float(bool(r.false_positive)) for r in none_cases]),
        sequence_accuracy=_mean([float(bool(r.sequence_correct)) for r in seq_cases]),
        final_answer_rate=_mean([float(r.final_answer) for r in results]),
        answer_right_rate=_mean([float(bool(r.answer_right)) for r in spec_cases]),
        junk_rate=_mean([float(r.junk is not None) for r in results]),
        fallback_rate=_mean([float(r.fallback) for r in results]),
        fallback_right=sum(r.fallback and bool(r.answer_right) for r in results),
        mean_steps=_mean([float(r.steps) for r in results]),
        mean_seconds=_mean([r.seconds for r in results]),
        step_errors=sum(r.step_errors for r in results),
        repaired_calls=sum(r.repaired_calls for r in results),
        rejected_answers=sum(r.rejected_answers for r in results),
        errors=sum(r.outcome == "error" for r in results),
    )
