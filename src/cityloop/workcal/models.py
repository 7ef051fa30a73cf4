"""Tables of the working calendar: local day overrides, locally covered years, the schedule.

Statutory holidays are not stored: they come from the ``chinesecalendar`` package. These rows
are what a city adds on top (local holidays, corrections, years the package does not carry yet)
and its working hours.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow


class CalendarOverride(Base):
    """One date declared a holiday or a working day, beating every other source."""

    __tablename__ = "calendar_override"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CalendarYear(Base):
    """A year whose holidays the city entered itself as overrides (weekdays work otherwise).

    Without such a row, or the year in ``chinesecalendar``, deadlines reaching into the year
    refuse to compute rather than guess.
    """

    __tablename__ = "calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CalendarConfig(Base):
    """The city's working schedule: a single row with id 1 (absent means the defaults)."""

    __tablename__ = "calendar_config"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    timezone: Mapped[str] = mapped_column(String(64))
    # [["08:00", "12:00"], ["14:00", "18:00"]]: local wall times, in order.
    periods: Mapped[list[list[str]]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
