"""双随机 audits on the October world: seeded, recorded, never an involved auditor, fed back."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from tests.integration.evaluation.evaluation_october import October, build_october
from tests.world import World

from cityloop.db.engine import Database
from cityloop.errors import Conflict, InvalidInput, PermissionDenied
from cityloop.evaluation import audit, service
from cityloop.evaluation.models import AuditDraw
from cityloop.org import service as org

AFTER = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


@pytest.fixture
def october(db: Database, world: World) -> October:
    return build_october(db, world)


def test_the_draw_is_seeded_recorded_and_never_picks_an_involved_auditor(
    db: Database, world: World, october: October
) -> None:
    # Inspectors and shift supervisors are eligible too, but the only ones here acted on every
    # drawn case; the two leaders never did.
    first = audit.draw(db.uow(), world.leader, "2026-10", seed=20261101, now=AFTER)
    drawn = sorted(i.case_id for i in first.items)
    # Drainage closed C1 C2 C3 C6 in October (C9 was self-handled: no department); K = 5.
    assert drawn == sorted(october.cases[c] for c in ("C1", "C2", "C3", "C6"))
    with db.uow().read() as uow:
        for item in first.items:
            involved = audit.involved_users(uow.session, item.case_id)
            assert item.auditor_user_id is not None
            assert item.auditor_user_id not in involved
            assert item.auditor_user_id in {world.leader.user_id, october.leader2.user_id}
        row = uow.session.scalar(select(AuditDraw).where(AuditDraw.id == first.id))
        assert row is not None and row.seed == 20261101 and row.drawn_at == AFTER
        assert row.drawn_by_user_id == world.leader.user_id
    again = audit.draw(db.uow(), world.admin, "2026-10", seed=20261101, now=AFTER)
    assert [(i.case_id, i.auditor_user_id) for i in again.items] == [
        (i.case_id, i.auditor_user_id) for i in first.items
    ]


def test_a_small_k_draws_k_and_nobody_uninvolved_means_unassigned(
    db: Database, world: World, october: October
) -> None:
    service.put_settings(
        db.uow(),
        world.admin,
        {"audit": {"cases_per_department": 2, "auditor_roles": ["inspector"]}},
    )
    result = audit.draw(db.uow(), world.leader, "2026-10", seed=7, now=AFTER)
    assert len(result.items) == 2
    # The only inspector verified and checked every case: never assigned to audit them.
    assert all(i.auditor_user_id is None for i in result.items)


def test_refusals(db: Database, world: World, october: October) -> None:
    with pytest.raises(InvalidInput):
        audit.draw(db.uow(), world.leader, "2026-10", seed=1, now=AFTER - dt.timedelta(days=5))
    with pytest.raises(PermissionDenied):
        audit.draw(db.uow(), world.dispatcher, "2026-10", seed=1, now=AFTER)
    result = audit.draw(db.uow(), world.leader, "2026-10", seed=3, now=AFTER)
    item = result.items[0]
    assert item.auditor_user_id is not None
    auditor = org.load_actor(db.uow(), user_id=item.auditor_user_id)
    other = world.leader if auditor.user_id != world.leader.user_id else october.leader2
    with pytest.raises(PermissionDenied):
        audit.decide(db.uow(), other, item.id, "pass", None)
    with pytest.raises(InvalidInput):
        audit.decide(db.uow(), auditor, item.id, "fail", "  ")
    audit.decide(db.uow(), auditor, item.id, "pass", None)
    with pytest.raises(Conflict):
        audit.decide(db.uow(), auditor, item.id, "fail", "changed my mind")


def test_outcomes_feed_the_pass_rate_and_the_configured_deduction(
    db: Database, world: World, october: October
) -> None:
    result = audit.draw(db.uow(), world.leader, "2026-10", seed=11, now=AFTER)
    outcomes = ["pass", "fail", "pass"]  # the fourth stays pending
    for item, outcome in zip(result.items, outcomes, strict=False):
        assert item.auditor_user_id is not None
        auditor = org.load_actor(db.uow(), user_id=item.auditor_user_id)
        reason = "现场仍有破损" if outcome == "fail" else None
        audit.decide(db.uow(), auditor, item.id, outcome, reason)
    kpis = service.monthly_kpis(db.uow(), "2026-10")
    drainage = next(d for d in kpis.departments if d.code == "drainage")
    assert drainage.display["audit_pass_rate"] == "66.67%"
    assert drainage.composite == pytest.approx(88.0)  # no deduction by default

    service.put_settings(db.uow(), world.admin, {"audit": {"deduction_per_failure": 2.5}})
    drainage = next(
        d for d in service.monthly_kpis(db.uow(), "2026-10").departments if d.code == "drainage"
    )
    assert drainage.composite_raw == pytest.approx(88.0)
    assert drainage.audit_deduction == pytest.approx(2.5)
    assert drainage.composite == pytest.approx(85.5)

    summary = audit.summary(audit.list_draws(db.uow(), world.leader, "2026-10")[0].items)
    assert [(s.drawn, s.passed, s.failed, s.pending) for s in summary] == [(4, 2, 1, 1)]
