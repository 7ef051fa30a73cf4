"""Working-time arithmetic on UTC epoch seconds: the fast core behind ``WorkingCalendar``.

Why this shape. A deadline is "the instant at which N working seconds have passed since the
start". Walking the clock minute by minute costs tens of thousands of steps per deadline. Instead
every working period of every working day becomes one interval ``[start, end)`` in UTC epoch
seconds, and a running total gives the working seconds before each interval. Then

- ``pos(t)``: working seconds before instant ``t`` = one bisection plus a clamp, and
- ``at(w)``: the earliest instant with ``w`` working seconds before it = one bisection,

so a deadline is ``at(pos(start) + limit)``: two binary searches over ~500 intervals a year.
``at`` bisects on interval *ends* with ``bisect_left``, so a count that finishes exactly at the
end of a period lands on that end (18:00), not on the next morning.

Tables are built lazily one local calendar year at a time, and only for years whose holidays are
known (``chinese_calendar`` or a year the city entered itself). A computation that needs any other
year raises ``ConfigurationError`` naming it instead of guessing. A loaded range of years is an
immutable ``_Tables`` snapshot: extending builds a new snapshot and swaps the reference, so
concurrent readers (web threads) never see half-built lists.

Epoch seconds are floats: whole seconds are exact (below 2**53) and sub-second starts keep about
a microsecond of precision, which is finer than any time limit.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import accumulate

import numpy as np
from numpy.typing import NDArray

from cityloop.workcal.schedule import (
    DayKind,
    HolidaySource,
    WorkSchedule,
    missing_year_error,
)

Pause = tuple[float, float]

_ONE_DAY = dt.timedelta(days=1)


class _Tables:
    """Working intervals of the local years ``first..last`` with their running totals."""

    __slots__ = (
        "a_cum_end",
        "a_ends",
        "a_starts",
        "cum_end",
        "ends",
        "first",
        "hi",
        "last",
        "lo",
        "starts",
    )

    def __init__(
        self,
        first: int,
        last: int,
        lo: float,
        hi: float,
        starts: list[float],
        ends: list[float],
    ) -> None:
        self.first = first
        self.last = last
        self.lo = lo  # first instant of ``first`` (local midnight, 1 January)
        self.hi = hi  # first instant after ``last``
        self.starts = starts
        self.ends = ends
        # Working seconds up to the end of each interval. ``pos`` and ``at`` both count back
        # from an interval's end with the same expression as the batch path, so scalar and
        # batch results agree to the last bit.
        self.cum_end = list(accumulate(e - s for s, e in zip(starts, ends, strict=True)))
        # numpy twins for the batch path; a few thousand floats, so building them is free.
        self.a_starts: NDArray[np.float64] = np.asarray(starts, dtype=np.float64)
        self.a_ends: NDArray[np.float64] = np.asarray(ends, dtype=np.float64)
        self.a_cum_end: NDArray[np.float64] = np.asarray(self.cum_end, dtype=np.float64)

    def pos(self, t: float) -> float:
        """Working seconds in these tables before instant ``t`` (clamped to the loaded years)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        end = self.ends[i]
        return self.cum_end[i] - (end - t) if t < end else self.cum_end[i]

    def at(self, w: float) -> float | None:
        """The earliest instant with ``w`` > 0 working seconds before it; None past the tables."""
        j = bisect_left(self.cum_end, w)
        if j == len(self.cum_end):
            return None
        return self.ends[j] - (self.cum_end[j] - w)

    def advance(self, t: float, amount: float, pauses: Sequence[Pause]) -> float | None:
        """The instant when ``amount`` working seconds have run from ``t``, the clock stopped
        during ``pauses`` (sorted, merged). None when the answer lies beyond these tables."""
        p = self.pos(t)
        remaining = amount
        cur = t
        for pause_from, pause_to in pauses:
            if pause_to <= cur:
                continue
            if pause_from > cur:
                available = self.pos(pause_from) - p
                if remaining <= available:
                    return self.at(p + remaining)
                if pause_from >= self.hi:
                    return None
                remaining -= available
            if pause_to >= self.hi:
                return None
            cur = pause_to
            p = self.pos(cur)
        return self.at(p + remaining)

    def between(self, a: float, b: float, pauses: Sequence[Pause]) -> float:
        """Working seconds in ``[a, b]`` outside ``pauses``; both ends inside the tables."""
        total = self.pos(b) - self.pos(a)
        for pause_from, pause_to in pauses:
            lo = pause_from if pause_from > a else a
            hi = pause_to if pause_to < b else b
            if hi > lo:
                total -= self.pos(hi) - self.pos(lo)
        return total


def advance_continuous(t: float, amount: float, pauses: Sequence[Pause]) -> float:
    """Like ``_Tables.advance`` on a clock where every second counts (urgent, calendar)."""
    remaining = amount
    cur = t
    for pause_from, pause_to in pauses:
        if pause_to <= cur:
            continue
        if pause_from > cur:
            available = pause_from - cur
            if remaining <= available:
                return cur + remaining
            remaining -= available
        cur = pause_to
    return cur + remaining


def between_continuous(a: float, b: float, pauses: Sequence[Pause]) -> float:
    total = b - a
    for pause_from, pause_to in pauses:
        lo = pause_from if pause_from > a else a
        hi = pause_to if pause_to < b else b
        if hi > lo:
            total -= hi - lo
    return total


YearOverrides = frozenset[tuple[dt.date, DayKind]]


@lru_cache(maxsize=512)
def year_intervals(
    schedule: WorkSchedule,
    year: int,
    overrides: YearOverrides,
    source: HolidaySource | None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Working intervals ``(starts, ends)`` of one local year, in epoch seconds.

    ``source`` is None for a year the city covered itself (Monday-Friday unless overridden).
    Cached process-wide on everything that decides the answer, so the calendar that the service
    layer rebuilds for every request costs a dictionary lookup per year, not ~1 ms of zone
    conversions and holiday look-ups.
    """
    kinds = dict(overrides)
    tz = schedule.tz
    periods = schedule.periods
    starts: list[float] = []
    ends: list[float] = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        kind = kinds.get(day)
        if kind is not None:
            works = kind is DayKind.WORKDAY
        elif source is not None:
            works = source.is_workday(day)
        else:
            works = day.weekday() < 5
        if works:
            for period in periods:
                # Through the zone, not "midnight + offset": a zone with daylight saving time
                # shifts the instant of 08:00 twice a year.
                start = dt.datetime.combine(day, period.start, tzinfo=tz).timestamp()
                end = dt.datetime.combine(day, period.end, tzinfo=tz).timestamp()
                if end > start:
                    starts.append(start)
                    ends.append(end)
        day += _ONE_DAY
    return tuple(starts), tuple(ends)


class WorkingTimeline:
    """Day types plus lazily built interval tables for one schedule.

    Day type of a date, first match wins: a local override; the holiday source
    (``chinese_calendar``) when it covers the year; Monday-Friday when the city marked the year
    as covered by its own overrides; otherwise no answer (``ConfigurationError``).
    """

    def __init__(
        self,
        schedule: WorkSchedule,
        overrides: Mapping[dt.date, DayKind],
        covered_years: Iterable[int],
        source: HolidaySource,
    ) -> None:
        self.schedule = schedule
        self._overrides = dict(overrides)
        by_year: dict[int, set[tuple[dt.date, DayKind]]] = {}
        for day, kind in self._overrides.items():
            by_year.setdefault(day.year, set()).add((day, kind))
        self._overrides_by_year = {year: frozenset(items) for year, items in by_year.items()}
        self._local_years = frozenset(covered_years)
        self._source = source
        self._tables: _Tables | None = None

    # --- day types ---------------------------------------------------------------------

    def covers(self, year: int) -> bool:
        return year in self._local_years or self._source.covers(year)

    def require_year(self, year: int) -> None:
        if not self.covers(year):
            raise missing_year_error(year)

    def is_working_day(self, day: dt.date) -> bool:
        self.require_year(day.year)
        override = self._overrides.get(day)
        if override is not None:
            return override is DayKind.WORKDAY
        if self._source.covers(day.year):
            return self._source.is_workday(day)
        return day.weekday() < 5

    # --- tables ------------------------------------------------------------------------

    def _intervals_of(self, year: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        self.require_year(year)
        return year_intervals(
            self.schedule,
            year,
            self._overrides_by_year.get(year, frozenset()),
            self._source if self._source.covers(year) else None,
        )

    def _build(self, first: int, last: int) -> _Tables:
        starts: list[float] = []
        ends: list[float] = []
        for year in range(first, last + 1):
            s, e = self._intervals_of(year)
            starts.extend(s)
            ends.extend(e)
        tz = self.schedule.tz
        lo = dt.datetime(first, 1, 1, tzinfo=tz).timestamp()
        hi = dt.datetime(last + 1, 1, 1, tzinfo=tz).timestamp()
        return _Tables(first, last, lo, hi, starts, ends)

    def local_year(self, t: float) -> int:
        return dt.datetime.fromtimestamp(t, self.schedule.tz).year

    def tables_for(self, a: float, b: float) -> _Tables:
        """Tables covering instants ``a <= b``, widening the current ones when contiguous."""
        tables = self._tables
        if tables is not None and tables.lo <= a and b < tables.hi:
            return tables
        first, last = self.local_year(a), self.local_year(b)
        if tables is not None:
            lo, hi = min(tables.first, first), max(tables.last, last)
            # Keep one contiguous run when every year between is known; a far-away request
            # across an unknown year gets tables of its own years only, not an error about a
            # year it never touches.
            if all(self.covers(y) for y in range(lo, hi + 1)):
                first, last = lo, hi
        for year in range(first, last + 1):
            self.require_year(year)
        built = self._build(first, last)
        self._tables = built
        return built

    def extended(self, tables: _Tables) -> _Tables:
        """``tables`` plus the following year; raises when that year is unknown."""
        current = self._tables
        if current is not None and current.first <= tables.first and current.last > tables.last:
            return current
        self.require_year(tables.last + 1)
        built = self._build(tables.first, tables.last + 1)
        self._tables = built
        return built

    # --- scalar arithmetic ---------------------------------------------------------------

    def advance(self, t: float, amount: float, pauses: Sequence[Pause] = ()) -> float:
        """The instant when ``amount`` working seconds have run from ``t``."""
        tables = self._tables
        if tables is None or not (tables.lo <= t < tables.hi):
            tables = self.tables_for(t, t)
        result = tables.advance(t, amount, pauses)
        while result is None:
            tables = self.extended(tables)
            result = tables.advance(t, amount, pauses)
        return result

    def between(self, a: float, b: float, pauses: Sequence[Pause] = ()) -> float:
        """Working seconds in ``[a, b]`` (``a <= b``) outside ``pauses``."""
        return self.tables_for(a, b).between(a, b, pauses)

    # --- batch arithmetic ----------------------------------------------------------------

    def advance_batch(
        self, starts: NDArray[np.float64], amounts: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Vectorised ``advance`` without pauses: the same two searches, on whole arrays.

        One table spans every start, so a batch whose starts straddle an unknown year (2026
        and 2028 with 2027 unknown) raises for that year; callers split such batches.
        """
        if starts.size == 0:
            return np.empty(0, dtype=np.float64)
        tables = self.tables_for(float(starts.min()), float(starts.max()))
        while True:
            i = np.searchsorted(tables.a_starts, starts, side="right") - 1
            inside = i >= 0
            ic = np.where(inside, i, 0)
            if tables.a_starts.size:
                pos = np.where(
                    inside,
                    tables.a_cum_end[ic]
                    - (tables.a_ends[ic] - np.minimum(starts, tables.a_ends[ic])),
                    0.0,
                )
            else:
                pos = np.zeros_like(starts)
            target = pos + amounts
            j = np.searchsorted(tables.a_cum_end, target, side="left")
            if tables.a_cum_end.size and bool((j < tables.a_cum_end.size).all()):
                return tables.a_ends[j] - (tables.a_cum_end[j] - target)
            tables = self.extended(tables)
