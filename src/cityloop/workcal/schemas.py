"""Input and output shapes of the working calendar (HTTP bodies, CLI echoes).

``*Create`` models validate what staff send; ``*Public`` models are what leaves the service
layer, so no ORM object escapes its transaction.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cityloop.errors import InvalidInput
from cityloop.workcal.schedule import DayKind, parse_periods, resolve_timezone

# Years a city may describe: the package starts at 2004; far futures are typos.
MIN_YEAR = 2000
MAX_YEAR = 2100
NOTE_MAX = 200


class OverrideCreate(BaseModel):
    day: dt.date
    kind: DayKind
    note: str = Field(default="", max_length=NOTE_MAX)


class OverridePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    day: dt.date
    kind: DayKind
    note: str
    created_at: dt.datetime


class CoveredYearCreate(BaseModel):
    year: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    note: str = Field(default="", max_length=NOTE_MAX)


class CoveredYearPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    year: int
    note: str
    created_at: dt.datetime


class PeriodSchema(BaseModel):
    """One working period as local wall times."""

    start: dt.time
    end: dt.time


class ScheduleUpdate(BaseModel):
    timezone: str = "Asia/Shanghai"
    periods: list[PeriodSchema] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            resolve_timezone(value)
        except InvalidInput as exc:
            # pydantic reports ValueErrors as field errors; any other exception would escape.
            raise ValueError(exc.message) from None
        return value

    @classmethod
    def from_text(cls, *, timezone: str, periods: str) -> ScheduleUpdate:
        """Build from the CLI form "08:00-12:00,14:00-18:00"."""
        return cls(
            timezone=timezone,
            periods=[PeriodSchema(start=p.start, end=p.end) for p in parse_periods(periods)],
        )


class SchedulePublic(BaseModel):
    timezone: str
    periods: list[PeriodSchema]
    minutes_per_day: int
    is_default: bool
