"""Answer checks: what the eval reads out of an answer's words, and right vs wrong vs junk.

Pure functions, so every table here is exact. The clock-dependent checks run against a fixed
window (the turn's run time), never the machine's clock. The last table runs right and wrong
answers for shipped cases through the specs in eval/cases.jsonl, so a spec that is too loose
(passes a wrong answer) or too strict (fails a right one) shows here.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from eval.answers import (
    AnswerSpecError,
    Window,
    check_answer,
    months_until,
    parse_answer_spec,
)
from eval.cases import load_cases
from eval.facts import (
    clock_times,
    counts,
    date_pattern,
    durations_minutes,
    numbers,
    weekday_pattern,
)

CASES = {c.id: c for c in load_cases(Path(__file__).resolve().parent.parent / "eval/cases.jsonl")}
UTC = dt.timezone.utc
# Wednesday 2026-12-02, 14:55 in Shanghai (06:55 UTC); a 40-second turn.
START = dt.datetime(2026, 12, 2, 6, 55, 0, tzinfo=UTC)
WINDOW = Window(START, START + dt.timedelta(seconds=40))


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("结果是 56,088。", 56088),
        ("3840 × 0.195 = 748.80", 748.8),
        ("It is 7,488.0", 7488),
        ("还有五个月", 5),
        ("还有十二个月", 12),
        ("twelve months", 12),
        ("３２９３", 3293),  # full-width digits
    ],
)
def test_numbers_are_read_in_every_form(text: str, wanted: float) -> None:
    assert wanted in numbers(text)


def test_numbers_are_whole_tokens() -> None:
    assert 748.8 not in numbers("74880") and 5 not in numbers("56088")


@pytest.mark.parametrize(
    "text",
    ["5月5日", "5月5号", "May 5", "May 5th", "5 May", "5th of May", "5/5", "05-05"]
    + ["1990-05-05", "1990年5月5日", "on may 5."],
)
def test_a_date_in_any_common_form(text: str) -> None:
    assert date_pattern(5, 5).search(text)


@pytest.mark.parametrize("text", ["5月15日", "May 15", "15/5", "5/15", "10月3日", "May"])
def test_a_different_date_does_not_match(text: str) -> None:
    assert not date_pattern(5, 5).search(text)


def test_october_third_is_not_the_thirtieth() -> None:
    assert date_pattern(10, 3).search("October 3") and date_pattern(10, 3).search("10月3号")
    assert not date_pattern(10, 3).search("October 30") and not date_pattern(10, 3).search("10/30")


@pytest.mark.parametrize(
    ("text", "weekday"),
    [("Wednesday", 2), ("wed.", 2), ("星期三", 2), ("周三", 2), ("星期天", 6), ("礼拜日", 6)],
)
def test_weekdays(text: str, weekday: int) -> None:
    assert weekday_pattern(weekday).search(text)
    assert not weekday_pattern((weekday + 1) % 7).search(text)


@pytest.mark.parametrize(
    ("text", "minute"),
    [
        ("14:55", 895),
        ("2026-12-02T14:55:03+08:00", 895),
        ("下午2点55分", 895),
        ("14点55分", 895),
        ("2:55 PM", 895),
        ("2:55", 895),  # no am/pm: morning or afternoon
        ("十四点五十五分", 895),
        ("7 pm", 1140),
    ],
)
def test_clock_times(text: str, minute: int) -> None:
    assert any(lo <= minute <= hi for lo, hi in clock_times(text))


@pytest.mark.parametrize(
    ("text", "unit", "wanted"),
    [
        ("还有5个月", "months", [5.0]),
        ("还有五个多月", "months", [5.0]),
        ("in five months", "months", [5.0]),
        ("less than a month", "months", [1.0]),
        ("生日是5月5日", "months", []),  # May, not a count of months
        ("还有17天", "days", [17.0]),
        ("12月19日", "days", []),
        ("545 minutes", "minutes", [545.0]),
    ],
)
def test_counts_are_numbers_before_their_unit(text: str, unit: str, wanted: list) -> None:
    assert counts(text, unit) == wanted


def test_hour_only_chinese_time_is_the_whole_hour_with_duo() -> None:
    assert (900, 959) in clock_times("下午3点多")
    assert durations_minutes("还有 9 小时 5 分钟") == [545.0]


@pytest.mark.parametrize(
    ("today", "month_day", "wanted"),
    [
        (dt.date(2026, 2, 1), (5, 5), {3}),
        (dt.date(2026, 12, 2), (5, 5), {5}),
        (dt.date(2026, 12, 10), (5, 5), {4, 5}),  # 4 months 25 days
        (dt.date(2026, 12, 2), (12, 19), {0, 1}),  # 17 days
        (dt.date(2026, 10, 3), (10, 3), {0}),  # today
        (dt.date(2026, 10, 4), (10, 3), {11, 12}),  # just missed: next year
    ],
)
def test_months_until(today: dt.date, month_day: tuple[int, int], wanted: set[int]) -> None:
    assert months_until(*month_day, today) == wanted


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "non-empty object"),
        ({}, "non-empty object"),
        ({"al": ["x"]}, "unknown answer key"),
        ({"all": "("}, "bad regex"),
        ({"all": [""]}, "non-empty string"),
        ({"number": "12"}, "'number' must be a number"),
        ({"number": True}, "'number' must be a number"),
        ({"date": "5月5日"}, "month-day 'MM-DD'"),
        ({"date": "02-30"}, "is not a date"),
        ({"kind": "time"}, "need 'clock'"),
        ({"clock": "Asia/Shanghai"}, "'clock' needs"),
        ({"clock": "Mars/Olympus", "kind": "time"}, "unknown time zone"),
        ({"clock": "UTC", "kind": "hour"}, "'kind' must be"),
        ({"min_chars": -1}, "'min_chars'"),
    ],
)
def test_bad_specs_name_the_part(data: object, message: str) -> None:
    with pytest.raises(AnswerSpecError, match=message):
        parse_answer_spec(data)


def test_junk_is_never_right_even_when_it_holds_the_fact() -> None:
    spec = parse_answer_spec({"date": "05-05"})
    for junk, kind in [
        ('{"name": "张三", "birthday": "05-05"}', "json"),
        ('<tool_call>{"name": "employee_db", "arguments": {"name": "张三"}}</tool_call>', "call"),
        ("", "empty"),
        ("True", "json"),
    ]:
        check = check_answer(spec, junk, WINDOW)
        assert (check.right, check.junk) == (False, kind), junk


def test_the_time_must_be_within_a_few_minutes_of_the_turn() -> None:
    spec = parse_answer_spec({"clock": "Asia/Shanghai", "kind": "time"})
    assert check_answer(spec, "现在是下午2点55分。", WINDOW).right
    assert check_answer(spec, "It's 14:59 in Shanghai.", WINDOW).right  # 4 min after the end
    assert not check_answer(spec, "It's 15:10 in Shanghai.", WINDOW).right
    assert not check_answer(spec, "It's 06:55 UTC.", WINDOW).right  # the wrong zone
    # a turn that runs over midnight accepts either side of it
    late = dt.datetime(2026, 12, 2, 15, 58, tzinfo=UTC)  # 23:58 in Shanghai
    over = Window(late, late + dt.timedelta(minutes=4))
    assert check_answer(spec, "00:01", over).right and check_answer(spec, "23:58", over).right


def test_a_wrong_problem_says_why() -> None:
    spec = parse_answer_spec({"all": ["业务员"], "none": ["经理"], "number": 3})
    check = check_answer(spec, "张三是业务经理，还有 8 个月。", WINDOW)
    assert not check.right and check.junk is None
    assert check.problems == ("missing '业务员'", "wrong '经理'", "missing number 3")


# The shipped specs against answers a person would accept and ones they would not (the
# employee data is the seed's: 张三 男 5月5日 业务员, 李四 女 10月3日 画师, 王五 男 12月19日
# 业务经理; the window is Wednesday 2026-12-02 14:55 in Shanghai).
SHIPPED = [
    ("zh-emp-01", "张三的职位是业务员。", "张三是业务经理。"),
    ("en-emp-01", "Zhang San works as a Salesperson.", "Zhang San is a Sales Manager."),
    ("zh-emp-02", "李四的生日是10月3日。", "李四的生日是10月30日。"),
    ("en-emp-02", "Li Si's birthday is on October 3.", "Li Si was born on May 5."),
    ("zh-emp-03", "王五是业务经理。", "王五是业务员。"),
    ("en-emp-03", "王五 is the Sales Manager.", "王五 is a painter."),
    ("zh-emp-04", "查无此人：数据库里没有赵六。", "赵六是业务员。"),
    ("en-emp-04", "No, there is no employee called 赵六.", "Yes, 赵六 is a Painter."),
    ("zh-emp-05", "张三，男，职位是业务员。", "张三，女，职位是业务员。"),
    (
        "en-emp-05",
        "张三: male, born 5月5日, Salesperson.",
        "张三: male, born October 3, Salesperson.",
    ),
    ("zh-calc-01", "123 × 456 = 56088", "123 × 456 = 56188"),
    ("zh-calc-04", "打八五折后是 254.15 元。", "打八五折后是 254 元。"),
    ("en-calc-04", "A 15% tip is $12.90.", "A 15% tip is $13."),
    ("zh-calc-07", "3840 的 19.5% 是 748.8。", "3840 的 19.5% 是 74880。"),
    ("en-calc-07", "It is 748.80.", "About 750."),
    ("zh-clock-01", "现在北京时间是 14:55。", "现在北京时间是 06:55。"),
    ("zh-clock-03", "今天是12月2日，星期三。", "今天是12月2日，星期四。"),
    ("en-clock-02", "Today is December 2, 2026 in Shanghai.", "Today is December 3."),
    ("en-clock-04", "It is 1:55 AM in New York.", "It is 14:55 in New York."),
    ("en-clock-01", "It's 15:55 in Tokyo.", "It's 14:55 in Tokyo."),
    ("en-py-04", "The output is QWEN.", "The output is qwen."),
    ("en-py-01", "0, 1, 1, 2, 3, 5, 8, 13, 21, 34", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"),
    ("zh-py-04", "排序结果：[1, 3, 5, 9]", "排序结果：[9, 5, 3, 1]"),
    ("zh-multi-01", "张三的生日是5月5日，距离今天还有5个月。", "张三的生日是5月5日，还有8个月。"),
    ("en-multi-02", "Li Si's next birthday (October 3) is 10 months away.", "It is 2 months away."),
    ("zh-multi-03", "王五的生日是12月19日，还有17天。", "王五的生日是12月19日，还有30天。"),
    ("zh-multi-04", "张三的生日（5月5日）比李四（10月3日）早。", "李四的生日更早，张三是5月5日。"),
    ("zh-multi-05", "现在是14:55，距离今天结束还有545分钟。", "现在是14:55，还有600分钟。"),
    ("en-multi-05", "It is 14:55; 9 hours 5 minutes until midnight.", "It is 14:55; 200 minutes."),
    ("zh-seed-01", "张三的生日在5月，现在是2月，还有3个月。", "张三的生日在10月，还有8个月。"),
    ("en-seed-01", "His birthday is in May: 3 months from February.", "In May, so 5 months."),
    ("zh-none-03", "中国的首都是北京。", "中国的首都是上海。"),
    ("zh-none-06", "水的化学式是 H₂O。", "水的化学式是 CO2。"),
    ("en-none-02", "The capital of France is Paris.", "The capital of France is Lyon."),
    ("en-none-05", "William Shakespeare wrote it.", "Charles Dickens wrote it."),
    ("en-subset-01", "Hello! 你好! Hola!", "Hello!"),
]


@pytest.mark.parametrize(("case_id", "right", "wrong"), SHIPPED)
def test_shipped_specs_pass_right_answers_and_fail_wrong_ones(
    case_id: str, right: str, wrong: str
) -> None:
    spec = CASES[case_id].answer
    assert spec is not None
    ok = check_answer(spec, right, WINDOW)
    assert ok.right, (case_id, ok.problems)
    assert not check_answer(spec, wrong, WINDOW).right, case_id


def test_numbers_inside_dates_and_times_are_not_the_answer() -> None:
    assert numbers("张三的生日是5月5日，现在 14:55。") == []
    assert numbers("Li Si: October 3; 2026-12-02T14:55:03+08:00") == []
    three = parse_answer_spec({"number": 3})
    assert not check_answer(three, "李四的生日是10月3日。", WINDOW).right
    assert check_answer(three, "5 - 2 = 3", WINDOW).right


def test_a_bare_count_answers_a_how_many_months_question() -> None:
    spec = CASES["en-multi-02"].answer  # Dec 2 -> Oct 3: 10 months
    assert spec is not None
    assert check_answer(spec, "10", WINDOW).right
    assert not check_answer(spec, "It is on October 3.", WINDOW).right  # the 10 is the month
    may = CASES["zh-multi-01"].answer  # Dec 2 -> May 5: 5 months
    assert may is not None and not check_answer(may, "张三的生日是5月5日。", WINDOW).right
