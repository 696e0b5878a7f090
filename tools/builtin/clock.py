"""Current date and time in a named time zone, so the model need not guess "now"."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from typing import Any

from tools.registry import Tool, make_tool

DEFAULT_TIMEZONE = "Asia/Shanghai"

# Names people and models use that are not IANA keys.
ALIASES: dict[str, str] = {
    "beijing": "Asia/Shanghai",
    "北京": "Asia/Shanghai",
    "china": "Asia/Shanghai",
    "中国": "Asia/Shanghai",
    "cst": "Asia/Shanghai",
    "北京时间": "Asia/Shanghai",
    "shanghai": "Asia/Shanghai",
    "上海": "Asia/Shanghai",
    "hong kong": "Asia/Hong_Kong",
    "tokyo": "Asia/Tokyo",
    "london": "Europe/London",
    "paris": "Europe/Paris",
    "berlin": "Europe/Berlin",
    "new york": "America/New_York",
    "los angeles": "America/Los_Angeles",
    "utc": "UTC",
    "gmt": "UTC",
    "z": "UTC",
}

# Questions about "now": the model cannot know it without the clock.
NEEDED_WHEN = (
    r"(?i)\bwhat time\b|\bcurrent time\b|\btime is it\b|\btoday'?s date\b|\bwhat day\b"
    r"|几点|时间|几月几号|日期|星期几"
)

WEEKDAYS_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


class ClockError(ValueError):
    """Unknown or malformed time zone; the message says what to use instead."""


def resolve_timezone(name: str) -> tzinfo:
    key = name.strip()
    key = ALIASES.get(key.casefold(), ALIASES.get(key, key))
    if not key:
        raise ClockError("the timezone is empty; use an IANA name such as 'Asia/Shanghai'")
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        if not zoneinfo.available_timezones():
            raise ClockError(
                "no time-zone data is installed on this machine (pip install tzdata)"
            ) from None
        raise ClockError(
            f"unknown timezone {name!r}; use an IANA name such as 'Asia/Shanghai', "
            "'Europe/London', 'America/New_York' or 'UTC'"
        ) from None


def now_in(tz_name: str, now: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """The current moment in `tz_name`; `now` (aware, any zone) is injectable for tests."""
    tz = resolve_timezone(tz_name)
    moment = (now() if now is not None else datetime.now(timezone.utc)).astimezone(tz)
    offset = moment.strftime("%z")
    return {
        "timezone": getattr(tz, "key", str(tz)),
        "datetime": moment.isoformat(timespec="seconds"),
        "date": moment.date().isoformat(),
        "time": moment.strftime("%H:%M:%S"),
        "weekday": moment.strftime("%A"),
        "weekday_zh": WEEKDAYS_ZH[moment.weekday()],
        "utc_offset": f"{offset[:3]}:{offset[3:]}",
    }


def make_clock_tool(now: Callable[[], datetime] | None = None) -> Tool:
    """The clock tool; `now` replaces the system clock (tests, replays)."""

    def clock(timezone: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
        """Get the current date, time and weekday in a time zone.

        Args:
            timezone: An IANA time zone name such as "Asia/Shanghai", "Europe/London" or "UTC".
        """
        return now_in(timezone, now)

    return make_tool(
        clock, name="clock", name_for_human="Clock", timeout=5.0, needed_when=NEEDED_WHEN
    )
