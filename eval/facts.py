"""Reading facts out of an answer's words: numbers, month-day dates, clock times, weekdays.

People and models write the same fact many ways ("5月5日", "May 5", "5/5", "05-05";
"15:20", "下午3点20分", "3:20 PM"; "五个月"), so the answer checks compare what these
functions read, never the raw text. All of them are pure and tolerant of wording; none of
them decides what is right (that is eval/answers.py).
"""

from __future__ import annotations

import re
import unicodedata

MONTHS_EN = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
WEEKDAYS_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_ZH = "一二三四五六日"

_NUMBER = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\d.])\d+(?:\.\d+)?")
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7}
_ZH_DIGITS |= {"八": 8, "九": 9}
# Numerals in words count only before a unit: 张三 is a name, 三个月 is a number.
_ZH_NUMERAL = re.compile(r"[零一二两三四五六七八九十]+(?=\s*(?:个|天|月|分|小时|年|周|岁|次|元))")
_EN_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve").split()
_EN_NUMERAL = re.compile(
    r"\b(" + "|".join(_EN_WORDS) + r")(?=\s+(?:months?|days?|hours?|minutes?|years?|weeks?)\b)",
    re.IGNORECASE,
)


def normalize(text: str) -> str:
    """NFKC (full-width digits and colons, subscript ₂) so one pattern fits every form."""
    return unicodedata.normalize("NFKC", text)


def _zh_numeral(word: str) -> int | None:
    """Chinese numerals below 100: 五, 十二, 二十, 三十一."""
    if "十" not in word:
        return _ZH_DIGITS[word] if len(word) == 1 else None
    tens, _, ones = word.partition("十")
    if "十" in ones or len(tens) > 1 or len(ones) > 1:
        return None
    return (_ZH_DIGITS[tens] if tens else 1) * 10 + (_ZH_DIGITS[ones] if ones else 0)


_MONTH_NAMES = "|".join([*MONTHS_EN, *(m[:3] for m in MONTHS_EN)])
_DATE_OR_TIME = re.compile(
    r"\d{4}\s*[-/年.]\s*\d{1,2}\s*[-/月.]\s*\d{1,2}\s*[日号號]?"  # 2026-12-02, 2026年12月2日
    r"|\d{1,2}\s*月\s*\d{1,2}\s*[日号號]?"  # 5月5日
    r"|\d{1,2}\s*月"  # 5月 (May; "5个月" is a count)
    rf"|\b(?:{_MONTH_NAMES})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b"  # May 5th
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTH_NAMES})\b"  # 5th of May
    r"|\d{1,2}\s*[:：]\s*\d{2}(?:\s*[:：]\s*\d{2})?"  # 14:55:03
    r"|[+-]\d{2}:\d{2}",  # +08:00
    re.IGNORECASE,
)


def without_dates(text: str) -> str:
    """The text with dates and clock times cut out: the 5 in "5月5日" is not a number the
    answer gives, nor the 14 in "14:55"."""
    return _DATE_OR_TIME.sub(" ", normalize(text))


def numbers(text: str) -> list[float]:
    """Every number written in the text outside dates and times: digits (with thousands
    commas, decimals), Chinese numerals below 100 and English number words up to twelve
    before a unit ("五个月", "five months"). Signs are ignored: in "9876-1234" the minus is
    an operator."""
    text = without_dates(text)
    found = [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]
    for m in _ZH_NUMERAL.finditer(text):
        value = _zh_numeral(m.group())
        if value is not None:
            found.append(float(value))
    found += [float(_EN_WORDS.index(m.group().lower())) for m in _EN_NUMERAL.finditer(text)]
    return found


def date_pattern(month: int, day: int) -> re.Pattern[str]:
    """A month-day in any common form: 5月5日 / 5月5号, May 5 / May 5th / 5 May / 5th of May,
    5/5, 05-05, and inside an ISO date (1990-05-05)."""
    name = MONTHS_EN[month - 1]
    en = f"(?:{name}|{name[:3]}\\.?)"
    m, d = f"0?{month}", f"0?{day}"
    forms = [
        rf"(?<!\d){m}\s*月\s*{d}\s*(?:日|号|號)?(?!\d)",
        rf"\b{en}\s+{d}(?:st|nd|rd|th)?(?!\d)",
        rf"(?<!\d){d}(?:st|nd|rd|th)?\s+(?:of\s+)?{en}\b",
        rf"(?<![\d/]){m}\s*[/-]\s*{d}(?![\d/])",
        rf"\d{{4}}\s*[/-]\s*{m}\s*[/-]\s*{d}(?!\d)",
        rf"\d{{4}}\s*年\s*{m}\s*月\s*{d}(?!\d)",
    ]
    return re.compile("|".join(forms), re.IGNORECASE)


def weekday_pattern(weekday: int) -> re.Pattern[str]:
    """Monday=0 ... Sunday=6: Wednesday / Wed, 星期三 / 周三 / 礼拜三 (星期日 / 星期天)."""
    en = WEEKDAYS_EN[weekday]
    zh = _WEEKDAY_ZH[weekday] + ("|天" if weekday == 6 else "")
    return re.compile(rf"\b(?:{en}|{en[:3]})\b|(?:星期|周|週|礼拜|禮拜)(?:{zh})", re.IGNORECASE)


_CLOCK = re.compile(
    r"(?P<zh_before>上午|早上|凌晨|中午|下午|傍晚|晚上)?\s*"
    r"(?<!\d)(?P<h>[01]?\d|2[0-4])\s*[:：]\s*(?P<m>[0-5]\d)(?!\d)(?:\s*[:：]\s*[0-5]\d)?"
    r"\s*(?P<ampm>[ap]\.?\s?m\.?)?",
    re.IGNORECASE,
)
_CLOCK_ZH = re.compile(
    r"(?P<zh_before>上午|早上|凌晨|中午|下午|傍晚|晚上)?\s*"
    r"(?P<h>[零一二两三四五六七八九十]+|\d{1,2})\s*[点點时時]\s*"
    r"(?:(?P<m>[零一二三四五六七八九十]+|\d{1,2})\s*分|(?P<half>半)|(?P<many>多))?"
)
_OCLOCK = re.compile(r"(?<![\d:：])(?P<h>\d{1,2})\s*(?P<ampm>[ap]\.?\s?m\.?|o'?clock)", re.I)
_PM_ZH = ("下午", "傍晚", "晚上")


def _hour_candidates(hour: int, ampm: str, zh: str) -> list[int]:
    """24-hour readings of an hour: 3 PM is 15; a bare 3 may be 3 or 15."""
    mark = ampm.lower().replace(".", "").replace(" ", "")
    if mark == "pm" or zh in _PM_ZH or (zh == "中午" and hour < 11):
        return [hour % 12 + 12]
    if mark == "am" or zh in ("上午", "早上", "凌晨"):
        return [hour % 12]
    if hour == 24:
        return [0]
    return [hour, hour + 12] if hour < 12 else [hour]


def _int(word: str | None) -> int | None:
    if word is None:
        return None
    return int(word) if word.isdigit() else _zh_numeral(word)


def clock_times(text: str) -> list[tuple[int, int]]:
    """Minute-of-day ranges (start, end inclusive) of every clock time in the text: "15:20"
    is (920, 920); "3:20" could be morning or afternoon, so both; "3点多" is the whole hour."""
    text = normalize(text)
    out: list[tuple[int, int]] = []
    for m in _CLOCK.finditer(text):
        minute = int(m["m"])
        for h in _hour_candidates(int(m["h"]), m["ampm"] or "", m["zh_before"] or ""):
            out.append((h * 60 + minute, h * 60 + minute))
    for m in _CLOCK_ZH.finditer(text):
        hour = _int(m["h"])
        if hour is None or hour > 24:
            continue
        for h in _hour_candidates(hour, "", m["zh_before"] or ""):
            if m["many"]:
                out.append((h * 60, h * 60 + 59))
            else:
                minute = 30 if m["half"] else (_int(m["m"]) or 0)
                out.append((h * 60 + minute, h * 60 + minute))
    for m in _OCLOCK.finditer(text):
        for h in _hour_candidates(int(m["h"]), m["ampm"] if "m" in m["ampm"].lower() else "", ""):
            out.append((h * 60, h * 60))
    return out


_UNITS = {
    "months": r"个多?月|months?\b",
    "days": r"天|days?\b",
    "minutes": r"分钟|分(?!之)|minutes?\b|mins?\b",
}
_COUNT = re.compile(
    r"(?P<n>\d+(?:\.\d+)?|[零一二两三四五六七八九十]+|\b(?:"
    + "|".join(_EN_WORDS)
    + r"|an?)\b)\s*(?P<unit>"
    + "|".join(_UNITS.values())
    + ")",
    re.IGNORECASE,
)


def counts(text: str, unit: str) -> list[float]:
    """Numbers written right before a unit: "5个月", "five months", "a month" (1) for
    "months"; "17天", "17 days"; "545分钟". Not "5月" (May) nor "5日" (a day of the month)."""
    text = normalize(text)
    wanted = re.compile(_UNITS[unit], re.IGNORECASE)
    out = []
    for m in _COUNT.finditer(text):
        if not wanted.fullmatch(m["unit"]):
            continue
        word = m["n"].lower()
        if word[0].isdigit():
            out.append(float(word))
        elif word in ("a", "an"):
            out.append(1.0)
        elif word in _EN_WORDS:
            out.append(float(_EN_WORDS.index(word)))
        elif (value := _zh_numeral(word)) is not None:
            out.append(float(value))
    return out


_HOURS_MINUTES = re.compile(
    r"(?P<h>\d+)\s*(?:个)?\s*(?:小时|hours?|hrs?|h)\s*(?:and\s*|又|零)?"
    r"(?P<m>\d+)\s*(?:分钟|分|minutes?|mins?|m(?![a-z]))",
    re.IGNORECASE,
)


def durations_minutes(text: str) -> list[float]:
    """Durations written as hours and minutes ("8 hours 45 minutes", "8小时45分钟"), in
    minutes; plain numbers are in numbers()."""
    text = normalize(text)
    return [int(m["h"]) * 60.0 + int(m["m"]) for m in _HOURS_MINUTES.finditer(text)]
