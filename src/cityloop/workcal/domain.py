"""Pure working-time rules: time limits, their written forms, and the working calendar.

No I/O here. ``WorkingCalendar`` answers deadlines, elapsed working time and lights from a
schedule and the day types; the schedule and day-type sources live in ``schedule.py`` and the
epoch-second arithmetic in ``engine.py``, both re-exported here so callers need one import.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cityloop.errors import InvalidInput
from cityloop.workcal.engine import (
    Pause,
    WorkingTimeline,
    advance_continuous,
    between_continuous,
)
from cityloop.workcal.schedule import (
    CHINESE_CALENDAR,
    DEFAULT_PERIODS,
    DEFAULT_SCHEDULE,
    DEFAULT_TIMEZONE,
    ChineseCalendarSource,
    DayKind,
    HolidaySource,
    WorkPeriod,
    WorkSchedule,
    missing_year_error,
    parse_day_kind,
    parse_periods,
)

__all__ = [
    "CHINESE_CALENDAR",
    "CLOCK_CODES",
    "DEFAULT_PERIODS",
    "DEFAULT_SCHEDULE",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_TIMEZONE",
    "DEFAULT_UNIT_MAP",
    "UNIT_CODES",
    "ChineseCalendarSource",
    "Clock",
    "DayKind",
    "HolidaySource",
    "Light",
    "LightThresholds",
    "LimitArrays",
    "TimeLimit",
    "Unit",
    "UnitMeaning",
    "WorkPeriod",
    "WorkSchedule",
    "WorkingCalendar",
    "missing_year_error",
    "parse_day_kind",
    "parse_periods",
    "parse_time_limit",
]


class Clock(StrEnum):
    """How time is counted against a limit."""

    URGENT = "urgent"  # continuous: nights, weekends and holidays count (紧急工作时/日)
    WORKING = "working"  # only working time of working days counts (工作时, 工作日, 小时, 天)
    CALENDAR = "calendar"  # continuous calendar time (自然日)


class Unit(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class UnitMeaning:
    clock: Clock
    unit: Unit


# How a written unit maps to a clock and a unit. Configuration, not law: cities differ. The
# default follows the foundation issue: 紧急工作时/日 are urgent (continuous), 小时 and 工作时
# are working hours, 天 and 工作日 are working days, 自然日 is calendar days.
DEFAULT_UNIT_MAP: Mapping[str, UnitMeaning] = {
    "紧急工作时": UnitMeaning(Clock.URGENT, Unit.HOUR),
    "紧急小时": UnitMeaning(Clock.URGENT, Unit.HOUR),
    "紧急工作日": UnitMeaning(Clock.URGENT, Unit.DAY),
    "工作时": UnitMeaning(Clock.WORKING, Unit.HOUR),
    "工作小时": UnitMeaning(Clock.WORKING, Unit.HOUR),
    "小时": UnitMeaning(Clock.WORKING, Unit.HOUR),
    "工作日": UnitMeaning(Clock.WORKING, Unit.DAY),
    "天": UnitMeaning(Clock.WORKING, Unit.DAY),
    "日": UnitMeaning(Clock.WORKING, Unit.DAY),
    "自然日": UnitMeaning(Clock.CALENDAR, Unit.DAY),
    "分钟": UnitMeaning(Clock.WORKING, Unit.MINUTE),
    "工作分钟": UnitMeaning(Clock.WORKING, Unit.MINUTE),
    "紧急分钟": UnitMeaning(Clock.URGENT, Unit.MINUTE),
}


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """A time limit such as "2紧急工作时": an amount of a unit on a clock.

    ``text`` keeps the city's written form so an export reproduces the workbook exactly;
    ``remark`` keeps trailing words some workbooks add ("1紧急工作时制止").
    """

    amount: int
    unit: Unit
    clock: Clock
    text: str = ""
    remark: str = ""

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise InvalidInput(f"a time limit must be positive, got {self.amount}", field="limit")

    def label(self) -> str:
        return self.text or f"{self.amount} {self.clock.value} {self.unit.value}(s)"


_LIMIT_RE = re.compile(r"^\s*(\d+)\s*([^\d\s]+?)\s*$")


def parse_time_limit(
    text: str, unit_map: Mapping[str, UnitMeaning] = DEFAULT_UNIT_MAP
) -> TimeLimit:
    """Parse a written time limit ("2紧急工作时", "15工作日", "4小时", "1紧急工作时制止").

    The longest known unit that the text starts with wins, so "紧急工作时" is not read as
    "紧急" + "工作时". Words after the unit are kept as a remark. Raises ``InvalidInput`` with a
    sentence naming the text when it cannot be read.
    """
    cleaned = text.strip().replace("\u3000", "")
    match = _LIMIT_RE.match(cleaned)
    if match is None:
        raise InvalidInput(
            f"cannot read time limit {text!r}: expected a whole number followed by a unit "
            f"such as 工作日, 工作时, 小时, 天, 自然日 or 紧急工作时",
            field="limit",
        )
    amount = int(match.group(1))
    rest = match.group(2)
    for written in sorted(unit_map, key=len, reverse=True):
        if rest.startswith(written):
            meaning = unit_map[written]
            if amount <= 0:
                raise InvalidInput(f"time limit {text!r} must be positive", field="limit")
            return TimeLimit(
                amount=amount,
                unit=meaning.unit,
                clock=meaning.clock,
                text=cleaned,
                remark=rest[len(written) :].strip(),
            )
    raise InvalidInput(
        f"cannot read time limit {text!r}: unknown unit {rest!r} "
        f"(known units: {', '.join(sorted(unit_map, key=len))})",
        field="limit",
    )


# --- the working calendar ----------------------------------------------------------------------


class Light(StrEnum):
    """Traffic light of a running time limit (亮灯): how much of it is used."""

    GREEN = "green"
    YELLOW = "yellow"  # at or past the warning share (80 % by default)
    RED = "red"  # at or past the limit: overdue (超期)


@dataclass(frozen=True, slots=True)
class LightThresholds:
    """Percentages of the (extended) limit at which the light turns yellow and red [L]."""

    yellow_percent: float = 80
    red_percent: float = 100

    def __post_init__(self) -> None:
        if not 0 < self.yellow_percent <= self.red_percent:
            raise InvalidInput(
                f"light thresholds must satisfy 0 < yellow <= red, got yellow "
                f"{self.yellow_percent} % and red {self.red_percent} %",
                field="thresholds",
            )


DEFAULT_THRESHOLDS = LightThresholds()

# Codes for the batch arrays: position in these tuples.
CLOCK_CODES: tuple[Clock, ...] = (Clock.URGENT, Clock.WORKING, Clock.CALENDAR)
UNIT_CODES: tuple[Unit, ...] = (Unit.MINUTE, Unit.HOUR, Unit.DAY)
_WORKING_CODE = CLOCK_CODES.index(Clock.WORKING)


@dataclass(frozen=True, slots=True)
class LimitArrays:
    """Many time limits as parallel numpy arrays, the input of ``deadlines_batch``.

    Kept apart from ``TimeLimit`` so that a generator making a million cases builds the arrays
    with numpy (``take`` from a handful of distinct limits) instead of a million objects.
    """

    clocks: NDArray[np.int8]  # index into CLOCK_CODES
    units: NDArray[np.int8]  # index into UNIT_CODES
    amounts: NDArray[np.int64]

    def __post_init__(self) -> None:
        if not (self.clocks.shape == self.units.shape == self.amounts.shape):
            raise InvalidInput("limit arrays must have the same shape", field="limits")
        if self.amounts.size and int(self.amounts.min()) <= 0:
            raise InvalidInput("every time limit must be positive", field="limits")

    def __len__(self) -> int:
        return int(self.amounts.size)

    @classmethod
    def from_limits(cls, limits: Sequence[TimeLimit]) -> LimitArrays:
        clock_index = {c: i for i, c in enumerate(CLOCK_CODES)}
        unit_index = {u: i for i, u in enumerate(UNIT_CODES)}
        return cls(
            clocks=np.fromiter((clock_index[x.clock] for x in limits), np.int8, len(limits)),
            units=np.fromiter((unit_index[x.unit] for x in limits), np.int8, len(limits)),
            amounts=np.fromiter((x.amount for x in limits), np.int64, len(limits)),
        )

    @classmethod
    def take(cls, distinct: Sequence[TimeLimit], indices: NDArray[np.integer[Any]]) -> LimitArrays:
        """``distinct[indices]`` as arrays: the cheap way to build a large batch."""
        table = cls.from_limits(distinct)
        return cls(
            clocks=table.clocks[indices], units=table.units[indices], amounts=table.amounts[indices]
        )


def _epoch(value: dt.datetime, name: str) -> float:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{name} {value.isoformat()} has no timezone: pass an aware instant", field=name
        )
    return value.timestamp()


def _extension_factor(extensions: int) -> int:
    if isinstance(extensions, bool) or not isinstance(extensions, int) or extensions < 0:
        raise InvalidInput(
            f"extensions must be a whole number >= 0, got {extensions!r}", field="extensions"
        )
    return 1 + extensions


def _merge_pauses(pauses: Iterable[tuple[dt.datetime, dt.datetime]]) -> list[Pause]:
    """Pauses as sorted, non-overlapping epoch intervals (overlapping suspensions count once)."""
    spans: list[Pause] = []
    for pause_from, pause_to in pauses:
        a, b = _epoch(pause_from, "pauses"), _epoch(pause_to, "pauses")
        if b < a:
            raise InvalidInput(
                f"a pause must end after it starts: {pause_from.isoformat()} to "
                f"{pause_to.isoformat()}",
                field="pauses",
            )
        if b > a:
            spans.append((a, b))
    spans.sort()
    merged: list[Pause] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


class WorkingCalendar:
    """Deadlines, elapsed time and lights for one city's schedule and holidays.

    Built from a ``WorkSchedule``, local overrides (date -> holiday/workday, which beat every
    other source) and the years the city covered itself. Statutory holidays and 调休 make-up
    days come from ``chinese_calendar``. No I/O: ``cityloop.workcal.service.load_calendar``
    builds one from the database.

    Instants in and out: any timezone-aware datetime is accepted; every datetime returned is
    aware **UTC** (storage form). ``to_local`` converts for display. Naive datetimes are refused
    because an 8-hour shift of a naive local time is the classic silent bug here.

    Clocks: WORKING counts only the working periods of working days (1 hour = 60 working
    minutes, 1 day = the schedule's minutes per day, 480 by default), starting at the next
    working instant when the start is outside working time. URGENT and CALENDAR are continuous
    (1 hour = 60 min, 1 day = 24 h) and need no holiday data.

    Thread-safe for reading: tables grow by swapping immutable snapshots.
    """

    def __init__(
        self,
        schedule: WorkSchedule = DEFAULT_SCHEDULE,
        overrides: Mapping[dt.date, DayKind | str] | None = None,
        covered_years: Iterable[int] = (),
        *,
        thresholds: LightThresholds = DEFAULT_THRESHOLDS,
        holiday_source: HolidaySource | None = None,
    ) -> None:
        self.schedule = schedule
        self.thresholds = thresholds
        self.overrides: Mapping[dt.date, DayKind] = {
            day: parse_day_kind(kind) for day, kind in (overrides or {}).items()
        }
        self.covered_years: frozenset[int] = frozenset(covered_years)
        self._timeline = WorkingTimeline(
            schedule,
            self.overrides,
            self.covered_years,
            holiday_source if holiday_source is not None else CHINESE_CALENDAR,
        )
        day_seconds = schedule.minutes_per_day * 60
        continuous = {Unit.MINUTE: 60, Unit.HOUR: 3600, Unit.DAY: 86400}
        # Seconds per unit, looked up per call; nested dicts keyed by StrEnum members are the
        # cheapest lookup on the scalar hot path.
        self._unit_seconds: dict[Clock, dict[Unit, int]] = {
            Clock.URGENT: continuous,
            Clock.CALENDAR: continuous,
            Clock.WORKING: {Unit.MINUTE: 60, Unit.HOUR: 3600, Unit.DAY: day_seconds},
        }
        self._unit_seconds_table = np.array(
            [[self._unit_seconds[c][u] for u in UNIT_CODES] for c in CLOCK_CODES],
            dtype=np.float64,
        )

    @property
    def tz(self) -> ZoneInfo:
        return self.schedule.tz

    def to_local(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(self.schedule.tz)

    def covers(self, year: int) -> bool:
        """True when the year's holidays are known (chinese_calendar or a local year)."""
        return self._timeline.covers(year)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` has working time; ``ConfigurationError`` for an unknown year."""
        return self._timeline.is_working_day(day)

    def limit_minutes(self, limit: TimeLimit, *, extensions: int = 0) -> int:
        """Minutes the limit grants on its own clock, each extension adding the original."""
        per_unit = self._unit_seconds[limit.clock][limit.unit] // 60
        return limit.amount * per_unit * _extension_factor(extensions)

    def deadline(
        self,
        start: dt.datetime,
        limit: TimeLimit,
        *,
        pauses: Iterable[tuple[dt.datetime, dt.datetime]] = (),
        extensions: int = 0,
    ) -> dt.datetime:
        """When ``limit`` runs out for work started at ``start`` (aware UTC).

        ``pauses`` stop the clock (挂账/缓办 suspension); ``extensions`` each add one original
        limit (延期). A count ending exactly at the end of a working period ends there (18:00).
        """
        t = _epoch(start, "start")
        amount = limit.amount * self._unit_seconds[limit.clock][limit.unit]
        if extensions:
            amount *= _extension_factor(extensions)
        spans = _merge_pauses(pauses) if pauses else ()
        if limit.clock is Clock.WORKING:
            end = self._timeline.advance(t, amount, spans)
        else:
            end = advance_continuous(t, amount, spans)
        return dt.datetime.fromtimestamp(end, dt.UTC)

    def elapsed(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        clock: Clock,
        pauses: Iterable[tuple[dt.datetime, dt.datetime]] = (),
    ) -> float:
        """Minutes counted between ``start`` and ``end`` on ``clock``, pauses excluded.

        Working minutes for WORKING, wall minutes otherwise. ``end`` before ``start`` is refused.
        """
        a, b = _epoch(start, "start"), _epoch(end, "end")
        if b < a:
            raise InvalidInput(
                f"end {end.isoformat()} is before start {start.isoformat()}", field="end"
            )
        spans = _merge_pauses(pauses)
        if clock is Clock.WORKING:
            seconds = self._timeline.between(a, b, spans)
        else:
            seconds = between_continuous(a, b, spans)
        return seconds / 60

    def light(
        self,
        start: dt.datetime,
        now: dt.datetime,
        limit: TimeLimit,
        *,
        pauses: Iterable[tuple[dt.datetime, dt.datetime]] = (),
        extensions: int = 0,
        thresholds: LightThresholds | None = None,
    ) -> Light:
        """Green, yellow (>= 80 % of the extended limit used) or red (>= 100 %).

        Red is decided against the deadline, so a case long overdue stays red even when
        ``now`` lies in a year without holiday data; yellow needs the elapsed working time,
        which is only computed before the deadline.
        """
        th = thresholds or self.thresholds
        pause_list = list(pauses)
        if _epoch(now, "now") <= _epoch(start, "start"):
            return Light.GREEN
        total = self.limit_minutes(limit, extensions=extensions)
        if th.red_percent == 100:
            due = self.deadline(start, limit, pauses=pause_list, extensions=extensions)
            if now >= due:
                return Light.RED
        used = self.elapsed(start, now, clock=limit.clock, pauses=pause_list)
        # Compare products, not a quotient: 384/480 must count as exactly 80 %.
        if used * 100 >= th.red_percent * total:
            return Light.RED
        if used * 100 >= th.yellow_percent * total:
            return Light.YELLOW
        return Light.GREEN

    def deadlines_batch(
        self,
        starts_epoch_seconds: ArrayLike,
        limits: TimeLimit | Sequence[TimeLimit] | LimitArrays,
        *,
        extensions: ArrayLike = 0,
    ) -> NDArray[np.float64]:
        """Deadlines of many starts at once, as UTC epoch seconds (float64).

        ``limits`` is one limit for all, one per start, or ``LimitArrays``; ``extensions`` a
        number or one per start. No pauses: suspended cases are few and go through
        ``deadline``. Equal, to the bit, to calling ``deadline`` for each start.
        """
        starts = np.asarray(starts_epoch_seconds, dtype=np.float64)
        if starts.ndim != 1:
            raise InvalidInput("starts must be a one-dimensional array", field="starts")
        if not bool(np.isfinite(starts).all()):
            raise InvalidInput("starts must be finite epoch seconds", field="starts")
        if isinstance(limits, TimeLimit):
            arrays = LimitArrays.take([limits], np.zeros(starts.size, dtype=np.intp))
        elif isinstance(limits, LimitArrays):
            arrays = limits
        else:
            arrays = LimitArrays.from_limits(limits)
        if len(arrays) != starts.size:
            raise InvalidInput(f"{starts.size} starts but {len(arrays)} limits", field="limits")
        ext = np.broadcast_to(np.asarray(extensions), starts.shape)
        if ext.size and (not np.issubdtype(ext.dtype, np.integer) or int(ext.min()) < 0):
            raise InvalidInput("extensions must be whole numbers >= 0", field="extensions")
        amounts = (
            arrays.amounts
            * self._unit_seconds_table[arrays.clocks, arrays.units]
            * (1 + ext.astype(np.float64))
        )
        out = starts + amounts  # the continuous clocks
        working = arrays.clocks == _WORKING_CODE
        if bool(working.any()):
            out[working] = self._timeline.advance_batch(starts[working], amounts[working])
        return out
