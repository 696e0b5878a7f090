"""What a right answer must contain, and the check of one answer against it.

A case's "answer" object (eval/README.md documents it):

    {"all": ["业务员|Salesperson"], "none": ["经理|Manager"]}       regexes, case-insensitive
    {"number": 748.8}                                             748.8, 748.80, 7,488.0 ...
    {"date": "05-05"}                                              5月5日, May 5, 5/5, 05-05
    {"clock": "Asia/Shanghai", "kind": "time"}                     against the real clock
    {"clock": "Asia/Shanghai", "months_until": "05-05"}            the right number of months

Facts that depend on "now" are checked against the clock over the turn's own run time
(with a few minutes' slack), so the case file never goes stale. An answer is right when it
is not junk (agent.answers.junk_kind: the app's own rule) and every part of the spec holds.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

from agent.answers import junk_kind
from eval.facts import (
    clock_times,
    counts,
    date_pattern,
    durations_minutes,
    normalize,
    numbers,
    weekday_pattern,
)

CLOCK_KINDS = ("time", "date", "weekday", "minutes_to_midnight")
SLACK_MINUTES = 5  # "time within a few minutes"
_KEYS = {"all", "none", "number", "tolerance", "date", "clock", "kind"}
_KEYS |= {"months_until", "days_until", "min_chars"}


class AnswerSpecError(ValueError):
    """A case's answer object is malformed; the message says which part."""


@dataclass(frozen=True)
class AnswerSpec:
    all: tuple[str, ...] = ()  # each regex must match
    none: tuple[str, ...] = ()  # no regex may match
    numbers: tuple[float, ...] = ()  # each must be written, as a number
    tolerance: float = 1e-6  # relative, for numbers
    dates: tuple[tuple[int, int], ...] = ()  # (month, day): each must be written
    clock: str | None = None  # IANA zone of the run-time checks
    kinds: tuple[str, ...] = ()  # CLOCK_KINDS, against the clock in that zone
    months_until: tuple[int, int] | None = None  # (month, day) of the next occurrence
    days_until: tuple[int, int] | None = None
    min_chars: int = 0  # chit-chat: at least this many characters of words


@dataclass(frozen=True)
class Window:
    """When the turn ran (aware datetimes): clock facts may be right at any moment of it."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def at(cls, moment: dt.datetime) -> Window:
        return cls(moment, moment)


@dataclass(frozen=True)
class AnswerCheck:
    right: bool
    junk: str | None  # agent.answers.junk_kind of the answer
    problems: tuple[str, ...] = ()  # what was missing or wrong, for the report


def _strings(value: Any, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
        raise AnswerSpecError(f"{key!r} must be a non-empty string or a list of them")
    for pattern in items:
        try:
            re.compile(pattern)
        except re.error as e:
            raise AnswerSpecError(f"{key!r}: bad regex {pattern!r} ({e})") from None
    return tuple(items)


def _month_day(value: Any, key: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{1,2})-(\d{1,2})", value) if isinstance(value, str) else None
    if m is None:
        raise AnswerSpecError(f"{key!r} must be a month-day 'MM-DD', got {value!r}")
    month, day = int(m[1]), int(m[2])
    try:
        dt.date(2000, month, day)  # a leap year: 02-29 is a date
    except ValueError:
        raise AnswerSpecError(f"{key!r}: {value!r} is not a date") from None
    return month, day


def parse_answer_spec(data: Any) -> AnswerSpec:
    """Validate a case's answer object; AnswerSpecError names the part that is wrong."""
    if not isinstance(data, dict) or not data:
        raise AnswerSpecError("'answer' must be a non-empty object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise AnswerSpecError(f"unknown answer key(s) {unknown}; known: {sorted(_KEYS)}")
    nums = data.get("number", [])
    nums = [nums] if not isinstance(nums, list) else nums
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in nums):
        raise AnswerSpecError("'number' must be a number or a list of numbers")
    tolerance = data.get("tolerance", 1e-6)
    if not isinstance(tolerance, int | float) or tolerance < 0:
        raise AnswerSpecError("'tolerance' must be a number >= 0")
    dates = data.get("date", [])
    dates = [dates] if isinstance(dates, str) else dates
    if not isinstance(dates, list):
        raise AnswerSpecError("'date' must be 'MM-DD' or a list of them")
    kinds = data.get("kind", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or any(k not in CLOCK_KINDS for k in kinds):
        raise AnswerSpecError(f"'kind' must be one or a list of {list(CLOCK_KINDS)}")
    clock = data.get("clock")
    needs_clock = kinds or "months_until" in data or "days_until" in data
    if clock is not None:
        if not isinstance(clock, str):
            raise AnswerSpecError("'clock' must be an IANA time zone name")
        try:
            zoneinfo.ZoneInfo(clock)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise AnswerSpecError(f"'clock': unknown time zone {clock!r}") from None
    if needs_clock and clock is None:
        raise AnswerSpecError("'kind', 'months_until' and 'days_until' need 'clock' (a zone)")
    if clock is not None and not needs_clock:
        raise AnswerSpecError("'clock' needs 'kind', 'months_until' or 'days_until'")
    min_chars = data.get("min_chars", 0)
    if not isinstance(min_chars, int) or isinstance(min_chars, bool) or min_chars < 0:
        raise AnswerSpecError("'min_chars' must be a whole number >= 0")
    return AnswerSpec(
        all=_strings(data["all"], "all") if "all" in data else (),
        none=_strings(data["none"], "none") if "none" in data else (),
        numbers=tuple(float(n) for n in nums),
        tolerance=float(tolerance),
        dates=tuple(_month_day(d, "date") for d in dates),
        clock=clock,
        kinds=tuple(kinds),
        months_until=_month_day(data["months_until"], "months_until")
        if "months_until" in data
        else None,
        days_until=_month_day(data["days_until"], "days_until") if "days_until" in data else None,
        min_chars=min_chars,
    )


# --------------------------------------------------------------------------- clock facts


def _moments(spec: AnswerSpec, window: Window) -> list[dt.datetime]:
    """The turn's start and end (widened by the slack) in the spec's zone, and each midnight
    between them: every local date the turn touched is among their dates."""
    tz = zoneinfo.ZoneInfo(spec.clock or "UTC")
    slack = dt.timedelta(minutes=SLACK_MINUTES)
    start, end = (window.start - slack).astimezone(tz), (window.end + slack).astimezone(tz)
    out, day = [start], start
    while day.date() < end.date():
        day = dt.datetime.combine(day.date() + dt.timedelta(days=1), dt.time(), tz)
        out.append(day)
    return [*out, end]


def _next(month: int, day: int, today: dt.date) -> dt.date:
    """The next occurrence of a month-day on or after today (02-29 falls back to 02-28)."""
    for year in (today.year, today.year + 1, today.year + 2):
        try:
            when = dt.date(year, month, day)
        except ValueError:
            when = dt.date(year, month, 28)
        if when >= today:
            return when
    raise AssertionError("unreachable")


def months_until(month: int, day: int, today: dt.date) -> set[int]:
    """The answers a person may give: the count of calendar months (May minus December is 5),
    full months, and full months rounded by the days left over."""
    when = _next(month, day, today)
    by_name = (when.year - today.year) * 12 + when.month - today.month
    full = by_name - (when.day < today.day)
    rounded = full + ((when - _add_months(today, full)).days >= 15)
    return {by_name, full, rounded}


def _add_months(date: dt.date, months: int) -> dt.date:
    year, month = divmod(date.month - 1 + months, 12)
    for day in (date.day, 30, 29, 28):
        try:
            return dt.date(date.year + year, month + 1, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _has_number(text: str, wanted: float, tolerance: float) -> bool:
    found = numbers(text)
    return any(math.isclose(x, wanted, rel_tol=tolerance, abs_tol=1e-9) for x in found)


def _minute_of_day(moment: dt.datetime) -> int:
    return moment.hour * 60 + moment.minute


def _time_right(text: str, moments: list[dt.datetime]) -> bool:
    """A written time within the slack of the clock at some moment of the turn."""
    lo, hi = _minute_of_day(moments[0]), _minute_of_day(moments[-1])
    span = (hi - lo) % 1440  # the turn's minutes of day, wrapping past midnight
    for start, end in clock_times(text):
        for minute in range(start, end + 1):
            if (minute - lo) % 1440 <= span:
                return True
    return False


def _clock_problems(spec: AnswerSpec, text: str, window: Window) -> list[str]:
    moments = _moments(spec, window)
    dates = {m.date() for m in moments}
    zone = spec.clock
    problems = []
    for kind in spec.kinds:
        if kind == "time":
            ok = _time_right(text, moments)
        elif kind == "date":
            ok = any(date_pattern(d.month, d.day).search(text) for d in dates)
        elif kind == "weekday":
            ok = any(weekday_pattern(d.weekday()).search(text) for d in dates)
        else:  # minutes_to_midnight: between the values at the end and at the start
            left = [
                (dt.datetime.combine(m.date() + dt.timedelta(days=1), dt.time(), m.tzinfo) - m)
                / dt.timedelta(minutes=1)
                for m in (moments[0], moments[-1])
            ]
            lo, hi = min(left), max(left)
            written = counts(text, "minutes") + durations_minutes(text)
            ok = any(lo - 1 <= x <= hi + 1 for x in written)
        if not ok:
            problems.append(f"{kind} in {zone}")
    if spec.months_until is not None:
        right = set().union(*(months_until(*spec.months_until, d) for d in dates))
        if not right & set(counts(text, "months") or numbers(text)):
            problems.append(f"months until {spec.months_until}: one of {sorted(right)}")
    if spec.days_until is not None:
        right = {(_next(*spec.days_until, d) - d).days for d in dates}
        right |= {n + 1 for n in right}  # counting today too
        if not right & set(counts(text, "days") or numbers(text)):
            problems.append(f"days until {spec.days_until}: one of {sorted(right)}")
    return problems


# --------------------------------------------------------------------------- the check


def spec_problems(spec: AnswerSpec, answer: str, window: Window) -> list[str]:
    """What the answer lacks or gets wrong against the spec (empty: all of it holds)."""
    text = normalize(answer)
    problems = [f"missing {p!r}" for p in spec.all if not re.search(p, text, re.IGNORECASE)]
    problems += [f"wrong {p!r}" for p in spec.none if re.search(p, text, re.IGNORECASE)]
    problems += [
        f"missing number {n:g}" for n in spec.numbers if not _has_number(text, n, spec.tolerance)
    ]
    problems += [
        f"missing date {m:02d}-{d:02d}"
        for m, d in spec.dates
        if not date_pattern(m, d).search(text)
    ]
    if spec.clock is not None:
        problems += _clock_problems(spec, text, window)
    if len(text.strip()) < spec.min_chars:
        problems.append(f"shorter than {spec.min_chars} characters")
    return problems


def check_answer(spec: AnswerSpec, answer: str, window: Window) -> AnswerCheck:
    """Right: not junk, and every part of the spec holds (pure: the clock is the window)."""
    junk = junk_kind(answer)
    if junk is not None:
        return AnswerCheck(False, junk, (f"junk ({junk})",))
    problems = spec_problems(spec, answer, window)
    return AnswerCheck(not problems, None, tuple(problems))
