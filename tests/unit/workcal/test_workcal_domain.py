"""The working calendar as a specification: deadlines, elapsed time, lights, schedules.

Dates used (chinesecalendar 2025-2026 arrangements):
- 2025-12-31 Wed; 2026-01-01..03 New Year holidays; 2026-01-04 Sun is a make-up working day.
- 2026-02-14 Sat make-up day; 2026-02-15..23 Spring Festival; 2026-02-24 Tue back to work.
- 2026-03-03 Tue, 2026-03-06 Fri, 2026-03-07/08 weekend: an ordinary week.
- 2026-10-01..07 National Day; 2026-10-08 Thu works; 2026-10-10 Sat is a make-up day.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from cityloop.errors import ConfigurationError, InvalidInput
from cityloop.workcal.domain import (
    ChineseCalendarSource,
    Clock,
    DayKind,
    Light,
    LightThresholds,
    LimitArrays,
    TimeLimit,
    Unit,
    WorkingCalendar,
    WorkPeriod,
    WorkSchedule,
    parse_day_kind,
    parse_periods,
    parse_time_limit,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> dt.datetime:
    """A Shanghai wall time written "2026-03-03 09:00"."""
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def local(instant: dt.datetime) -> str:
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


class SourceUpTo:
    """chinesecalendar cut off after ``last_year``: keeps missing-year tests true when the
    package later learns 2027."""

    def __init__(self, last_year: int) -> None:
        self.last_year = last_year
        self._real = ChineseCalendarSource()

    def covers(self, year: int) -> bool:
        return year <= self.last_year and self._real.covers(year)

    def is_workday(self, day: dt.date) -> bool:
        return self._real.is_workday(day)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar()


def deadline(cal: WorkingCalendar, start: str, limit: str, **kwargs: object) -> str:
    return local(cal.deadline(at(start), parse_time_limit(limit), **kwargs))  # type: ignore[arg-type]


# --- the two worked examples -------------------------------------------------------------------


def test_two_working_days_from_the_eve_of_national_day_end_on_9_october(
    cal: WorkingCalendar,
) -> None:
    assert deadline(cal, "2026-09-30 17:00", "2工作日") == "2026-10-09 17:00"


def test_two_working_hours_from_friday_afternoon_end_on_the_saturday_make_up_day(
    cal: WorkingCalendar,
) -> None:
    assert deadline(cal, "2026-10-09 17:00", "2工作时") == "2026-10-10 09:00"


# --- working hours within and across days --------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        ("2026-03-03 09:00", "2工作时", "2026-03-03 11:00"),  # inside the morning
        ("2026-03-03 11:00", "2工作时", "2026-03-03 15:00"),  # skips the lunch break
        ("2026-03-03 10:00", "2工作时", "2026-03-03 12:00"),  # ends at 12:00, not 14:00
        ("2026-03-03 16:00", "2工作时", "2026-03-03 18:00"),  # ends at 18:00, not next morning
        ("2026-03-03 16:00", "3工作时", "2026-03-04 09:00"),  # spills into the next day
        ("2026-03-03 11:50", "30分钟", "2026-03-03 14:20"),  # minutes skip lunch too
        ("2026-03-03 08:00", "1工作日", "2026-03-03 18:00"),  # a full day from the opening bell
        ("2026-03-03 10:00", "1工作日", "2026-03-04 10:00"),  # 480 working minutes later
        ("2026-03-03 14:00", "8工作时", "2026-03-04 12:00"),  # ends at lunch, not at 14:00
        ("2026-03-06 17:00", "2工作时", "2026-03-09 09:00"),  # weekend skipped
        ("2026-03-06 10:00", "3工作日", "2026-03-11 10:00"),  # Fri + 3 days = Wed
    ],
)
def test_working_clock_counts_only_working_periods(
    cal: WorkingCalendar, start: str, limit: str, expected: str
) -> None:
    assert deadline(cal, start, limit) == expected


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        ("2026-03-03 22:00", "1工作时", "2026-03-04 09:00"),  # night: counts from 08:00
        ("2026-03-03 06:00", "1工作时", "2026-03-03 09:00"),  # early morning
        ("2026-03-03 12:30", "1工作时", "2026-03-03 15:00"),  # lunch: counts from 14:00
        ("2026-03-03 12:00", "1工作时", "2026-03-03 15:00"),  # exactly at the lunch break
        ("2026-03-03 18:00", "1工作分钟", "2026-03-04 08:01"),  # exactly at closing time
        ("2026-03-07 10:00", "1工作时", "2026-03-09 09:00"),  # Saturday
        ("2026-10-03 10:00", "1工作时", "2026-10-08 09:00"),  # inside National Day
        ("2026-10-03 10:00", "1工作日", "2026-10-08 18:00"),  # a whole day from a holiday
    ],
)
def test_a_start_in_non_working_time_counts_from_the_next_working_instant(
    cal: WorkingCalendar, start: str, limit: str, expected: str
) -> None:
    assert deadline(cal, start, limit) == expected


# --- holidays, make-up days and year boundaries ------------------------------------------------


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        ("2025-12-31 17:00", "2工作时", "2026-01-04 09:00"),  # New Year, then a make-up Sunday
        ("2025-12-31 17:00", "2工作日", "2026-01-05 17:00"),  # 1 h + 480 on 4th + 7 h on 5th
        ("2026-02-13 17:00", "2工作时", "2026-02-14 09:00"),  # make-up Saturday before 春节
        ("2026-02-14 17:00", "2工作时", "2026-02-24 09:00"),  # Spring Festival skipped
        ("2026-10-08 17:00", "2工作时", "2026-10-09 09:00"),  # 8 Oct is an ordinary workday
    ],
)
def test_statutory_holidays_and_make_up_days_come_from_chinesecalendar(
    cal: WorkingCalendar, start: str, limit: str, expected: str
) -> None:
    assert deadline(cal, start, limit) == expected


def test_day_types_of_a_holiday_a_make_up_day_and_a_weekend(cal: WorkingCalendar) -> None:
    assert cal.is_working_day(dt.date(2026, 10, 1)) is False
    assert cal.is_working_day(dt.date(2026, 10, 10)) is True  # Saturday, 调休
    assert cal.is_working_day(dt.date(2026, 3, 7)) is False  # ordinary Saturday
    assert cal.is_working_day(dt.date(2026, 3, 4)) is True


def test_a_local_holiday_override_removes_a_working_day() -> None:
    typhoon = WorkingCalendar(overrides={dt.date(2026, 3, 4): DayKind.HOLIDAY})
    assert typhoon.is_working_day(dt.date(2026, 3, 4)) is False
    assert deadline(typhoon, "2026-03-03 17:00", "2工作时") == "2026-03-05 09:00"


def test_a_local_workday_override_beats_a_statutory_holiday() -> None:
    city = WorkingCalendar(overrides={dt.date(2026, 10, 2): "workday"})
    assert deadline(city, "2026-09-30 17:00", "2工作时") == "2026-10-02 09:00"


def test_a_locally_covered_year_uses_weekdays_and_its_overrides() -> None:
    city = WorkingCalendar(
        overrides={dt.date(2027, 1, 1): DayKind.HOLIDAY},
        covered_years={2027},
        holiday_source=SourceUpTo(2026),
    )
    # 1 Jan 2027 is a Friday declared a holiday; 2-3 Jan is a weekend.
    assert deadline(city, "2026-12-31 17:00", "2工作时") == "2027-01-04 09:00"
    assert city.is_working_day(dt.date(2027, 1, 4)) is True
    assert city.is_working_day(dt.date(2027, 1, 9)) is False  # Saturday


def test_a_deadline_reaching_a_year_without_holiday_data_names_that_year() -> None:
    city = WorkingCalendar(holiday_source=SourceUpTo(2026))
    with pytest.raises(ConfigurationError) as caught:
        city.deadline(at("2026-12-31 17:00"), parse_time_limit("2工作时"))
    message = caught.value.message
    assert message.startswith("no holiday data for 2027:")
    assert "cityloop calendar year add 2027" in message
    assert "cityloop calendar override add" in message


def test_a_start_in_a_year_without_holiday_data_names_that_year() -> None:
    with pytest.raises(ConfigurationError, match="no holiday data for 2099"):
        WorkingCalendar().deadline(at("2099-03-03 09:00"), parse_time_limit("1工作时"))


def test_day_type_of_an_unknown_year_is_refused_not_guessed() -> None:
    with pytest.raises(ConfigurationError, match="2099"):
        WorkingCalendar().is_working_day(dt.date(2099, 3, 3))


def test_an_override_alone_does_not_make_a_year_known() -> None:
    city = WorkingCalendar(
        overrides={dt.date(2027, 1, 1): DayKind.HOLIDAY}, holiday_source=SourceUpTo(2026)
    )
    assert city.covers(2027) is False
    with pytest.raises(ConfigurationError, match="2027"):
        city.is_working_day(dt.date(2027, 1, 1))


def test_a_deadline_inside_a_later_covered_year_ignores_an_unknown_year_before_it() -> None:
    city = WorkingCalendar(covered_years={2028}, holiday_source=SourceUpTo(2026))
    assert deadline(city, "2026-03-03 09:00", "1工作时") == "2026-03-03 10:00"
    # 2028-03-03 is a Friday; nothing about 2027 is needed.
    assert deadline(city, "2028-03-03 17:00", "2工作时") == "2028-03-06 09:00"
    assert deadline(city, "2026-03-03 09:00", "2工作时") == "2026-03-03 11:00"


def test_continuous_clocks_need_no_holiday_data() -> None:
    city = WorkingCalendar(holiday_source=SourceUpTo(2026))
    assert deadline(city, "2026-12-31 23:00", "2紧急工作时") == "2027-01-01 01:00"
    assert deadline(city, "2026-12-31 10:00", "3自然日") == "2027-01-03 10:00"


# --- urgent and calendar clocks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        ("2026-03-03 22:00", "2紧急工作时", "2026-03-04 00:00"),  # nights count
        ("2026-10-01 10:00", "2紧急工作时", "2026-10-01 12:00"),  # holidays count
        ("2026-03-03 11:30", "1紧急工作时", "2026-03-03 12:30"),  # lunch counts
        ("2026-03-06 17:00", "1紧急工作日", "2026-03-07 17:00"),  # a day is 24 h
        ("2026-03-03 10:00", "30紧急分钟", "2026-03-03 10:30"),
        ("2026-09-30 17:00", "3自然日", "2026-10-03 17:00"),  # calendar days ignore holidays
    ],
)
def test_urgent_and_calendar_clocks_are_continuous(
    cal: WorkingCalendar, start: str, limit: str, expected: str
) -> None:
    assert deadline(cal, start, limit) == expected


# --- pauses and extensions -----------------------------------------------------------------------


def test_a_pause_in_working_time_pushes_the_deadline_by_its_working_length(
    cal: WorkingCalendar,
) -> None:
    pause = (at("2026-03-03 09:00"), at("2026-03-03 10:00"))
    assert deadline(cal, "2026-03-03 08:00", "2工作时", pauses=[pause]) == "2026-03-03 11:00"


def test_a_pause_spanning_a_holiday_only_stops_the_working_time_inside_it(
    cal: WorkingCalendar,
) -> None:
    # Without the pause: 17:00 30 Sep + 2 working days = 17:00 9 Oct. The pause covers the
    # holidays (no working time to lose) and the whole of 8 Oct (480 working minutes).
    pause = (at("2026-09-30 18:00"), at("2026-10-08 18:00"))
    assert deadline(cal, "2026-09-30 17:00", "2工作日", pauses=[pause]) == "2026-10-10 17:00"


def test_a_pause_in_non_working_time_changes_nothing(cal: WorkingCalendar) -> None:
    night = (at("2026-03-03 18:00"), at("2026-03-04 08:00"))
    assert deadline(cal, "2026-03-03 17:00", "2工作时", pauses=[night]) == "2026-03-04 09:00"


def test_a_start_inside_a_pause_counts_from_its_end(cal: WorkingCalendar) -> None:
    pause = (at("2026-03-03 08:00"), at("2026-03-03 15:00"))
    assert deadline(cal, "2026-03-03 09:00", "1工作时", pauses=[pause]) == "2026-03-03 16:00"


def test_overlapping_pauses_count_once(cal: WorkingCalendar) -> None:
    pauses = [
        (at("2026-03-03 09:00"), at("2026-03-03 11:00")),
        (at("2026-03-03 10:00"), at("2026-03-03 11:00")),
    ]
    # 08:00-09:00 counts, 09:00-11:00 is paused once, 11:00-12:00 completes the two hours.
    assert deadline(cal, "2026-03-03 08:00", "2工作时", pauses=pauses) == "2026-03-03 12:00"


def test_a_pause_after_the_deadline_changes_nothing(cal: WorkingCalendar) -> None:
    later = (at("2026-03-03 10:00"), at("2026-03-05 10:00"))
    assert deadline(cal, "2026-03-03 08:00", "2工作时", pauses=[later]) == "2026-03-03 10:00"


def test_a_pause_on_the_urgent_clock_stops_wall_time(cal: WorkingCalendar) -> None:
    pause = (at("2026-03-03 23:00"), at("2026-03-04 01:00"))
    assert deadline(cal, "2026-03-03 22:00", "2紧急工作时", pauses=[pause]) == "2026-03-04 02:00"


def test_a_pause_ending_before_it_starts_is_refused(cal: WorkingCalendar) -> None:
    backwards = (at("2026-03-04 10:00"), at("2026-03-03 10:00"))
    with pytest.raises(InvalidInput) as caught:
        cal.deadline(at("2026-03-03 08:00"), parse_time_limit("1工作时"), pauses=[backwards])
    assert caught.value.field == "pauses"


def test_each_extension_adds_one_original_limit(cal: WorkingCalendar) -> None:
    assert deadline(cal, "2026-03-03 10:00", "2工作日", extensions=1) == "2026-03-09 10:00"
    assert deadline(cal, "2026-03-03 10:00", "2工作日", extensions=2) == "2026-03-11 10:00"
    assert deadline(cal, "2026-03-03 22:00", "2紧急工作时", extensions=1) == "2026-03-04 02:00"


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_extensions_must_be_a_whole_number_of_at_least_zero(
    cal: WorkingCalendar, bad: object
) -> None:
    with pytest.raises(InvalidInput) as caught:
        cal.deadline(at("2026-03-03 10:00"), parse_time_limit("2工作日"), extensions=bad)  # type: ignore[arg-type]
    assert caught.value.field == "extensions"


# --- instants in and out -------------------------------------------------------------------------


def test_deadlines_are_returned_in_utc(cal: WorkingCalendar) -> None:
    due = cal.deadline(at("2026-09-30 17:00"), parse_time_limit("2工作日"))
    assert due.tzinfo is dt.UTC
    assert due == dt.datetime(2026, 10, 9, 9, 0, tzinfo=dt.UTC)


def test_a_start_given_in_another_zone_is_the_same_instant(cal: WorkingCalendar) -> None:
    utc_start = dt.datetime(2026, 9, 30, 9, 0, tzinfo=dt.UTC)  # 17:00 in Shanghai
    assert local(cal.deadline(utc_start, parse_time_limit("2工作日"))) == "2026-10-09 17:00"


def test_a_naive_start_is_refused(cal: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput, match="no timezone") as caught:
        cal.deadline(dt.datetime(2026, 3, 3, 9, 0), parse_time_limit("1工作时"))
    assert caught.value.field == "start"


def test_seconds_of_the_start_are_kept(cal: WorkingCalendar) -> None:
    start = at("2026-03-03 09:00") + dt.timedelta(seconds=30, microseconds=250_000)
    due = cal.deadline(start, parse_time_limit("1工作时"))
    assert due - start == dt.timedelta(hours=1)


def test_a_city_schedule_changes_the_length_of_a_working_day() -> None:
    summer = WorkSchedule.from_text(timezone="Asia/Shanghai", periods="08:00-12:00,14:30-18:30")
    city = WorkingCalendar(summer)
    assert summer.minutes_per_day == 480
    assert deadline(city, "2026-03-03 11:00", "2工作时") == "2026-03-03 15:30"
    assert deadline(city, "2026-03-03 17:30", "1工作时") == "2026-03-03 18:30"
    short = WorkingCalendar(WorkSchedule.from_text(timezone="Asia/Shanghai", periods="09:00-12:00"))
    assert deadline(short, "2026-03-03 09:00", "2工作日") == "2026-03-04 12:00"


def test_a_schedule_in_a_daylight_saving_zone_follows_local_wall_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    city = WorkingCalendar(WorkSchedule(timezone="Europe/Berlin"), holiday_source=_WeekdaysOnly())
    # Clocks go forward on Sunday 29 March 2026; Friday 17:00 + 2 h is Monday 09:00 local.
    start = dt.datetime(2026, 3, 27, 17, 0, tzinfo=berlin)
    due = city.deadline(start, parse_time_limit("2工作时"))
    assert due.astimezone(berlin) == dt.datetime(2026, 3, 30, 9, 0, tzinfo=berlin)


class _WeekdaysOnly:
    def covers(self, year: int) -> bool:
        return True

    def is_workday(self, day: dt.date) -> bool:
        return day.weekday() < 5


# --- elapsed -------------------------------------------------------------------------------------


def test_elapsed_working_minutes_skip_lunch_nights_and_weekends(cal: WorkingCalendar) -> None:
    assert cal.elapsed(at("2026-03-03 11:00"), at("2026-03-03 15:00"), clock=Clock.WORKING) == 120
    assert cal.elapsed(at("2026-03-06 17:00"), at("2026-03-09 09:00"), clock=Clock.WORKING) == 120
    assert cal.elapsed(at("2026-09-30 17:00"), at("2026-10-09 17:00"), clock=Clock.WORKING) == 960


def test_elapsed_on_continuous_clocks_is_wall_time(cal: WorkingCalendar) -> None:
    start, end = at("2026-03-06 17:00"), at("2026-03-09 09:00")
    assert cal.elapsed(start, end, clock=Clock.URGENT) == 64 * 60
    assert cal.elapsed(start, end, clock=Clock.CALENDAR) == 64 * 60


def test_elapsed_leaves_out_pauses(cal: WorkingCalendar) -> None:
    pause = (at("2026-03-03 09:00"), at("2026-03-03 10:30"))
    start, end = at("2026-03-03 08:00"), at("2026-03-03 12:00")
    assert cal.elapsed(start, end, clock=Clock.WORKING, pauses=[pause]) == 150
    assert cal.elapsed(start, end, clock=Clock.URGENT, pauses=[pause]) == 150


def test_elapsed_refuses_an_end_before_the_start(cal: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput) as caught:
        cal.elapsed(at("2026-03-03 10:00"), at("2026-03-03 09:00"), clock=Clock.WORKING)
    assert caught.value.field == "end"


def test_elapsed_up_to_the_deadline_is_the_whole_limit(cal: WorkingCalendar) -> None:
    limit = parse_time_limit("15工作日")
    start = at("2026-09-28 10:17")
    due = cal.deadline(start, limit)
    assert cal.elapsed(start, due, clock=Clock.WORKING) == cal.limit_minutes(limit) == 15 * 480


# --- lights --------------------------------------------------------------------------------------

# "5工作时" from Tuesday 08:00 is 300 working minutes: 79 % = 237 min (11:57), 80 % = 240 min
# (12:00), 99 % = 297 min (14:57), 100 % = 300 min (15:00).


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-03 08:00", Light.GREEN),
        ("2026-03-03 11:57", Light.GREEN),  # 79 %
        ("2026-03-03 12:00", Light.YELLOW),  # 80 %
        ("2026-03-03 13:59", Light.YELLOW),  # lunch: still 80 %
        ("2026-03-03 14:57", Light.YELLOW),  # 99 %
        ("2026-03-03 15:00", Light.RED),  # 100 %
        ("2026-03-10 09:00", Light.RED),
    ],
)
def test_light_turns_yellow_at_80_and_red_at_100_percent(
    cal: WorkingCalendar, now: str, expected: Light
) -> None:
    assert cal.light(at("2026-03-03 08:00"), at(now), parse_time_limit("5工作时")) is expected


def test_light_counts_against_the_extended_limit(cal: WorkingCalendar) -> None:
    limit = parse_time_limit("5工作时")
    start, now = at("2026-03-03 08:00"), at("2026-03-03 15:00")  # 100 % of one limit
    assert cal.light(start, now, limit) is Light.RED
    assert cal.light(start, now, limit, extensions=1) is Light.GREEN  # 50 % of two


def test_light_ignores_paused_time(cal: WorkingCalendar) -> None:
    pause = (at("2026-03-03 14:00"), at("2026-03-03 18:00"))
    now = at("2026-03-03 18:00")
    assert cal.light(at("2026-03-03 08:00"), now, parse_time_limit("5工作时")) is Light.RED
    assert (
        cal.light(at("2026-03-03 08:00"), now, parse_time_limit("5工作时"), pauses=[pause])
        is Light.YELLOW
    )


def test_light_thresholds_are_configurable() -> None:
    strict = WorkingCalendar(thresholds=LightThresholds(yellow_percent=50, red_percent=90))
    limit = parse_time_limit("5工作时")
    start = at("2026-03-03 08:00")
    assert strict.light(start, at("2026-03-03 10:29"), limit) is Light.GREEN  # 49.7 %
    assert strict.light(start, at("2026-03-03 10:30"), limit) is Light.YELLOW  # 50 %
    assert strict.light(start, at("2026-03-03 14:30"), limit) is Light.RED  # 90 %
    assert (
        strict.light(start, at("2026-03-03 10:30"), limit, thresholds=LightThresholds())
        is Light.GREEN
    )


@pytest.mark.parametrize(("yellow", "red"), [(0, 100), (90, 80), (-5, 100)])
def test_light_thresholds_must_be_ordered_and_positive(yellow: float, red: float) -> None:
    with pytest.raises(InvalidInput):
        LightThresholds(yellow_percent=yellow, red_percent=red)


def test_light_is_green_before_the_start(cal: WorkingCalendar) -> None:
    limit = parse_time_limit("1工作时")
    assert cal.light(at("2026-03-03 10:00"), at("2026-03-03 09:00"), limit) is Light.GREEN


def test_a_long_overdue_case_is_red_even_when_now_is_in_an_unknown_year() -> None:
    city = WorkingCalendar(holiday_source=SourceUpTo(2026))
    light = city.light(at("2026-03-03 08:00"), at("2027-06-01 10:00"), parse_time_limit("1工作日"))
    assert light is Light.RED


def test_light_on_the_urgent_clock_counts_nights(cal: WorkingCalendar) -> None:
    limit = parse_time_limit("10紧急工作时")
    assert cal.light(at("2026-03-03 20:00"), at("2026-03-04 04:00"), limit) is Light.YELLOW
    assert cal.light(at("2026-03-03 20:00"), at("2026-03-04 06:00"), limit) is Light.RED


# --- limit lengths -------------------------------------------------------------------------------


def test_limit_minutes_follow_the_clock_and_the_schedule(cal: WorkingCalendar) -> None:
    assert cal.limit_minutes(parse_time_limit("2工作日")) == 960
    assert cal.limit_minutes(parse_time_limit("2工作时")) == 120
    assert cal.limit_minutes(parse_time_limit("1紧急工作日")) == 1440
    assert cal.limit_minutes(parse_time_limit("3自然日")) == 3 * 1440
    assert cal.limit_minutes(parse_time_limit("2工作日"), extensions=2) == 3 * 960


# --- schedules and day kinds ---------------------------------------------------------------------


def test_the_default_schedule_is_eight_to_twelve_and_two_to_six_in_shanghai() -> None:
    schedule = WorkSchedule()
    assert schedule.timezone == "Asia/Shanghai"
    assert schedule.periods_text() == "08:00-12:00,14:00-18:00"
    assert schedule.minutes_per_day == 480


@pytest.mark.parametrize(
    ("periods", "fragment"),
    [
        ("08:00-12:00,11:00-18:00", "must not overlap"),
        ("14:00-18:00,08:00-12:00", "must be in order"),
        ("12:00-08:00", "must end after it starts"),
        ("08:00-08:00", "must end after it starts"),
        ("8am-noon", "cannot read working period"),
        ("25:00-26:00", "impossible time"),
        ("", "no working periods"),
    ],
)
def test_bad_working_periods_are_refused_with_a_reason(periods: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment) as caught:
        WorkSchedule.from_text(timezone="Asia/Shanghai", periods=periods)
    assert caught.value.field == "periods"


def test_an_empty_schedule_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at least one period"):
        WorkSchedule(periods=())


def test_a_period_with_seconds_is_refused() -> None:
    with pytest.raises(InvalidInput, match="whole minute"):
        WorkPeriod(dt.time(8, 0, 30), dt.time(12, 0))


def test_touching_periods_are_allowed() -> None:
    schedule = WorkSchedule(periods=parse_periods("08:00-12:00 12:00-13:00"))
    assert schedule.minutes_per_day == 300


def test_an_unknown_timezone_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown timezone") as caught:
        WorkSchedule(timezone="Asia/Atlantis")
    assert caught.value.field == "timezone"


def test_schedule_round_trips_through_its_storage_form() -> None:
    schedule = WorkSchedule.from_text(timezone="Asia/Urumqi", periods="09:30-13:30,15:30-19:30")
    again = WorkSchedule.from_json(timezone="Asia/Urumqi", periods=schedule.periods_json())
    assert again == schedule
    assert schedule.periods_json() == [["09:30", "13:30"], ["15:30", "19:30"]]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("holiday", DayKind.HOLIDAY),
        (" Workday ", DayKind.WORKDAY),
        ("休", DayKind.HOLIDAY),
        ("班", DayKind.WORKDAY),
    ],
)
def test_day_kinds_are_read_in_english_and_chinese(text: str, kind: DayKind) -> None:
    assert parse_day_kind(text) is kind


def test_an_unknown_day_kind_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown day kind") as caught:
        parse_day_kind("festival")
    assert caught.value.field == "kind"


def test_an_override_of_unknown_kind_is_refused_when_building_a_calendar() -> None:
    with pytest.raises(InvalidInput, match="unknown day kind"):
        WorkingCalendar(overrides={dt.date(2026, 3, 3): "day off"})


# --- batch ---------------------------------------------------------------------------------------


def _epoch(text: str) -> float:
    return at(text).timestamp()


def test_batch_computes_the_worked_examples(cal: WorkingCalendar) -> None:
    starts = np.array([_epoch("2026-09-30 17:00"), _epoch("2026-10-09 17:00")])
    limits = [parse_time_limit("2工作日"), parse_time_limit("2工作时")]
    result = cal.deadlines_batch(starts, limits)
    assert [local(dt.datetime.fromtimestamp(x, dt.UTC)) for x in result] == [
        "2026-10-09 17:00",
        "2026-10-10 09:00",
    ]


def test_batch_takes_one_limit_for_all_and_extensions_per_start(cal: WorkingCalendar) -> None:
    starts = np.array([_epoch("2026-03-03 10:00")] * 3)
    result = cal.deadlines_batch(starts, parse_time_limit("2工作日"), extensions=[0, 1, 2])
    assert [local(dt.datetime.fromtimestamp(x, dt.UTC)) for x in result] == [
        "2026-03-05 10:00",
        "2026-03-09 10:00",
        "2026-03-11 10:00",
    ]


def test_batch_equals_the_scalar_path_bit_for_bit(cal: WorkingCalendar) -> None:
    rng = np.random.default_rng(7)
    # Up to 45 working days (15 x 3) must stay inside 2026, the last year chinesecalendar knows.
    lo, hi = _epoch("2025-01-01 00:00"), _epoch("2026-09-30 00:00")
    starts = rng.uniform(lo, hi, 5000).round(3)
    distinct = [
        parse_time_limit(t)
        for t in [
            "2紧急工作时",
            "4工作时",
            "30分钟",
            "1工作日",
            "15工作日",
            "7自然日",
            "1紧急工作日",
        ]
    ]
    index = rng.integers(0, len(distinct), starts.size)
    extensions = rng.integers(0, 3, starts.size)
    batch = cal.deadlines_batch(starts, LimitArrays.take(distinct, index), extensions=extensions)
    scalar = [
        cal.deadline(
            dt.datetime.fromtimestamp(float(s), dt.UTC), distinct[i], extensions=int(e)
        ).timestamp()
        for s, i, e in zip(starts, index, extensions, strict=True)
    ]
    assert batch.tolist() == scalar


def test_batch_reaching_an_unknown_year_names_it() -> None:
    city = WorkingCalendar(holiday_source=SourceUpTo(2026))
    starts = np.array([_epoch("2026-03-03 10:00"), _epoch("2026-12-30 10:00")])
    with pytest.raises(ConfigurationError, match="no holiday data for 2027"):
        city.deadlines_batch(starts, parse_time_limit("5工作日"))


def test_batch_of_nothing_is_empty(cal: WorkingCalendar) -> None:
    assert cal.deadlines_batch(np.array([]), []).size == 0


def test_batch_refuses_mismatched_lengths(cal: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput, match="2 starts but 1 limits"):
        cal.deadlines_batch(np.array([0.0, 1.0]), [parse_time_limit("1工作时")])


def test_batch_refuses_negative_extensions(cal: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput) as caught:
        cal.deadlines_batch(
            np.array([_epoch("2026-03-03 10:00")]), parse_time_limit("1工作时"), extensions=-1
        )
    assert caught.value.field == "extensions"


def test_limit_arrays_refuse_a_non_positive_amount() -> None:
    with pytest.raises(InvalidInput, match="positive"):
        LimitArrays(
            clocks=np.array([1], dtype=np.int8),
            units=np.array([1], dtype=np.int8),
            amounts=np.array([0], dtype=np.int64),
        )


def test_time_limits_built_by_hand_work_like_parsed_ones(cal: WorkingCalendar) -> None:
    limit = TimeLimit(amount=2, unit=Unit.DAY, clock=Clock.WORKING)
    assert local(cal.deadline(at("2026-09-30 17:00"), limit)) == "2026-10-09 17:00"


# --- holiday source and caching ------------------------------------------------------------------


def test_the_chinesecalendar_source_agrees_with_the_package_on_every_covered_day() -> None:
    import chinese_calendar

    source = ChineseCalendarSource()
    years = [y for y in range(2000, 2031) if source.covers(y)]
    assert years[0] == 2004  # the package starts there
    day = dt.date(years[0], 1, 1)
    while day.year <= years[-1]:
        assert source.is_workday(day) == chinese_calendar.is_workday(day), day
        day += dt.timedelta(days=1)


def test_the_chinesecalendar_source_does_not_cover_years_it_lacks() -> None:
    source = ChineseCalendarSource()
    assert source.covers(2003) is False
    assert source.covers(2099) is False


class _CountingSource:
    def __init__(self) -> None:
        self.asked = 0

    def covers(self, year: int) -> bool:
        return year == 2026

    def is_workday(self, day: dt.date) -> bool:
        self.asked += 1
        return day.weekday() < 5


def test_calendars_rebuilt_per_request_reuse_the_year_tables() -> None:
    source = _CountingSource()
    first = WorkingCalendar(holiday_source=source)
    assert deadline(first, "2026-03-06 17:00", "2工作时") == "2026-03-09 09:00"
    assert source.asked == 365
    again = WorkingCalendar(holiday_source=source)
    assert deadline(again, "2026-03-06 17:00", "2工作时") == "2026-03-09 09:00"
    assert source.asked == 365  # served from the cache


def test_a_different_override_is_not_served_a_cached_table() -> None:
    source = _CountingSource()
    assert deadline(WorkingCalendar(holiday_source=source), "2026-03-06 17:00", "2工作时") == (
        "2026-03-09 09:00"
    )
    closed = WorkingCalendar(
        overrides={dt.date(2026, 3, 9): DayKind.HOLIDAY}, holiday_source=source
    )
    assert deadline(closed, "2026-03-06 17:00", "2工作时") == "2026-03-10 09:00"
