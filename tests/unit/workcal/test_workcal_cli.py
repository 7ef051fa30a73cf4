"""`cityloop calendar deadline` and the CLI's parsing, without a database.

The command takes its calendar from the click context object when one is given, so these tests
pass ``obj=WorkingCalendar(...)`` instead of opening the configured database.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cityloop.errors import ConfigurationError, InvalidInput
from cityloop.workcal.cli import (
    app,
    compute_deadline,
    format_local,
    parse_day,
    parse_local_datetime,
    parse_pause,
)
from cityloop.workcal.domain import ChineseCalendarSource, DayKind, WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
runner = CliRunner()


class SourceUpTo2026(ChineseCalendarSource):
    def covers(self, year: int) -> bool:
        return year <= 2026 and super().covers(year)


def invoke(*args: str, calendar: WorkingCalendar | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), obj=calendar or WorkingCalendar())


def test_deadline_prints_only_the_local_deadline() -> None:
    result = invoke("deadline", "--start", "2026-09-30 17:00", "--limit", "2工作日")
    assert result.exit_code == 0, result.output
    assert result.stdout == "2026-10-09 17:00\n"


def test_deadline_over_a_make_up_saturday() -> None:
    result = invoke("deadline", "--start", "2026-10-09 17:00", "--limit", "2工作时")
    assert result.stdout == "2026-10-10 09:00\n"


def test_deadline_takes_pauses_and_extensions() -> None:
    result = invoke(
        "deadline",
        "--start",
        "2026-03-03 08:00",
        "--limit",
        "2工作时",
        "--pause",
        "2026-03-03 09:00/2026-03-03 10:00",
        "--pause",
        "2026-03-03 10:30/2026-03-03 11:00",
        "--extensions",
        "1",
    )
    assert result.exit_code == 0, result.output
    # 4 working hours from 08:00 with 1.5 h paused: 08-09, 10-10:30, 11-12, 14-15:30.
    assert result.stdout == "2026-03-03 15:30\n"


def test_deadline_uses_the_calendars_overrides() -> None:
    typhoon = WorkingCalendar(overrides={dt.date(2026, 3, 4): DayKind.HOLIDAY})
    result = invoke(
        "deadline", "--start", "2026-03-03 17:00", "--limit", "2工作时", calendar=typhoon
    )
    assert result.stdout == "2026-03-05 09:00\n"


@pytest.mark.parametrize(
    ("args", "error", "fragment"),
    [
        (["--start", "30/09/2026 17:00", "--limit", "2工作日"], InvalidInput, "--start"),
        (["--start", "2026-09-31 17:00", "--limit", "2工作日"], InvalidInput, "--start"),
        (["--start", "2026-09-30", "--limit", "2工作日"], InvalidInput, "--start"),
        (["--start", "2026-09-30 17:00", "--limit", "2周"], InvalidInput, "unknown unit"),
        (
            ["--start", "2026-09-30 17:00", "--limit", "2工作日", "--pause", "x"],
            InvalidInput,
            "--pause",
        ),
        (
            ["--start", "2026-09-30 17:00", "--limit", "2工作日", "--extensions", "-1"],
            InvalidInput,
            "--extensions",
        ),
    ],
)
def test_bad_deadline_input_raises_a_sentence_naming_the_problem(
    args: list[str], error: type[Exception], fragment: str
) -> None:
    result = invoke("deadline", *args)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert isinstance(result.exception, error)
    assert fragment in str(result.exception)


def test_a_deadline_into_a_year_without_data_names_the_year() -> None:
    calendar = WorkingCalendar(holiday_source=SourceUpTo2026())
    result = invoke(
        "deadline", "--start", "2026-12-31 17:00", "--limit", "2工作时", calendar=calendar
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigurationError)
    assert "no holiday data for 2027" in str(result.exception)


def test_local_datetimes_are_read_in_the_calendar_zone() -> None:
    value = parse_local_datetime("2026-09-30 17:00", SHANGHAI, option="--start")
    assert value == dt.datetime(2026, 9, 30, 9, 0, tzinfo=dt.UTC)
    assert parse_local_datetime("2026-09-30T17:00:30", SHANGHAI, option="--start").second == 30


def test_an_explicit_offset_is_respected() -> None:
    value = parse_local_datetime("2026-09-30 09:00+00:00", SHANGHAI, option="--start")
    assert format_local(value, SHANGHAI) == "2026-09-30 17:00"


def test_an_unreadable_datetime_names_the_option() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_local_datetime("tomorrow", SHANGHAI, option="--start")
    assert caught.value.field == "start"
    assert "--start" in caught.value.message


def test_a_backwards_pause_is_refused() -> None:
    with pytest.raises(InvalidInput, match="ends before it starts"):
        parse_pause("2026-03-03 10:00/2026-03-03 09:00", SHANGHAI)


def test_days_are_read_as_iso_dates() -> None:
    assert parse_day("2027-01-01") == dt.date(2027, 1, 1)
    with pytest.raises(InvalidInput) as caught:
        parse_day("2027/01/01")
    assert caught.value.field == "day"


def test_compute_deadline_is_the_command_without_io() -> None:
    text = compute_deadline(WorkingCalendar(), start="2026-09-30 17:00", limit="3自然日")
    assert text == "2026-10-03 17:00"
