"""The fast engine agrees with a slow, obviously-correct minute-by-minute walk.

The reference knows nothing of intervals or bisection: it steps one minute at a time in Shanghai
wall time (no daylight saving there since 1991), asks chinesecalendar (or an override) whether
the day works and whether the minute lies in a working period, and counts. Any disagreement on
a few thousand random starts, limits, pauses and extensions is a bug in the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityloop.workcal.domain import Clock, DayKind, TimeLimit, Unit, WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
ORIGIN = dt.datetime(2025, 1, 1)  # naive Shanghai wall time; minute 0 of the reference walk
LAST_START_MINUTE = int((dt.datetime(2026, 11, 30) - ORIGIN).total_seconds() // 60)
PERIODS = ((8 * 60, 12 * 60), (14 * 60, 18 * 60))  # minutes of the day
WORKING_MINUTE_OF_DAY = [any(a <= m < b for a, b in PERIODS) for m in range(1440)]
MINUTES_PER_DAY = 480

# A few local overrides the reference and the engine both honour.
OVERRIDES = {
    dt.date(2025, 7, 15): DayKind.HOLIDAY,  # a Tuesday typhoon day
    dt.date(2026, 3, 7): DayKind.WORKDAY,  # a Saturday worked
    dt.date(2026, 10, 5): DayKind.WORKDAY,  # a National Day holiday worked
}


@cache
def _reference_workday(day_index: int) -> bool:
    day = (ORIGIN + dt.timedelta(days=day_index)).date()
    if day in OVERRIDES:
        return OVERRIDES[day] is DayKind.WORKDAY
    return bool(chinese_calendar.is_workday(day))


def _counts(minute: int, clock: Clock) -> bool:
    if clock is not Clock.WORKING:
        return True
    day, minute_of_day = divmod(minute, 1440)
    return WORKING_MINUTE_OF_DAY[minute_of_day] and _reference_workday(day)


def _paused(minute: int, pauses: Sequence[tuple[int, int]]) -> bool:
    return any(a <= minute < b for a, b in pauses)


def reference_deadline(
    start: int, clock: Clock, minutes: int, pauses: Sequence[tuple[int, int]]
) -> int:
    """Walk minute by minute from ``start``; the deadline is the end of the counted minute
    that completes the limit."""
    counted = 0
    minute = start
    while True:
        if _counts(minute, clock) and not _paused(minute, pauses):
            counted += 1
            if counted == minutes:
                return minute + 1
        minute += 1


def reference_elapsed(start: int, end: int, clock: Clock, pauses: Sequence[tuple[int, int]]) -> int:
    return sum(1 for m in range(start, end) if _counts(m, clock) and not _paused(m, pauses))


def _instant(minute: int) -> dt.datetime:
    return (ORIGIN + dt.timedelta(minutes=minute)).replace(tzinfo=SHANGHAI)


def _minute(instant: dt.datetime) -> int:
    wall = instant.astimezone(SHANGHAI).replace(tzinfo=None)
    seconds = (wall - ORIGIN).total_seconds()
    assert seconds % 60 == 0, f"{instant} is not on a whole minute"
    return int(seconds // 60)


CALENDAR = WorkingCalendar(overrides=OVERRIDES)

# Limits kept small enough that the walk stays fast and every deadline stays inside 2026.
limits = st.one_of(
    st.builds(
        TimeLimit,
        amount=st.integers(1, 240),
        unit=st.just(Unit.MINUTE),
        clock=st.sampled_from(Clock),
    ),
    st.builds(
        TimeLimit, amount=st.integers(1, 24), unit=st.just(Unit.HOUR), clock=st.sampled_from(Clock)
    ),
    st.builds(
        TimeLimit, amount=st.integers(1, 5), unit=st.just(Unit.DAY), clock=st.sampled_from(Clock)
    ),
)
starts = st.integers(0, LAST_START_MINUTE)


@st.composite
def pause_lists(draw: st.DrawFn, start: int) -> list[tuple[int, int]]:
    """Up to three pauses near the start, possibly overlapping, possibly before it."""
    pauses = []
    for _ in range(draw(st.integers(0, 3))):
        a = start + draw(st.integers(-2 * 1440, 6 * 1440))
        pauses.append((a, a + draw(st.integers(0, 4 * 1440))))
    return pauses


def _limit_minutes(limit: TimeLimit) -> int:
    per_unit = {Unit.MINUTE: 1, Unit.HOUR: 60}.get(limit.unit)
    if per_unit is None:
        per_unit = MINUTES_PER_DAY if limit.clock is Clock.WORKING else 1440
    return limit.amount * per_unit


@pytest.mark.slow
@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=starts, limit=limits, extensions=st.integers(0, 2))
def test_deadline_matches_the_minute_by_minute_walk(
    start: int, limit: TimeLimit, extensions: int
) -> None:
    expected = reference_deadline(start, limit.clock, _limit_minutes(limit) * (1 + extensions), ())
    got = CALENDAR.deadline(_instant(start), limit, extensions=extensions)
    assert _minute(got) == expected


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), start=starts, limit=limits)
def test_deadline_with_pauses_matches_the_minute_by_minute_walk(
    data: st.DataObject, start: int, limit: TimeLimit
) -> None:
    pauses = data.draw(pause_lists(start))
    expected = reference_deadline(start, limit.clock, _limit_minutes(limit), pauses)
    got = CALENDAR.deadline(
        _instant(start), limit, pauses=[(_instant(a), _instant(b)) for a, b in pauses]
    )
    assert _minute(got) == expected


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(
    data=st.data(),
    start=starts,
    length=st.integers(0, 5 * 1440),
    clock=st.sampled_from(Clock),
)
def test_elapsed_matches_counting_minutes(
    data: st.DataObject, start: int, length: int, clock: Clock
) -> None:
    pauses = data.draw(pause_lists(start))
    expected = reference_elapsed(start, start + length, clock, pauses)
    got = CALENDAR.elapsed(
        _instant(start),
        _instant(start + length),
        clock=clock,
        pauses=[(_instant(a), _instant(b)) for a, b in pauses],
    )
    assert got == expected
