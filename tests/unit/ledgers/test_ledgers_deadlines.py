"""整改时限 as ledgers write it, and deadlines on the working calendar."""

from __future__ import annotations

import datetime as dt

import pytest

from cityloop.errors import InvalidInput
from cityloop.ledgers.domain import DeadlineKind, parse_deadline, resolve_deadline
from cityloop.workcal.domain import WorkingCalendar

FEEDBACK = dt.date(2023, 2, 3)  # a Friday; the Haidian feedback date
CAL = WorkingCalendar()
BEIJING = CAL.tz


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("2023年6月30日", dt.date(2023, 6, 30)),
        ("2023年6月30日前", dt.date(2023, 6, 30)),
        ("2023年6月30日前完成", dt.date(2023, 6, 30)),
        ("2023-06-30", dt.date(2023, 6, 30)),
        ("2023/6/30", dt.date(2023, 6, 30)),
        ("2023.6.30", dt.date(2023, 6, 30)),
        ("2023年6月底前", dt.date(2023, 6, 30)),
        ("2024年2月底", dt.date(2024, 2, 29)),
        ("2023年底前", dt.date(2023, 12, 31)),
        ("6月底前", dt.date(2023, 6, 30)),
        ("1月底前", dt.date(2024, 1, 31)),  # January 2023 is before the feedback: next year
        ("5月21日前", dt.date(2023, 5, 21)),
        ("年底前", dt.date(2023, 12, 31)),
    ],
)
def test_dates_in_the_forms_ledgers_write_them(text: str, due: dt.date) -> None:
    spec = parse_deadline(text, reference=FEEDBACK)
    assert spec.kind is DeadlineKind.DATE
    assert spec.due_on == due
    assert spec.text == text


@pytest.mark.parametrize("text", ["长期坚持", "长期", "持续推进", "常态化", "长期抓好落实"])
def test_long_term_has_no_deadline(text: str) -> None:
    spec = parse_deadline(text, reference=FEEDBACK)
    assert spec.kind is DeadlineKind.LONG_TERM
    assert resolve_deadline(spec, start=FEEDBACK, calendar=CAL) == (None, None)


def test_immediate_and_empty_have_no_date_to_be_late_against() -> None:
    assert parse_deadline("立行立改").kind is DeadlineKind.IMMEDIATE
    assert parse_deadline("").kind is DeadlineKind.NONE
    assert parse_deadline(None).kind is DeadlineKind.NONE
    assert parse_deadline("  ").kind is DeadlineKind.NONE


def test_an_excel_date_cell_is_a_date() -> None:
    spec = parse_deadline(dt.datetime(2023, 6, 30))
    assert (spec.kind, spec.due_on, spec.text) == (
        DeadlineKind.DATE,
        dt.date(2023, 6, 30),
        "2023年6月30日",
    )


def test_a_date_is_due_at_the_end_of_that_local_day() -> None:
    spec = parse_deadline("2023年6月30日")
    due_on, due_at = resolve_deadline(spec, start=None, calendar=CAL)
    assert due_on == dt.date(2023, 6, 30)
    assert due_at == dt.datetime(2023, 7, 1, 0, 0, tzinfo=BEIJING)
    assert due_at is not None and due_at.tzinfo == dt.UTC


def test_working_days_count_from_the_day_after_the_feedback_and_skip_holidays() -> None:
    # Feedback Friday 3 Feb 2023; day 1 is Monday 6 Feb; 30 working days end Friday 17 March.
    spec = parse_deadline("30个工作日", reference=FEEDBACK)
    assert spec.kind is DeadlineKind.LIMIT
    due_on, due_at = resolve_deadline(spec, start=FEEDBACK, calendar=CAL)
    assert due_on == dt.date(2023, 3, 17)
    assert due_at == dt.datetime(2023, 3, 17, 18, 0, tzinfo=BEIJING)


def test_a_limit_across_the_labour_day_holiday_and_its_make_up_day() -> None:
    # 2023: 29 Apr-3 May off; Sunday 23 April and Saturday 6 May are make-up working days.
    spec = parse_deadline("5个工作日内", reference=dt.date(2023, 4, 26))
    due_on, _ = resolve_deadline(spec, start=dt.date(2023, 4, 26), calendar=CAL)
    # 27, 28 April; (29 Apr-3 May holiday); 4, 5, 6 (Saturday make-up) May.
    assert due_on == dt.date(2023, 5, 6)


def test_months_end_on_the_same_day_of_the_month() -> None:
    spec = parse_deadline("3个月内", reference=FEEDBACK)
    assert spec.kind is DeadlineKind.MONTHS
    assert resolve_deadline(spec, start=FEEDBACK, calendar=CAL)[0] == dt.date(2023, 5, 3)
    end_of_month = resolve_deadline(spec, start=dt.date(2023, 11, 30), calendar=CAL)[0]
    assert end_of_month == dt.date(2024, 2, 29)


def test_a_relative_limit_needs_the_feedback_date() -> None:
    spec = parse_deadline("30个工作日")
    with pytest.raises(InvalidInput, match="feedback date"):
        resolve_deadline(spec, start=None, calendar=CAL)


def test_a_date_without_a_year_needs_the_feedback_date() -> None:
    with pytest.raises(InvalidInput, match="no year"):
        parse_deadline("6月底前")


@pytest.mark.parametrize(
    "text",
    ["尽快", "2023年2月30日", "2023年13月底", "30个星期", "下个月", "0个月", "x" * 65],
)
def test_unreadable_deadlines_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_deadline(text, reference=FEEDBACK)
    assert err.value.field == "deadline"
