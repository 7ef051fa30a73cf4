"""The overdue worker on real databases that it commits to (it opens its own transactions)."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from zoneinfo import ZoneInfo

from sqlalchemy import select
from tests.world import build_world

from cityloop.cases import service as cases
from cityloop.cases.domain import Channel
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.notify import MemoryNotifier
from cityloop.cases.schemas import CaseCreate
from cityloop.cases.worker import run_once
from cityloop.db.engine import Database, make_engine
from cityloop.db.migrate import upgrade
from cityloop.org import service as org
from cityloop.org.domain import Actor

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SH)


def build_actor(database: Database) -> Actor:
    return org.actor_by_username(database.uow(), "leader")


def fresh(url: str) -> Database:
    engine = make_engine(url)
    upgrade(engine)
    return Database(engine)


def hotline_cases(database: Database, n: int) -> list[int]:
    world = build_world(database)
    data = CaseCreate(
        channel=Channel.HOTLINE_12345, description="占道经营(演示)", address="某街(演示)"
    )
    return [cases.report(database.uow(), world.intake, data, now=MONDAY_9).id for _ in range(n)]


def test_a_step_turns_yellow_at_80_percent_then_red_with_one_automatic_urge(
    fresh_database_url: str,
) -> None:
    database = fresh(fresh_database_url)
    [case_id] = hotline_cases(database, 1)
    notes = MemoryNotifier()
    # send_verify: 30 working minutes from 09:00 -> yellow at 09:24, red at 09:30.
    assert run_once(database, notes, now=MONDAY_9 + dt.timedelta(minutes=23)).warned == []
    report = run_once(database, notes, now=MONDAY_9 + dt.timedelta(minutes=24))
    assert len(report.warned) == 1 and report.overdue == []
    report = run_once(database, notes, now=MONDAY_9 + dt.timedelta(minutes=31))
    assert len(report.overdue) == 1 and len(report.urged) == 1
    assert run_once(database, notes, now=MONDAY_9 + dt.timedelta(hours=5)).overdue == []
    assert [n.kind for n in notes.sent] == ["warning", "overdue", "urge"]
    view = cases.get_case(database.uow(), build_actor(database), case_id)
    assert view.urge_count == 1 and view.priority == 1
    assert view.version == 1  # marks never make a person's pending action stale


def test_two_workers_never_act_twice_on_the_same_step(fresh_database_url: str) -> None:
    database = fresh(fresh_database_url)
    ids = hotline_cases(database, 40)
    later = MONDAY_9 + dt.timedelta(hours=2)
    reports = []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        reports.append(run_once(database, MemoryNotifier(), now=later))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    marked = [code for r in reports for code in r.overdue]
    assert len(marked) == len(ids) == len(set(marked))
    uow = database.uow()
    with uow.read():
        kinds = Counter(
            (row.case_id, row.action)
            for row in uow.session.scalars(
                select(CaseEvent).where(CaseEvent.action.in_(["mark_overdue", "urge"]))
            )
        )
        urges = uow.session.scalars(select(Case.urge_count)).all()
    assert set(kinds.values()) == {1}
    assert len(kinds) == 2 * len(ids)
    assert set(urges) == {1}
