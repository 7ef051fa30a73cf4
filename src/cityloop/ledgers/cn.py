"""How Chinese official documents write numbers, headings and dates. Pure functions.

Official documents (公文, GB/T 9704) number headings 一、 → （一） → 1. → （1）, write dates in
full as 2023年2月3日 (no leading zeros), and within one sentence drop the year of a second date
that falls in the same year ("2022年7月19日至9月23日"). Bulletins list what was done as
"一是……二是……". Getting these right is what makes a generated bulletin publishable as is.
"""

from __future__ import annotations

import datetime as dt
import re

from cityloop.errors import InvalidInput

_DIGITS = "零一二三四五六七八九"


def cn_numeral(n: int) -> str:
    """1 -> 一, 10 -> 十, 12 -> 十二, 20 -> 二十, 105 -> 一百零五 (1..9999)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 9999:
        raise InvalidInput(f"cannot write {n!r} as a Chinese numeral (1-9999)", field="number")
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        head = _DIGITS[n // 100] + "百"
        if rest == 0:
            return head
        # 105 is 一百零五; 110 is 一百一十 (the "一" before 十 is kept after a hundred).
        if rest < 10:
            return head + "零" + _DIGITS[rest]
        tail = cn_numeral(rest)
        return head + ("一" + tail if rest < 20 else tail)
    rest = n % 1000
    head = _DIGITS[n // 1000] + "千"
    if rest == 0:
        return head
    tail = cn_numeral(rest)
    if rest < 100:
        tail = "零" + ("一" + tail if 10 <= rest < 20 else tail)
    return head + tail


def heading_number(level: int, n: int) -> str:
    """The number of the ``n``-th heading at ``level`` 1..4: 一、 （一） 1. （1）."""
    if level == 1:
        return f"{cn_numeral(n)}、"
    if level == 2:
        return f"（{cn_numeral(n)}）"
    if level == 3:
        return f"{n}."
    if level == 4:
        return f"（{n}）"
    raise InvalidInput(f"heading level must be 1-4, got {level}", field="level")


def ordinal_phrase(n: int) -> str:
    """一是, 二是, … — how a bulletin enumerates the measures taken for one problem."""
    return f"{cn_numeral(n)}是"


def cn_date(day: dt.date, *, omit_year_of: dt.date | None = None) -> str:
    """2023年2月3日; "2月3日" when ``omit_year_of`` is a date of the same year."""
    if isinstance(day, dt.datetime):
        day = day.date()
    if omit_year_of is not None and omit_year_of.year == day.year:
        return f"{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


def cn_date_range(start: dt.date, end: dt.date) -> str:
    """2022年7月19日至9月23日 (the end's year only when it differs)."""
    return f"{cn_date(start)}至{cn_date(end, omit_year_of=start)}"


# Leading numbering a user may have typed into a title copied from a document: 一、 （一） (一)
# 1. 1、 1． (1) 第一，. Titles are stored without it; numbering is generated on output.
_NUMBERING_RE = re.compile(
    r"^\s*(?:"
    r"[一二三四五六七八九十百零]+\s*[、.．]"
    r"|[（(]\s*[一二三四五六七八九十百零\d]+\s*[)）]\s*[、.．]?"
    r"|\d+\s*[、.．](?!\d)"
    r"|第[一二三四五六七八九十百零\d]+\s*[,，、.．:：]"
    r")\s*"
)


def strip_numbering(text: str) -> str:
    """Remove one leading heading number ("（一）关于…" -> "关于…")."""
    return _NUMBERING_RE.sub("", text, count=1).strip()
