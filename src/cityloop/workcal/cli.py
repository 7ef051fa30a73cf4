"""`cityloop calendar ...`: deadlines, local holiday overrides, covered years, working hours.

Parsing and printing are plain functions (``parse_local_datetime``, ``compute_deadline`` ...)
so they are tested without a database. Commands raise ``CityloopError`` subclasses for bad
input; the top-level CLI turns them into one ``error: ...`` line and exit code 2.

``deadline`` uses the calendar found in the click context object when one is there (tests pass
``obj=WorkingCalendar(...)``), otherwise the one stored in the configured database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from cityloop.cli_support import open_database
from cityloop.errors import InvalidInput
from cityloop.org.domain import SYSTEM_ACTOR
from cityloop.workcal import service
from cityloop.workcal.domain import WorkingCalendar, parse_time_limit
from cityloop.workcal.schedule import parse_day_kind, parse_periods
from cityloop.workcal.schemas import SchedulePublic

OUTPUT_FORMAT = "%Y-%m-%d %H:%M"

app = typer.Typer(
    help="Working-time calendar: deadlines, holidays and working hours.", no_args_is_help=True
)
override_app = typer.Typer(
    help="Local holidays and make-up working days (they beat chinesecalendar).",
    no_args_is_help=True,
)
year_app = typer.Typer(
    help="Years whose holidays the city entered itself (for years chinesecalendar lacks).",
    no_args_is_help=True,
)
schedule_app = typer.Typer(help="Working periods of a day and the timezone.", no_args_is_help=True)
app.add_typer(override_app, name="override")
app.add_typer(year_app, name="year")
app.add_typer(schedule_app, name="schedule")


# --- pure parsing and printing ---------------------------------------------------------------

_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}")


def parse_local_datetime(text: str, tz: ZoneInfo, *, option: str) -> dt.datetime:
    """Read "2026-09-30 17:00" as local time in ``tz`` (an explicit offset is respected).

    A bare date is refused: "the 30th" could mean 00:00 or the start of work, and a deadline
    off by a working day is worse than a question.
    """
    cleaned = text.strip()
    error = InvalidInput(
        f"cannot read {option} {text!r}: expected a date and time such as 2026-09-30 17:00",
        field=option.lstrip("-"),
    )
    if not _DATETIME_RE.match(cleaned):
        raise error
    try:
        value = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise error from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def parse_pause(text: str, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Read "FROM/TO", e.g. "2026-10-01 08:00/2026-10-05 18:00"."""
    parts = text.split("/")
    if len(parts) != 2:
        raise InvalidInput(
            f"cannot read --pause {text!r}: expected FROM/TO such as "
            f"2026-10-01 08:00/2026-10-05 18:00",
            field="pause",
        )
    start = parse_local_datetime(parts[0], tz, option="--pause")
    end = parse_local_datetime(parts[1], tz, option="--pause")
    if end < start:
        raise InvalidInput(f"--pause {text!r} ends before it starts", field="pause")
    return start, end


def parse_day(text: str, *, option: str = "--day") -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"cannot read {option} {text!r}: expected a date such as 2027-01-01",
            field=option.lstrip("-"),
        ) from None


def format_local(instant: dt.datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).strftime(OUTPUT_FORMAT)


def compute_deadline(
    calendar: WorkingCalendar,
    *,
    start: str,
    limit: str,
    pauses: Sequence[str] = (),
    extensions: int = 0,
) -> str:
    """The `deadline` command without I/O: text in, the local deadline as text out."""
    tz = calendar.tz
    start_at = parse_local_datetime(start, tz, option="--start")
    time_limit = parse_time_limit(limit)
    pause_spans = [parse_pause(p, tz) for p in pauses]
    if extensions < 0:
        raise InvalidInput(f"--extensions must be 0 or more, got {extensions}", field="extensions")
    due = calendar.deadline(start_at, time_limit, pauses=pause_spans, extensions=extensions)
    return format_local(due, tz)


def _calendar(ctx: typer.Context) -> WorkingCalendar:
    injected = ctx.find_object(WorkingCalendar)
    if injected is not None:
        return injected
    return service.load_calendar(open_database().uow())


# --- commands ---------------------------------------------------------------------------------


@app.command()
def deadline(
    ctx: typer.Context,
    start: Annotated[
        str, typer.Option(help='Local start, e.g. "2026-09-30 17:00" (calendar timezone).')
    ],
    limit: Annotated[
        str, typer.Option(help='Time limit as written, e.g. "2工作日", "4紧急工作时".')
    ],
    pause: Annotated[
        list[str] | None,
        typer.Option(help='Clock stopped FROM/TO, e.g. "2026-10-01 08:00/2026-10-05 18:00".'),
    ] = None,
    extensions: Annotated[
        int, typer.Option(help="Approved extensions (延期); each adds one original limit.")
    ] = 0,
) -> None:
    """Print the deadline (local time, YYYY-MM-DD HH:MM) and nothing else."""
    typer.echo(
        compute_deadline(
            _calendar(ctx), start=start, limit=limit, pauses=pause or (), extensions=extensions
        )
    )


def _recompute_running_deadlines() -> None:
    """A stored deadline is a cache of the calendar: move the running ones with it."""
    from cityloop.cases.service import recompute_open_deadlines

    moved = recompute_open_deadlines(open_database().uow(), SYSTEM_ACTOR)
    typer.echo(f"{moved} running deadline(s) recomputed")


@override_app.command("add")
def override_add(
    day: Annotated[str, typer.Option(help="Date, e.g. 2027-01-01.")],
    kind: Annotated[str, typer.Option(help="holiday or workday.")],
    note: Annotated[str, typer.Option(help='Why, e.g. "元旦" or "国庆调休".')] = "",
) -> None:
    """Declare a date a holiday or a (make-up) working day."""
    row = service.add_override(
        open_database().uow(),
        SYSTEM_ACTOR,
        day=parse_day(day),
        kind=parse_day_kind(kind),
        note=note,
    )
    typer.echo(f"added {row.day.isoformat()} {row.kind.value} {row.note}".rstrip())
    _recompute_running_deadlines()


@override_app.command("remove")
def override_remove(day: Annotated[str, typer.Option(help="Date, e.g. 2027-01-01.")]) -> None:
    """Delete a date's override."""
    row = service.remove_override(open_database().uow(), SYSTEM_ACTOR, day=parse_day(day))
    typer.echo(f"removed {row.day.isoformat()} {row.kind.value}")
    _recompute_running_deadlines()


@override_app.command("list")
def override_list(
    year: Annotated[int | None, typer.Option(help="Only this year.")] = None,
) -> None:
    """List overrides in date order: date, kind, note (tab-separated)."""
    for row in service.list_overrides(open_database().uow(), year=year):
        typer.echo(f"{row.day.isoformat()}\t{row.kind.value}\t{row.note}")


@year_app.command("add")
def year_add(
    year: Annotated[int, typer.Argument(help="e.g. 2027")],
    note: Annotated[str, typer.Option(help="Source of the holidays entered.")] = "",
) -> None:
    """Mark a year as covered by the overrides the city entered."""
    row = service.add_covered_year(open_database().uow(), SYSTEM_ACTOR, year=year, note=note)
    typer.echo(f"year {row.year} covered")
    _recompute_running_deadlines()


@year_app.command("remove")
def year_remove(year: Annotated[int, typer.Argument(help="e.g. 2027")]) -> None:
    """Withdraw a locally covered year (deadlines into it then refuse to compute)."""
    service.remove_covered_year(open_database().uow(), SYSTEM_ACTOR, year=year)
    typer.echo(f"year {year} no longer covered locally")
    _recompute_running_deadlines()


@year_app.command("list")
def year_list() -> None:
    """List locally covered years: year, note (tab-separated)."""
    for row in service.list_covered_years(open_database().uow()):
        typer.echo(f"{row.year}\t{row.note}")


def _schedule_line(schedule: SchedulePublic) -> str:
    periods = ",".join(f"{p.start:%H:%M}-{p.end:%H:%M}" for p in schedule.periods)
    return f"{schedule.timezone} {periods} ({schedule.minutes_per_day} min/day)"


@schedule_app.command("show")
def schedule_show() -> None:
    """Print the timezone and working periods."""
    schedule = service.get_schedule(open_database().uow())
    typer.echo(_schedule_line(schedule) + (" (default)" if schedule.is_default else ""))


@schedule_app.command("set")
def schedule_set(
    periods: Annotated[str, typer.Option(help='e.g. "08:00-12:00,14:00-18:00".')],
    timezone: Annotated[str, typer.Option(help="IANA timezone.")] = "Asia/Shanghai",
) -> None:
    """Replace the working periods (and timezone)."""
    parsed = parse_periods(periods)
    schedule = service.set_schedule(
        open_database().uow(),
        SYSTEM_ACTOR,
        timezone=timezone,
        periods=[(p.start, p.end) for p in parsed],
    )
    typer.echo(f"schedule set: {_schedule_line(schedule)}")
    _recompute_running_deadlines()
