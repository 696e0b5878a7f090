"""The clock: timezone-aware now, weekday, ISO string; unknown zones give clear errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tools.builtin.clock import ClockError, make_clock_tool, now_in
from tools.registry import ToolRegistry

FIXED = datetime(2026, 2, 14, 23, 30, 5, tzinfo=timezone.utc)


def test_fixed_moment_in_several_zones():
    sh = now_in("Asia/Shanghai", lambda: FIXED)
    assert sh["datetime"] == "2026-02-15T07:30:05+08:00"
    assert sh["date"] == "2026-02-15" and sh["time"] == "07:30:05"
    assert sh["weekday"] == "Sunday" and sh["weekday_zh"] == "星期日"
    assert sh["utc_offset"] == "+08:00" and sh["timezone"] == "Asia/Shanghai"
    ny = now_in("America/New_York", lambda: FIXED)
    assert ny["datetime"] == "2026-02-14T18:30:05-05:00" and ny["weekday"] == "Saturday"
    summer = now_in("America/New_York", lambda: FIXED.replace(month=7))
    assert summer["utc_offset"] == "-04:00"  # daylight saving time is applied
    assert now_in("UTC", lambda: FIXED)["datetime"] == "2026-02-14T23:30:05+00:00"


@pytest.mark.parametrize(
    ("alias", "zone", "offset"),
    [
        ("Beijing", "Asia/Shanghai", "+08:00"),
        ("北京", "Asia/Shanghai", "+08:00"),
        ("beijing ", "Asia/Shanghai", "+08:00"),
        ("北京时间", "Asia/Shanghai", "+08:00"),
        ("Tokyo", "Asia/Tokyo", "+09:00"),
        ("New York", "America/New_York", "-05:00"),
        ("UTC", "UTC", "+00:00"),
        ("gmt", "UTC", "+00:00"),
    ],
)
def test_aliases(alias, zone, offset):
    moment = now_in(alias, lambda: FIXED)
    assert (moment["timezone"], moment["utc_offset"]) == (zone, offset)


def test_real_clock_through_the_registry():
    reg = ToolRegistry([make_clock_tool()])
    res = reg.call("clock", {})
    assert res.ok
    data = json.loads(res.text)
    moment = datetime.fromisoformat(data["datetime"])
    assert moment.utcoffset() == timedelta(hours=8)
    assert abs((moment - datetime.now(timezone.utc)).total_seconds()) < 60
    assert json.loads(reg.call("clock", {"timezone": "Europe/London"}).text)["timezone"] == (
        "Europe/London"
    )
    assert reg.get("clock").parameters["properties"]["timezone"]["default"] == "Asia/Shanghai"


@pytest.mark.parametrize("bad", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "", " "])
def test_unknown_timezone_is_a_clear_error(bad):
    with pytest.raises(ClockError, match="timezone"):
        now_in(bad)
    res = ToolRegistry([make_clock_tool()]).call("clock", {"timezone": bad})
    assert not res.ok and "IANA" in res.text
