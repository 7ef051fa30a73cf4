"""Pure rules of the exchange: dates, milestones, synthetic history, backoff, newer wins."""

from __future__ import annotations

import datetime as dt

import pytest

from cityloop.cases.domain import CaseAction, CaseState
from cityloop.errors import InvalidInput
from cityloop.exchange.domain import (
    IMPORT_ACTION,
    Field,
    OutboxKind,
    backoff_seconds,
    date_parser,
    milestone_problem,
    newer_wins,
    outbox_kind,
    plan_events,
)

UTC = dt.UTC


def t(hour: int, day: int = 4) -> dt.datetime:
    return dt.datetime(2019, 3, day, hour, tzinfo=UTC)


# --- dates -----------------------------------------------------------------------------------


def test_naive_times_are_local_and_come_back_as_utc() -> None:
    parse = date_parser(["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "iso"], "Asia/Shanghai")
    assert parse("2019-03-04 09:00:00") == dt.datetime(2019, 3, 4, 1, 0, tzinfo=UTC)
    assert parse("2019/3/4 9:05") == dt.datetime(2019, 3, 4, 1, 5, tzinfo=UTC)
    # An explicit offset wins over the zone.
    assert parse("2019-03-04T09:00:00+00:00") == dt.datetime(2019, 3, 4, 9, tzinfo=UTC)
    # Spreadsheet cells arrive as datetimes already.
    assert parse(dt.datetime(2019, 3, 4, 9)) == dt.datetime(2019, 3, 4, 1, tzinfo=UTC)
    assert parse(dt.date(2019, 3, 4)) == dt.datetime(2019, 3, 3, 16, tzinfo=UTC)


def test_fractions_of_seconds_are_read() -> None:
    parse = date_parser(["%Y-%m-%d %H:%M:%S.%f"], "UTC")
    assert parse("2019-03-04 09:00:00.5").microsecond == 500_000


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("2019-02-30 10:00:00", "not a real date"),
        ("2019-13-01 10:00:00", "not a real date"),
        ("04.03.2019", "matches none"),
        ("yesterday", "matches none"),
        ("2019-03-04 25:00:00", "not a real date"),
    ],
)
def test_bad_dates_say_why(text: str, needle: str) -> None:
    parse = date_parser(["%Y-%m-%d %H:%M:%S"], "Asia/Shanghai")
    with pytest.raises(ValueError, match=needle):
        parse(text)


def test_bad_formats_and_zones_are_refused_up_front() -> None:
    with pytest.raises(InvalidInput, match="not supported"):
        date_parser(["%d/%b/%Y"], "Asia/Shanghai")
    with pytest.raises(InvalidInput, match="at least %Y, %m and %d"):
        date_parser(["%H:%M"], "Asia/Shanghai")
    with pytest.raises(InvalidInput, match="repeats"):
        date_parser(["%Y-%m-%d %Y"], "Asia/Shanghai")
    with pytest.raises(InvalidInput, match="unknown time zone"):
        date_parser(["iso"], "Mars/Olympus")


# --- milestones ------------------------------------------------------------------------------


def times(**given: dt.datetime | None) -> dict[Field, dt.datetime | None]:
    return {Field(k): v for k, v in given.items()}


def test_a_complete_closed_case_is_consistent() -> None:
    ok = times(
        reported_at=t(1), filed_at=t(2), dispatched_at=t(3), disposed_at=t(5), closed_at=t(6)
    )
    assert milestone_problem(CaseState.CLOSED, ok) is None


@pytest.mark.parametrize(
    ("state", "given", "field", "needle"),
    [
        (CaseState.CLOSED, {"reported_at": t(1)}, "closed_at", "needs closed_at"),
        (CaseState.DISPATCHED, {"reported_at": t(1)}, "dispatched_at", "needs dispatched_at"),
        (
            CaseState.CLOSED,
            {"reported_at": t(5), "dispatched_at": t(3), "closed_at": t(6)},
            "dispatched_at",
            "before reported_at",
        ),
        (
            CaseState.FILED,
            {"reported_at": t(1), "filed_at": t(2), "dispatched_at": t(3)},
            "dispatched_at",
            "still 'filed'",
        ),
        (
            CaseState.DISPATCHED,
            {"reported_at": t(1), "dispatched_at": t(3), "disposal_deadline": t(2)},
            "disposal_deadline",
            "before dispatched_at",
        ),
    ],
)
def test_inconsistent_milestones_name_the_field(
    state: CaseState, given: dict[str, dt.datetime], field: str, needle: str
) -> None:
    problem = milestone_problem(state, times(**given))
    assert problem is not None
    assert problem.field == field and needle in problem.reason


def test_a_refusal_may_carry_the_time_of_the_decision() -> None:
    assert milestone_problem(CaseState.DECLINED, times(reported_at=t(1), closed_at=t(2))) is None
    problem = milestone_problem(CaseState.DECLINED, times(reported_at=t(1), dispatched_at=t(2)))
    assert problem is not None and problem.field == "dispatched_at"


# --- the synthetic history -------------------------------------------------------------------


def test_a_closed_case_gets_the_loops_own_actions_in_order() -> None:
    plan = plan_events(CaseState.CLOSED, t(1), t(2), t(3), t(5), t(6))
    assert [(e.action, e.from_state, e.to_state) for e in plan] == [
        ("report", None, "reported"),
        ("file", "reported", "filed"),
        ("dispatch", "filed", "dispatched"),
        ("dispose", "dispatched", "disposed"),
        ("close", "disposed", "closed"),
    ]
    assert [e.clocked for e in plan] == [False, False, True, False, False]
    assert [e.at for e in plan] == [t(1), t(2), t(3), t(5), t(6)]


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (CaseState.DECLINED, CaseAction.DECLINE.value),
        (CaseState.NOT_ACCEPTED, CaseAction.NOT_ACCEPT.value),
        (CaseState.VOIDED, CaseAction.APPROVE_VOID.value),
    ],
)
def test_refusals_and_voiding_end_with_their_decision(state: CaseState, action: str) -> None:
    plan = plan_events(state, t(1), None, None, None, t(4))
    assert [e.action for e in plan] == ["report", action]
    assert plan[-1].to_state == state.value and plan[-1].at == t(4)
    # Without a time of its own the decision takes the last milestone's.
    assert plan_events(state, t(1), None, None, None, None)[-1].at == t(1)


def test_an_open_state_no_milestone_explains_gets_an_import_marker() -> None:
    plan = plan_events(CaseState.CHECKING, t(1), t(2), t(3), t(5), None)
    assert plan[-1].action == IMPORT_ACTION
    assert (plan[-1].from_state, plan[-1].to_state) == ("disposed", "checking")
    assert plan_events(CaseState.DISPATCHED, t(1), None, t(3), None, None)[-1].action == "dispatch"


def test_the_plan_works_on_storage_strings_too() -> None:
    plan = plan_events(CaseState.CLOSED, "a", None, "c", None, "e")
    assert [e.at for e in plan] == ["a", "c", "e"]


# --- upward exchange -------------------------------------------------------------------------


def test_only_filing_dispatch_and_closing_go_upward() -> None:
    assert outbox_kind("file") is OutboxKind.FILED
    assert outbox_kind("dispatch") is OutboxKind.DISPATCHED
    assert outbox_kind("close") is OutboxKind.CLOSED
    for action in CaseAction:
        if action.value not in ("file", "dispatch", "close"):
            assert outbox_kind(action.value) is None


def test_backoff_doubles_up_to_the_cap() -> None:
    waits = [backoff_seconds(n, base=30, cap=600) for n in range(7)]
    assert waits == [0, 30, 60, 120, 240, 480, 600]
    assert backoff_seconds(10_000, base=30, cap=3600) == 3600


def test_an_older_or_equal_sequence_never_wins() -> None:
    assert newer_wins(None, 1)
    assert newer_wins(3, 4)
    assert not newer_wins(4, 4)
    assert not newer_wins(5, 4)
