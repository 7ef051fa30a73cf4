"""Working-calendar service against a real database (the ``db`` fixture: migrated, rolled back).

Who may do what: only admins (and the system actor, which is an admin) change the calendar;
anyone may read it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from cityloop.audit.models import AuditEntry
from cityloop.db.engine import Database
from cityloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from cityloop.org.domain import SYSTEM_ACTOR, Actor, Role
from cityloop.workcal import service
from cityloop.workcal.domain import DayKind, parse_time_limit

SHANGHAI = ZoneInfo("Asia/Shanghai")
ADMIN = SYSTEM_ACTOR
DISPATCHER = Actor(
    user_id=None,
    username="dispatcher",
    role=Role.DISPATCHER,
    department_id=0,
    department_scope=frozenset(),
)


def at(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def local(instant: dt.datetime) -> str:
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def test_an_empty_database_gives_the_default_calendar(db: Database) -> None:
    calendar = service.load_calendar(db.uow())
    assert calendar.schedule.minutes_per_day == 480
    assert calendar.schedule.timezone == "Asia/Shanghai"
    due = calendar.deadline(at("2026-09-30 17:00"), parse_time_limit("2工作日"))
    assert local(due) == "2026-10-09 17:00"
    assert service.get_schedule(db.uow()).is_default is True


def test_an_added_override_changes_deadlines(db: Database) -> None:
    row = service.add_override(
        db.uow(), ADMIN, day=dt.date(2026, 3, 4), kind=DayKind.HOLIDAY, note=" 台风停工 "
    )
    assert (row.day, row.kind, row.note) == (dt.date(2026, 3, 4), DayKind.HOLIDAY, "台风停工")
    calendar = service.load_calendar(db.uow())
    assert calendar.is_working_day(dt.date(2026, 3, 4)) is False
    due = calendar.deadline(at("2026-03-03 17:00"), parse_time_limit("2工作时"))
    assert local(due) == "2026-03-05 09:00"


def test_overrides_are_listed_in_date_order_and_by_year(db: Database) -> None:
    for day, kind in [
        (dt.date(2027, 1, 1), "holiday"),
        (dt.date(2026, 3, 4), "holiday"),
        (dt.date(2026, 3, 7), "workday"),
    ]:
        service.add_override(db.uow(), ADMIN, day=day, kind=kind)
    assert [r.day for r in service.list_overrides(db.uow())] == [
        dt.date(2026, 3, 4),
        dt.date(2026, 3, 7),
        dt.date(2027, 1, 1),
    ]
    assert [r.day for r in service.list_overrides(db.uow(), year=2027)] == [dt.date(2027, 1, 1)]


def test_a_second_override_of_the_same_day_is_a_conflict(db: Database) -> None:
    service.add_override(db.uow(), ADMIN, day=dt.date(2026, 3, 4), kind="holiday")
    with pytest.raises(Conflict) as caught:
        service.add_override(db.uow(), ADMIN, day=dt.date(2026, 3, 4), kind="workday")
    assert caught.value.field == "day"
    assert len(service.list_overrides(db.uow())) == 1


def test_removing_an_override_restores_the_statutory_day(db: Database) -> None:
    service.add_override(db.uow(), ADMIN, day=dt.date(2026, 10, 2), kind="workday")
    assert service.load_calendar(db.uow()).is_working_day(dt.date(2026, 10, 2)) is True
    removed = service.remove_override(db.uow(), ADMIN, day=dt.date(2026, 10, 2))
    assert removed.kind is DayKind.WORKDAY
    assert service.load_calendar(db.uow()).is_working_day(dt.date(2026, 10, 2)) is False


def test_removing_a_missing_override_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        service.remove_override(db.uow(), ADMIN, day=dt.date(2026, 3, 4))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"day": dt.date(2026, 3, 4), "kind": "festival"}, "kind"),
        ({"day": dt.datetime(2026, 3, 4, 10, 0), "kind": "holiday"}, "day"),
        ({"day": dt.date(1999, 3, 4), "kind": "holiday"}, "day"),
        ({"day": dt.date(2026, 3, 4), "kind": "holiday", "note": "x" * 201}, "note"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(
    db: Database, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.add_override(db.uow(), ADMIN, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert service.list_overrides(db.uow()) == []


def test_only_admins_change_the_calendar(db: Database) -> None:
    with pytest.raises(PermissionDenied):
        service.add_override(db.uow(), DISPATCHER, day=dt.date(2026, 3, 4), kind="holiday")
    with pytest.raises(PermissionDenied):
        service.add_covered_year(db.uow(), DISPATCHER, year=2027)
    with pytest.raises(PermissionDenied):
        service.set_schedule(
            db.uow(), DISPATCHER, timezone="Asia/Shanghai", periods=[(dt.time(9), dt.time(17))]
        )
    assert service.list_overrides(db.uow()) == []


def test_a_covered_year_with_its_overrides_lets_deadlines_cross_into_it(db: Database) -> None:
    service.add_override(db.uow(), ADMIN, day=dt.date(2099, 1, 1), kind="holiday", note="元旦")
    service.add_covered_year(db.uow(), ADMIN, year=2099, note="entered from the notice")
    calendar = service.load_calendar(db.uow())
    assert calendar.covers(2099)
    # 1 Jan 2099 is a Thursday declared a holiday; Friday 2 Jan works.
    due = calendar.deadline(at("2099-01-01 10:00"), parse_time_limit("1工作时"))
    assert local(due) == "2099-01-02 09:00"
    assert [y.year for y in service.list_covered_years(db.uow())] == [2099]


def test_a_covered_year_twice_is_a_conflict(db: Database) -> None:
    service.add_covered_year(db.uow(), ADMIN, year=2099)
    with pytest.raises(Conflict, match="already covered"):
        service.add_covered_year(db.uow(), ADMIN, year=2099)


def test_a_removed_covered_year_is_no_longer_known(db: Database) -> None:
    service.add_covered_year(db.uow(), ADMIN, year=2099)
    service.remove_covered_year(db.uow(), ADMIN, year=2099)
    assert service.load_calendar(db.uow()).covers(2099) is False
    with pytest.raises(NotFound):
        service.remove_covered_year(db.uow(), ADMIN, year=2099)


@pytest.mark.parametrize("year", [1999, 2101])
def test_a_covered_year_out_of_range_is_refused(db: Database, year: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.add_covered_year(db.uow(), ADMIN, year=year)
    assert caught.value.field == "year"


def test_a_stored_schedule_drives_the_calendar(db: Database) -> None:
    result = service.set_schedule(
        db.uow(),
        ADMIN,
        timezone="Asia/Shanghai",
        periods=[(dt.time(8, 0), dt.time(12, 0)), (dt.time(14, 30), dt.time(18, 30))],
    )
    assert result.minutes_per_day == 480
    assert result.is_default is False
    calendar = service.load_calendar(db.uow())
    due = calendar.deadline(at("2026-03-03 11:00"), parse_time_limit("2工作时"))
    assert local(due) == "2026-03-03 15:30"
    shown = service.get_schedule(db.uow())
    assert [(p.start, p.end) for p in shown.periods] == [
        (dt.time(8, 0), dt.time(12, 0)),
        (dt.time(14, 30), dt.time(18, 30)),
    ]


def test_setting_the_schedule_twice_keeps_one_row(db: Database) -> None:
    service.set_schedule(
        db.uow(), ADMIN, timezone="Asia/Shanghai", periods=[(dt.time(9), dt.time(12))]
    )
    service.set_schedule(
        db.uow(), ADMIN, timezone="Asia/Urumqi", periods=[(dt.time(10), dt.time(14))]
    )
    shown = service.get_schedule(db.uow())
    assert shown.timezone == "Asia/Urumqi"
    assert shown.minutes_per_day == 240


@pytest.mark.parametrize(
    ("timezone", "periods", "field"),
    [
        ("Asia/Atlantis", [(dt.time(9), dt.time(12))], "timezone"),
        ("Asia/Shanghai", [(dt.time(12), dt.time(9))], "periods"),
        ("Asia/Shanghai", [], "periods"),
        (
            "Asia/Shanghai",
            [(dt.time(8), dt.time(12)), (dt.time(11), dt.time(18))],
            "periods",
        ),
    ],
)
def test_a_bad_schedule_is_refused_and_nothing_is_stored(
    db: Database, timezone: str, periods: list[tuple[dt.time, dt.time]], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.set_schedule(db.uow(), ADMIN, timezone=timezone, periods=periods)
    assert caught.value.field == field
    assert service.get_schedule(db.uow()).is_default is True


def test_every_calendar_change_is_audited(db: Database) -> None:
    service.add_override(db.uow(), ADMIN, day=dt.date(2026, 3, 4), kind="holiday", note="台风")
    service.remove_override(db.uow(), ADMIN, day=dt.date(2026, 3, 4))
    service.add_covered_year(db.uow(), ADMIN, year=2099)
    service.remove_covered_year(db.uow(), ADMIN, year=2099)
    service.set_schedule(
        db.uow(), ADMIN, timezone="Asia/Shanghai", periods=[(dt.time(9), dt.time(17))]
    )
    with db.uow() as uow:
        # Read inside the transaction: rows outlive it only as plain tuples.
        entries = [
            (e.action, e.entity, e.detail, e.actor_username)
            for e in uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if e.action.startswith("calendar.")
        ]
    assert [e[0] for e in entries] == [
        "calendar.override.add",
        "calendar.override.remove",
        "calendar.year.add",
        "calendar.year.remove",
        "calendar.schedule.set",
    ]
    _, entity, detail, username = entries[0]
    assert entity == "calendar_override"
    assert detail == {"day": "2026-03-04", "kind": "holiday", "note": "台风"}
    assert username == "system"
    assert entries[-1][2]["after"] == {"timezone": "Asia/Shanghai", "periods": "09:00-17:00"}
