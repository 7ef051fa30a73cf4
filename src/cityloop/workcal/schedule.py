"""The working schedule of a city and where its day types come from.

Pure value types, no I/O beyond reading the ``chinese_calendar`` package's bundled tables. The
arithmetic that uses them lives in ``engine.py``; the datetime-level API in ``domain.py``
re-exports everything here, so callers import from ``cityloop.workcal.domain``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

from cityloop.errors import ConfigurationError, InvalidInput

DEFAULT_TIMEZONE = "Asia/Shanghai"


class DayKind(StrEnum):
    """What a local override says about one date. It beats every other source."""

    HOLIDAY = "holiday"  # no working time that day (e.g. a local holiday, a typhoon closure)
    WORKDAY = "workday"  # a full working day even on a weekend (调休 make-up day)


def parse_day_kind(value: str) -> DayKind:
    """Read "holiday"/"workday" (also the Chinese 休/班 words bureaus write in their tables)."""
    cleaned = value.strip().lower()
    aliases = {
        "holiday": DayKind.HOLIDAY,
        "休": DayKind.HOLIDAY,
        "休息": DayKind.HOLIDAY,
        "假": DayKind.HOLIDAY,
        "节假日": DayKind.HOLIDAY,
        "workday": DayKind.WORKDAY,
        "班": DayKind.WORKDAY,
        "上班": DayKind.WORKDAY,
        "工作日": DayKind.WORKDAY,
        "调休": DayKind.WORKDAY,
    }
    kind = aliases.get(cleaned)
    if kind is None:
        raise InvalidInput(f"unknown day kind {value!r}: use 'holiday' or 'workday'", field="kind")
    return kind


@dataclass(frozen=True, slots=True)
class WorkPeriod:
    """One stretch of working time within a day, in local wall time, [start, end)."""

    start: dt.time
    end: dt.time

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is not None:
                raise InvalidInput(
                    f"working period {name} {value} must be a local wall time without a zone",
                    field="periods",
                )
            if value.second or value.microsecond:
                # The engine counts whole working minutes; a period of 4 h 0 min 30 s would
                # make "one working day" a fractional number of minutes.
                raise InvalidInput(
                    f"working period {name} {value} must be a whole minute (HH:MM)",
                    field="periods",
                )
        if self.end <= self.start:
            raise InvalidInput(
                f"working period {self.label()} must end after it starts", field="periods"
            )

    @property
    def minutes(self) -> int:
        return (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


DEFAULT_PERIODS: tuple[WorkPeriod, ...] = (
    WorkPeriod(dt.time(8, 0), dt.time(12, 0)),
    WorkPeriod(dt.time(14, 0), dt.time(18, 0)),
)

_PERIOD_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*[-–~～至]\s*(\d{1,2}):(\d{2})$")


def _clock_time(hour: str, minute: str, text: str) -> dt.time:
    try:
        return dt.time(int(hour), int(minute))
    except ValueError:
        raise InvalidInput(
            f"working period {text!r} has an impossible time of day", field="periods"
        ) from None


def parse_periods(text: str) -> tuple[WorkPeriod, ...]:
    """Read periods written as "08:00-12:00,14:00-18:00" (commas, 、 or spaces between)."""
    parts = [p for p in re.split(r"[,，、;；\s]+", text.strip()) if p]
    if not parts:
        raise InvalidInput(
            "no working periods given: write them like 08:00-12:00,14:00-18:00", field="periods"
        )
    periods: list[WorkPeriod] = []
    for part in parts:
        match = _PERIOD_RE.match(part)
        if match is None:
            raise InvalidInput(
                f"cannot read working period {part!r}: write it like 08:00-12:00",
                field="periods",
            )
        start = _clock_time(match.group(1), match.group(2), part)
        end = _clock_time(match.group(3), match.group(4), part)
        periods.append(WorkPeriod(start, end))
    return tuple(periods)


def resolve_timezone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or ``InvalidInput`` naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown timezone {name!r}: use an IANA name such as Asia/Shanghai",
            field="timezone",
        ) from None


@dataclass(frozen=True, slots=True)
class WorkSchedule:
    """The working periods of every working day, in one local timezone.

    Default 08:00-12:00 and 14:00-18:00 in Asia/Shanghai (480 working minutes a day), the
    common practice; cities configure their own (e.g. summer hours 08:00-12:00, 14:30-18:30).
    Periods must be given in order and must not overlap; touching periods are allowed.
    """

    periods: tuple[WorkPeriod, ...] = DEFAULT_PERIODS
    timezone: str = DEFAULT_TIMEZONE
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        periods = tuple(self.periods)
        if not periods:
            raise InvalidInput("a working schedule needs at least one period", field="periods")
        for earlier, later in pairwise(periods):
            if later.start < earlier.end:
                raise InvalidInput(
                    f"working periods must be in order and must not overlap: "
                    f"{earlier.label()} and {later.label()}",
                    field="periods",
                )
        object.__setattr__(self, "periods", periods)
        object.__setattr__(self, "tz", resolve_timezone(self.timezone))

    @classmethod
    def from_text(cls, *, timezone: str, periods: str) -> WorkSchedule:
        return cls(periods=parse_periods(periods), timezone=timezone)

    @classmethod
    def from_pairs(
        cls, *, timezone: str, periods: Sequence[tuple[dt.time, dt.time]]
    ) -> WorkSchedule:
        return cls(periods=tuple(WorkPeriod(s, e) for s, e in periods), timezone=timezone)

    @property
    def minutes_per_day(self) -> int:
        """Working minutes in one working day: the length of "1工作日" on the working clock."""
        return sum(p.minutes for p in self.periods)

    def periods_text(self) -> str:
        return ",".join(p.label() for p in self.periods)

    def periods_json(self) -> list[list[str]]:
        """The storage form: ``[["08:00", "12:00"], ["14:00", "18:00"]]``."""
        return [[f"{p.start:%H:%M}", f"{p.end:%H:%M}"] for p in self.periods]

    @classmethod
    def from_json(cls, *, timezone: str, periods: Iterable[Sequence[str]]) -> WorkSchedule:
        text = ",".join(f"{pair[0]}-{pair[1]}" for pair in periods if len(pair) == 2)
        return cls.from_text(timezone=timezone, periods=text)


DEFAULT_SCHEDULE = WorkSchedule()


class HolidaySource(Protocol):
    """Where statutory holidays and make-up working days come from, year by year."""

    def covers(self, year: int) -> bool:
        """True when the source has the year's official holiday arrangement."""
        ...

    def is_workday(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day; only asked for days of covered years."""
        ...

    def __hash__(self) -> int:
        """Sources key the process-wide cache of year tables (identity hashing suffices)."""
        ...


class ChineseCalendarSource:
    """The State Council's arrangements, as bundled in the ``chinesecalendar`` package.

    The package raises ``NotImplementedError`` outside the years it carries (2004 up to the
    year it was last released for), so coverage is probed once per year through its public
    ``is_workday`` and remembered. Day look-ups then read the package's exported ``holidays``
    and ``workdays`` tables with the package's own rule: its ``is_workday`` recomputes the
    covered range on every call, which made building one year's table cost ~15 ms.
    """

    def __init__(self) -> None:
        self._covered: dict[int, bool] = {}
        self._holidays = chinese_calendar.holidays
        self._workdays = chinese_calendar.workdays

    def covers(self, year: int) -> bool:
        known = self._covered.get(year)
        if known is None:
            try:
                chinese_calendar.is_workday(dt.date(year, 1, 1))
                chinese_calendar.is_workday(dt.date(year, 12, 31))
                known = True
            except NotImplementedError:
                known = False
            self._covered[year] = known
        return known

    def is_workday(self, day: dt.date) -> bool:
        return day in self._workdays or (day.weekday() < 5 and day not in self._holidays)


# Shared by every calendar: its coverage answers, and the process-wide cache of year tables
# keyed on the source, are then reused across the calendars built per request.
CHINESE_CALENDAR = ChineseCalendarSource()


def missing_year_error(year: int) -> ConfigurationError:
    """The one sentence an operator sees when a deadline reaches a year nobody described.

    Never guess a year's holidays: a deadline computed on weekends alone would be wrong by a
    week around Spring Festival and National Day, silently.
    """
    return ConfigurationError(
        f"no holiday data for {year}: update chinesecalendar or enter the year's holidays "
        f"with `cityloop calendar override add` and `cityloop calendar year add {year}`",
        field="year",
    )
