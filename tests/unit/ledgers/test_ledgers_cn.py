"""Chinese numbering and dates as official documents write them."""

from __future__ import annotations

import datetime as dt

import pytest

from cityloop.errors import InvalidInput
from cityloop.ledgers.cn import (
    cn_date,
    cn_date_range,
    cn_numeral,
    heading_number,
    ordinal_phrase,
    strip_numbering,
)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (1, "一"),
        (9, "九"),
        (10, "十"),
        (11, "十一"),
        (20, "二十"),
        (37, "三十七"),
        (99, "九十九"),
        (100, "一百"),
        (105, "一百零五"),
        (110, "一百一十"),
        (115, "一百一十五"),
        (230, "二百三十"),
        (1000, "一千"),
        (1005, "一千零五"),
        (1015, "一千零一十五"),
        (1230, "一千二百三十"),
    ],
)
def test_chinese_numerals(n: int, text: str) -> None:
    assert cn_numeral(n) == text


@pytest.mark.parametrize("bad", [0, -1, 10_000, True])
def test_numerals_out_of_range_are_refused(bad: int) -> None:
    with pytest.raises(InvalidInput):
        cn_numeral(bad)


def test_heading_numbers_follow_the_four_levels() -> None:
    assert [heading_number(level, 3) for level in (1, 2, 3, 4)] == ["三、", "（三）", "3.", "（3）"]
    assert heading_number(2, 11) == "（十一）"
    with pytest.raises(InvalidInput):
        heading_number(5, 1)


def test_ordinals() -> None:
    assert [ordinal_phrase(n) for n in (1, 2, 10)] == ["一是", "二是", "十是"]


def test_dates_have_no_leading_zeros_and_drop_a_repeated_year() -> None:
    assert cn_date(dt.date(2023, 2, 3)) == "2023年2月3日"
    assert cn_date(dt.date(2023, 11, 3), omit_year_of=dt.date(2023, 2, 3)) == "11月3日"
    assert cn_date(dt.date(2023, 2, 3), omit_year_of=dt.date(2022, 9, 23)) == "2023年2月3日"
    assert cn_date(dt.datetime(2023, 2, 3, 9, 30)) == "2023年2月3日"


def test_a_date_range_writes_the_second_year_only_when_it_differs() -> None:
    assert cn_date_range(dt.date(2022, 7, 19), dt.date(2022, 9, 23)) == "2022年7月19日至9月23日"
    assert (
        cn_date_range(dt.date(2022, 12, 19), dt.date(2023, 1, 23))
        == "2022年12月19日至2023年1月23日"
    )


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("一、整改工作组织情况", "整改工作组织情况"),
        ("（一）聚焦“三治五化”", "聚焦“三治五化”"),
        ("(二)加强监督", "加强监督"),
        ("1.深化理论学习", "深化理论学习"),
        ("12、规范停车管理", "规范停车管理"),
        ("（3）针对问题", "针对问题"),
        ("第一，强化城市治理理念", "强化城市治理理念"),
        ("第一巡察组反馈的问题", "第一巡察组反馈的问题"),
        ("十四五规划落实不到位", "十四五规划落实不到位"),
        ("2023年工作", "2023年工作"),
        ("3.5米围挡", "3.5米围挡"),
    ],
)
def test_strip_numbering_removes_one_heading_number_and_nothing_else(text: str, clean: str) -> None:
    assert strip_numbering(text) == clean
