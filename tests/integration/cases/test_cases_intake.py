"""Group-committed intake (cases/intake.py, service.report_many) and the raw insert path
(db/rows.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from tests.world import World, build_world

from cityloop.cases import service as cases
from cityloop.cases.domain import CaseAction, Channel
from cityloop.cases.intake import IntakeQueue
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.schemas import CaseCreate, Location
from cityloop.db.engine import Database
from cityloop.db.rows import insert_new
from cityloop.errors import InvalidInput
from cityloop.grid.coords import CoordSystem

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SH)


pytestmark = pytest.mark.usefixtures("data_dir")  # attachments go to a temp folder


def hotline(n: int, **extra: object) -> CaseCreate:
    return CaseCreate(
        channel=Channel.HOTLINE_12345,
        description=f"井盖缺失 #{n}(演示)",
        location=Location(lon=116.31, lat=39.99, system=CoordSystem.WGS84),
        **extra,  # type: ignore[arg-type]
    )


def test_a_batch_commits_together_and_a_refused_report_fails_alone(
    world: World, db: Database
) -> None:
    reqs = [
        cases.IntakeRequest(world.intake, hotline(1), "key-a"),
        cases.IntakeRequest(
            world.intake, hotline(2, minor_code="9999", family="component"), "key-bad"
        ),
        cases.IntakeRequest(world.intake, hotline(3), "key-b"),
        cases.IntakeRequest(world.intake, hotline(4), "key-a"),  # a retry inside the batch
    ]
    out = cases.report_many(db.uow(), reqs, now=MONDAY_9)
    first, refused, third, repeat = out
    assert isinstance(first, cases.Reported) and first.created
    assert isinstance(refused, InvalidInput) and refused.field == "minor_code"
    assert isinstance(third, cases.Reported) and third.created
    assert isinstance(repeat, cases.Reported) and not repeat.created
    assert repeat.id == first.id and repeat.code == first.code
    # The refused report was rolled back to its savepoint, serial included: no gap in codes.
    assert int(third.code[-5:]) == int(first.code[-5:]) + 1
    with db.uow().read() as uow:
        keys = uow.session.scalars(select(Case.idempotency_key).order_by(Case.id)).all()
        events = uow.session.scalar(select(func.count()).select_from(CaseEvent))
    assert keys == ["key-a", "key-b"]
    assert events == 2


def test_a_batch_of_one_needs_no_savepoint_and_still_reports_its_error(
    world: World, db: Database
) -> None:
    (refused,) = cases.report_many(
        db.uow(),
        [cases.IntakeRequest(world.intake, hotline(1, minor_code="9999", family="component"))],
    )
    assert isinstance(refused, InvalidInput)
    (made,) = cases.report_many(db.uow(), [cases.IntakeRequest(world.intake, hotline(2))])
    assert isinstance(made, cases.Reported) and made.created and made.view is not None


def test_a_new_row_reads_back_exactly_as_the_orm_stores_it(world: World, db: Database) -> None:
    made = cases.report(db.uow(), world.intake, hotline(1), idempotency_key="k1", now=MONDAY_9)
    with db.uow() as uow:
        event = CaseEvent(
            case_id=made.id,
            at=MONDAY_9,
            actor_user_id=world.intake.user_id,
            actor_name="intake",
            actor_role="intake_operator",
            action=CaseAction.URGE.value,
            to_state="reported",
            detail={"note": "催办(演示)", "n": 2},
        )
        new_id = insert_new(uow.session, event)
        uow.commit()
    assert event.id == new_id
    with db.uow().read() as uow:
        stored = uow.session.get(CaseEvent, new_id)
        case = uow.session.get(Case, made.id)
        assert stored is not None and case is not None
        assert stored.at == MONDAY_9 and stored.at.tzinfo is not None
        assert stored.detail == {"note": "催办(演示)", "n": 2}
        assert stored.reason is None
        # Defaults the report did not set come from the columns, as with the ORM.
        assert case.version == 1 and case.priority == 0 and case.outside_jurisdiction is False
        assert case.step_pauses == [] and case.reported_at == MONDAY_9


def test_a_duplicate_key_is_sqlalchemys_integrity_error(world: World, db: Database) -> None:
    cases.report(db.uow(), world.intake, hotline(1), idempotency_key="dup", now=MONDAY_9)
    with db.uow() as uow, pytest.raises(IntegrityError):
        insert_new(
            uow.session,
            Case(
                code="DUP-1",
                state="reported",
                channel="hotline_12345",
                idempotency_key="dup",
                description="重复(演示)",
                step_pauses=[],
            ),
        )


def test_concurrent_api_reports_share_commits_and_each_gets_its_own_answer(
    fresh_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(fresh_db)
    sizes: list[int] = []
    real_report_many = cases.report_many

    def counting(uow: object, requests: Sequence[cases.IntakeRequest], **kw: object) -> object:
        sizes.append(len(requests))
        return real_report_many(uow, requests, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cases, "report_many", counting)
    queue = IntakeQueue(fresh_db, idle_seconds=0.5)

    async def burst() -> list[cases.Reported | BaseException]:
        jobs = [queue.report(world.intake, hotline(n), f"burst-{n}") for n in range(40)]
        jobs.append(
            queue.report(
                world.intake, hotline(99, minor_code="9999", family="component"), "burst-bad"
            )
        )
        jobs.append(queue.report(world.intake, hotline(0), "burst-0"))  # a retry of #0
        return await asyncio.gather(*jobs, return_exceptions=True)

    out = asyncio.run(burst())
    made = out[:40]
    assert all(isinstance(r, cases.Reported) and r.created for r in made)
    assert isinstance(out[40], InvalidInput)
    retry = out[41]
    assert isinstance(retry, cases.Reported) and not retry.created
    first = made[0]
    assert isinstance(first, cases.Reported) and retry.id == first.id
    assert sum(sizes) == 42 and max(sizes) > 1  # batches formed while the writer was busy
    with fresh_db.uow().read() as uow:
        count = uow.session.scalar(select(func.count()).select_from(Case))
        codes = uow.session.scalars(select(Case.code)).all()
    assert count == 40 and len(set(codes)) == 40
