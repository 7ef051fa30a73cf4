"""Working-calendar use cases. Each public function owns one transaction.

Changes to overrides, covered years and the schedule are admin work and are audited: a deadline
that moved because someone declared a typhoon day must be traceable to who did it and when.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import extract, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityloop.audit.service import record
from cityloop.db import cache
from cityloop.db.uow import UnitOfWork
from cityloop.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from cityloop.org.domain import Actor, Role
from cityloop.org.service import require_role
from cityloop.workcal.domain import WorkingCalendar
from cityloop.workcal.models import CalendarConfig, CalendarOverride, CalendarYear
from cityloop.workcal.schedule import (
    DEFAULT_SCHEDULE,
    DayKind,
    WorkPeriod,
    WorkSchedule,
    parse_day_kind,
)
from cityloop.workcal.schemas import (
    MAX_YEAR,
    MIN_YEAR,
    NOTE_MAX,
    CoveredYearPublic,
    OverridePublic,
    PeriodSchema,
    SchedulePublic,
)

CONFIG_ID = 1


# --- validation ----------------------------------------------------------------------------


def _check_day(day: object) -> dt.date:
    # datetime is a subclass of date: a datetime here is a caller mixing instants and dates.
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise InvalidInput(f"day must be a calendar date, got {day!r}", field="day")
    _check_year(day.year, field="day")
    return day


def _check_year(year: object, *, field: str = "year") -> int:
    if isinstance(year, bool) or not isinstance(year, int):
        raise InvalidInput(f"year must be a whole number, got {year!r}", field=field)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(
            f"year {year} is outside the supported range {MIN_YEAR}-{MAX_YEAR}", field=field
        )
    return year


def _check_note(note: str) -> str:
    cleaned = note.strip()
    if len(cleaned) > NOTE_MAX:
        raise InvalidInput(
            f"the note has {len(cleaned)} characters; at most {NOTE_MAX} are allowed",
            field="note",
        )
    return cleaned


# --- reading -------------------------------------------------------------------------------


def _schedule(session: Session) -> tuple[WorkSchedule, bool]:
    """The stored schedule and whether it is the default (no row)."""
    config = session.get(CalendarConfig, CONFIG_ID)
    if config is None:
        return DEFAULT_SCHEDULE, True
    try:
        return WorkSchedule.from_json(timezone=config.timezone, periods=config.periods), False
    except InvalidInput as exc:
        raise ConfigurationError(
            f"the stored working schedule is unusable ({exc.message}); set it again with "
            f"`cityloop calendar schedule set`",
            field="schedule",
        ) from None


def calendar_in(session: Session) -> WorkingCalendar:
    """The city's calendar read inside the caller's transaction (for other services)."""
    schedule, _ = _schedule(session)
    overrides = {row.day: DayKind(row.kind) for row in session.scalars(select(CalendarOverride))}
    years = set(session.scalars(select(CalendarYear.year)))
    return WorkingCalendar(schedule, overrides, years)


def load_calendar(uow: UnitOfWork) -> WorkingCalendar:
    """The city's calendar: stored schedule (or the defaults), every override, covered years."""
    with uow.read():
        return calendar_in(uow.session)


def _schedule_public(schedule: WorkSchedule, is_default: bool) -> SchedulePublic:
    return SchedulePublic(
        timezone=schedule.timezone,
        periods=[PeriodSchema(start=p.start, end=p.end) for p in schedule.periods],
        minutes_per_day=schedule.minutes_per_day,
        is_default=is_default,
    )


def get_schedule(uow: UnitOfWork) -> SchedulePublic:
    with uow.read():
        schedule, is_default = _schedule(uow.session)
    return _schedule_public(schedule, is_default)


def list_overrides(uow: UnitOfWork, *, year: int | None = None) -> list[OverridePublic]:
    """Overrides in date order, optionally of one year."""
    with uow.read():
        stmt = select(CalendarOverride).order_by(CalendarOverride.day)
        if year is not None:
            stmt = stmt.where(extract("year", CalendarOverride.day) == _check_year(year))
        return [OverridePublic.model_validate(row) for row in uow.session.scalars(stmt)]


def list_covered_years(uow: UnitOfWork) -> list[CoveredYearPublic]:
    with uow.read():
        stmt = select(CalendarYear).order_by(CalendarYear.year)
        return [CoveredYearPublic.model_validate(row) for row in uow.session.scalars(stmt)]


# --- changing ------------------------------------------------------------------------------


def _flush_unique(session: Session, message: str, field: str) -> None:
    """Flush, turning a unique violation (a concurrent insert of the same key) into Conflict."""
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(message, field=field) from None


def add_override(
    uow: UnitOfWork, actor: Actor, *, day: dt.date, kind: DayKind | str, note: str = ""
) -> OverridePublic:
    """Declare ``day`` a holiday or a working day. One override per date."""
    require_role(actor, Role.ADMIN)
    day = _check_day(day)
    day_kind = parse_day_kind(kind)
    cleaned = _check_note(note)
    with uow:
        session = uow.session
        existing = session.scalar(select(CalendarOverride).where(CalendarOverride.day == day))
        message = f"{day.isoformat()} already has an override; remove it first"
        if existing is not None:
            raise Conflict(f"{message} (it says {existing.kind})", field="day")
        row = CalendarOverride(day=day, kind=day_kind.value, note=cleaned)
        session.add(row)
        _flush_unique(session, message, "day")
        record(
            session,
            actor,
            action="calendar.override.add",
            entity="calendar_override",
            entity_id=row.id,
            detail={"day": day.isoformat(), "kind": day_kind.value, "note": cleaned},
        )
        result = OverridePublic.model_validate(row)
        uow.commit()
        cache.bump("case_context")  # deadlines cached in this process use the calendar
    return result


def remove_override(uow: UnitOfWork, actor: Actor, *, day: dt.date) -> OverridePublic:
    """Delete the override of ``day``; returns what was removed."""
    require_role(actor, Role.ADMIN)
    day = _check_day(day)
    with uow:
        session = uow.session
        row = session.scalar(select(CalendarOverride).where(CalendarOverride.day == day))
        if row is None:
            raise NotFound(f"{day.isoformat()} has no override", field="day")
        result = OverridePublic.model_validate(row)
        session.delete(row)
        record(
            session,
            actor,
            action="calendar.override.remove",
            entity="calendar_override",
            entity_id=row.id,
            detail={"day": day.isoformat(), "kind": row.kind, "note": row.note},
        )
        uow.commit()
        cache.bump("case_context")  # deadlines cached in this process use the calendar
    return result


def add_covered_year(
    uow: UnitOfWork, actor: Actor, *, year: int, note: str = ""
) -> CoveredYearPublic:
    """Declare that the city entered ``year``'s holidays as overrides, so deadlines may use it."""
    require_role(actor, Role.ADMIN)
    year = _check_year(year)
    cleaned = _check_note(note)
    with uow:
        session = uow.session
        message = f"year {year} is already covered"
        if session.get(CalendarYear, year) is not None:
            raise Conflict(message, field="year")
        row = CalendarYear(year=year, note=cleaned)
        session.add(row)
        _flush_unique(session, message, "year")
        record(
            session,
            actor,
            action="calendar.year.add",
            entity="calendar_year",
            entity_id=year,
            detail={"year": year, "note": cleaned},
        )
        result = CoveredYearPublic.model_validate(row)
        uow.commit()
        cache.bump("case_context")  # deadlines cached in this process use the calendar
    return result


def remove_covered_year(uow: UnitOfWork, actor: Actor, *, year: int) -> None:
    require_role(actor, Role.ADMIN)
    year = _check_year(year)
    with uow:
        session = uow.session
        row = session.get(CalendarYear, year)
        if row is None:
            raise NotFound(f"year {year} is not covered locally", field="year")
        session.delete(row)
        record(
            session,
            actor,
            action="calendar.year.remove",
            entity="calendar_year",
            entity_id=year,
            detail={"year": year, "note": row.note},
        )
        uow.commit()
        cache.bump("case_context")  # deadlines cached in this process use the calendar


def set_schedule(
    uow: UnitOfWork,
    actor: Actor,
    *,
    timezone: str,
    periods: Sequence[tuple[dt.time, dt.time]],
) -> SchedulePublic:
    """Replace the working periods and timezone.

    Deadlines already stored on cases are not touched here: they belong to the cases
    capability, which recomputes a case's deadline when the case changes.
    """
    require_role(actor, Role.ADMIN)
    schedule = WorkSchedule(
        periods=tuple(WorkPeriod(start, end) for start, end in periods), timezone=timezone
    )
    with uow:
        session = uow.session
        before, _ = _schedule(session)
        config = session.get(CalendarConfig, CONFIG_ID)
        if config is None:
            config = CalendarConfig(id=CONFIG_ID)
            session.add(config)
        config.timezone = schedule.timezone
        config.periods = schedule.periods_json()
        session.flush()
        record(
            session,
            actor,
            action="calendar.schedule.set",
            entity="calendar_config",
            entity_id=CONFIG_ID,
            detail={
                "before": {"timezone": before.timezone, "periods": before.periods_text()},
                "after": {"timezone": schedule.timezone, "periods": schedule.periods_text()},
            },
        )
        uow.commit()
        cache.bump("case_context")  # deadlines cached in this process use the calendar
    return _schedule_public(schedule, False)
