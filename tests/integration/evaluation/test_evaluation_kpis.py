"""Every KPI of the October world (see evaluation_october.py) against hand-counted numbers."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.integration.evaluation.evaluation_october import (
    October,
    _act,
    _t,
    build_october,
)
from tests.world import World

from cityloop.cases import service as cases
from cityloop.cases.domain import CaseAction, Channel
from cityloop.cases.schemas import CaseCreate
from cityloop.db.engine import Database
from cityloop.errors import InvalidInput, PermissionDenied
from cityloop.evaluation import service
from cityloop.evaluation.schemas import MonthlyKpis, SubjectKpis


@pytest.fixture
def october(db: Database, world: World) -> October:
    return build_october(db, world)


def _code(items: list[SubjectKpis], code: str) -> SubjectKpis:
    return next(i for i in items if i.code == code)


def _kpis(db: Database) -> MonthlyKpis:
    return service.monthly_kpis(db.uow(), "2026-10")


def test_city_headline(db: Database, october: October) -> None:
    k = _kpis(db)
    h = k.headline
    assert h.filed == 7  # C1-C7 (C8 declined, C9 self-handled)
    # 7 disposal tasks due (drainage 5, sanitation 2), 6 done, 5 of them on time.
    assert h.disposal_rate == pytest.approx(6 / 7)
    assert h.on_time_disposal_rate == pytest.approx(5 / 7)
    assert h.closing_rate == pytest.approx(4 / 6)  # C1 C2 C3 C6 closed of C1-C6
    assert h.rework_rate == pytest.approx(1 / 6)  # C3's first disposal of 6 disposals
    assert h.satisfaction_rate == pytest.approx((2 + 0.9) / 4)
    assert h.display == {
        "filed": "7",
        "disposal_rate": "85.71%",
        "on_time_disposal_rate": "71.43%",
        "closing_rate": "66.67%",
        "rework_rate": "16.67%",
        "satisfaction_rate": "72.50%",
    }


def test_departments(db: Database, october: October) -> None:
    k = _kpis(db)
    drainage = _code(k.departments, "drainage")
    # Due: C1, C2 (late), C3 twice (rework restarts the clock), C6; C5's return is not due.
    assert drainage.counts["due_disposal"] == 5
    assert drainage.counts["disposed"] == 5
    assert drainage.counts["disposed_on_time"] == 4
    assert drainage.display["disposal_rate"] == "100.00%"
    assert drainage.display["on_time_disposal_rate"] == "80.00%"
    assert drainage.display["closing_rate"] == "100.00%"
    assert drainage.display["on_time_closing_rate"] == "75.00%"  # C2's disposal was late
    assert drainage.display["rework_rate"] == "20.00%"
    assert drainage.display["satisfaction_rate"] == "72.50%"
    # 0.1 × 100 (busiest) + 0.3 × 100 + 0.3 × 80 + 0.3 × (100 − 20) = 88 → B
    assert drainage.composite == pytest.approx(88.0)
    assert (drainage.grade, drainage.rank) == ("B", 1)

    sanitation = _code(k.departments, "sanitation")
    assert sanitation.counts["due_disposal"] == 2  # C4 (never disposed) and C5 after return
    assert sanitation.display["disposal_rate"] == "50.00%"
    assert sanitation.display["closing_rate"] == "0.00%"
    assert sanitation.display["rework_rate"] == "0.00%"
    # 0.1 × 40 (2 of 5) + 0.3 × 0 + 0.3 × 50 + 0.3 × 100 = 49 → D
    assert sanitation.composite == pytest.approx(49.0)
    assert (sanitation.grade, sanitation.rank) == ("D", 2)


def test_a_zero_denominator_is_a_dash_never_zero(db: Database, october: October) -> None:
    k = _kpis(db)
    parks = _code(k.departments, "parks")
    assert parks.counts == {}
    assert all(v is None for v in parks.rates.values())
    assert set(parks.display.values()) == {"—"}
    assert (parks.composite, parks.composite_display, parks.grade, parks.rank) == (
        None,
        "—",
        "—",
        None,
    )
    assert k.departments[-1].code == "parks"  # unranked last
    sanitation = _code(k.departments, "sanitation")
    assert sanitation.display["satisfaction_rate"] == "—"  # no callback, not 0 %
    assert sanitation.display["audit_pass_rate"] == "—"
    # The previous month has no data at all: no comparison, no error.
    assert sanitation.delta_prev_month is None
    assert sanitation.delta_prev_month_display == "—"


def test_territories(db: Database, october: October) -> None:
    k = _kpis(db)
    sub_a = _code(k.subdistricts, "sub_a")  # C1 C2 C3
    assert sub_a.counts["filed"] == 3
    assert sub_a.display["on_time_disposal_rate"] == "75.00%"
    assert sub_a.display["on_time_closing_rate"] == "66.67%"
    assert sub_a.display["rework_rate"] == "25.00%"
    sub_b = _code(k.subdistricts, "sub_b")  # C4 C5 C6
    assert sub_b.display["disposal_rate"] == "66.67%"
    assert sub_b.display["closing_rate"] == "33.33%"
    # 0.35 × 100 + 0.35 × 75 + 0.30 × 75 = 83.75 and 0.35 × 33.3 + 0.35 × 66.7 + 0.3 × 100 = 65
    assert sub_a.composite == pytest.approx(83.75)
    assert sub_b.composite == pytest.approx(65.0)
    assert [s.code for s in k.subdistricts] == ["sub_a", "sub_b"]
    com = _code(k.communities, "com_a1")
    assert com.counts == sub_a.counts


def test_people(db: Database, october: October) -> None:
    k = _kpis(db)
    inspector = _code(k.inspectors, "inspector")
    assert inspector.counts["reports"] == 3  # C7 voided, C8 declined, C9 valid
    assert inspector.display["valid_report_rate"] == "33.33%"
    # The inspector's beat is cell X (C9); C1-C3 were filed there from the public: missed.
    assert inspector.display["missed_report_rate"] == "100.00%"
    assert inspector.counts["verifications"] == 6
    assert inspector.counts["checks"] == 5
    assert inspector.display["on_time_check_rate"] == "100.00%"
    # 0.4 × 33.33 + 0.2 × 0 + 0.2 × 100 + 0.2 × 100
    assert inspector.composite == pytest.approx(0.4 * 100 / 3 + 40)

    intake = _code(k.intake_operators, "intake")
    assert (intake.counts["verify_sends"], intake.counts["check_sends"]) == (6, 5)
    assert intake.counts["callbacks"] == 4

    supervisor = _code(k.shift_supervisors, "supervisor")
    assert supervisor.counts["filings"] == 7
    assert supervisor.display["accurate_filing_rate"] == "85.71%"  # C7 was voided
    assert supervisor.counts["closings"] == 5  # C1 C2 C3 C6 C9

    dispatcher = _code(k.dispatchers, "dispatcher")
    assert dispatcher.counts["dispatches"] == 7  # C5 twice
    assert dispatcher.display["accurate_dispatch_rate"] == "85.71%"  # C5's first came back
    assert dispatcher.display["on_time_dispatch_rate"] == "100.00%"


def test_late_steps_are_late(db: Database, world: World, october: October) -> None:
    """A verification done the next day is late against its 120-minute limit."""
    data = CaseCreate(channel=Channel.PUBLIC_WEB, description="井盖(演示)", address="某路(演示)")
    case_id = cases.report(db.uow(), None, data, now=_t(21, 9)).id
    _act(db, world.intake, case_id, CaseAction.SEND_VERIFY, _t(21, 9, 5), inspector="inspector")
    _act(db, world.inspector, case_id, CaseAction.VERIFY_FOUND, _t(22, 15))
    inspector = _code(_kpis(db).inspectors, "inspector")
    assert inspector.counts["verifications"] == 7
    assert inspector.counts["verified_on_time"] == 6


def test_configuration_changes_take_effect(db: Database, world: World, october: October) -> None:
    # The department formula becomes 结案率 alone, and B starts at 95.
    settings = service.get_settings(db.uow()).model_dump(mode="json")
    settings["composites"]["department"] = [{"indicator": "closing_rate", "weight": 1.0}]
    settings["grade_bands"] = [
        {"grade": "A", "min_score": 99},
        {"grade": "B", "min_score": 95},
    ]
    # Extended or not, a grace of two days makes C2's late disposal on time.
    settings["on_time"] = {"grace_minutes": 2 * 24 * 60 + 60, "extended_counts_as_on_time": True}
    service.put_settings(db.uow(), world.admin, settings)
    k = _kpis(db)
    drainage = _code(k.departments, "drainage")
    assert drainage.composite == pytest.approx(100.0)
    assert drainage.grade == "A"
    assert drainage.display["on_time_disposal_rate"] == "100.00%"
    sanitation = _code(k.departments, "sanitation")
    assert (sanitation.composite, sanitation.grade) == (pytest.approx(0.0), "E")


def test_bad_configuration_is_refused_with_the_field(db: Database, world: World) -> None:
    with pytest.raises(InvalidInput) as err:
        service.put_settings(
            db.uow(),
            world.admin,
            {"composites": {"dispatcher": [{"indicator": "dispatches", "weight": 1.0}]}},
        )
    assert "count, not a rate" in err.value.message
    with pytest.raises(InvalidInput):
        service.put_settings(
            db.uow(), world.admin, {"hotline": {"response_weight": 0.5}}
        )  # weights add up to 1.4
    with pytest.raises(PermissionDenied):
        service.put_settings(db.uow(), world.leader, {})


def test_suspended_cases_leave_the_denominator_if_configured(
    db: Database, world: World, october: October
) -> None:
    data = CaseCreate(channel=Channel.PUBLIC_WEB, description="井盖(演示)", address="某路(演示)")
    case_id = cases.report(db.uow(), None, data, now=_t(19, 9)).id
    std = cases.get_case(db.uow(), world.leader, october.cases["C1"]).standard_id
    _act(db, world.intake, case_id, CaseAction.SEND_VERIFY, _t(19, 9, 5), inspector="inspector")
    _act(db, world.inspector, case_id, CaseAction.VERIFY_FOUND, _t(19, 9, 10))
    _act(db, world.supervisor, case_id, CaseAction.FILE, _t(19, 9, 20), standard_id=std)
    _act(
        db,
        world.dispatcher,
        case_id,
        CaseAction.DISPATCH,
        _t(19, 9, 40),
        department_code="drainage",
    )
    _act(db, world.operator, case_id, CaseAction.REQUEST_SUSPEND, _t(19, 10), reason="需协调")
    _act(db, world.dispatcher, case_id, CaseAction.APPROVE_SUSPEND, _t(19, 10, 5))

    drainage = _code(_kpis(db).departments, "drainage")
    assert drainage.counts["due_disposal"] == 5  # default: the suspended case is out

    service.put_settings(db.uow(), world.admin, {"suspended_leave_denominator": False})
    drainage = _code(_kpis(db).departments, "drainage")
    # Counted against its deadline before the pause (Wednesday), and not disposed.
    assert drainage.counts["due_disposal"] == 6
    assert drainage.counts["disposed"] == 5


def test_hotline_three_rates_follow_the_assessment_month(
    db: Database, world: World, october: October
) -> None:
    k = _kpis(db)
    # Default 19th-18th: "2026-10" ends on 18 October, before every case here.
    assert k.hotline.period_start == dt.datetime(2026, 9, 19, tzinfo=k.hotline.period_start.tzinfo)
    assert k.hotline.city.owed == 0
    assert k.hotline.city.display == {
        "response_rate": "—",
        "resolution_rate": "—",
        "satisfaction_rate": "—",
        "composite": "—",
    }
    service.put_settings(db.uow(), world.admin, {"hotline": {"month_start_day": 1}})
    city = _kpis(db).hotline.city
    # C6: closed in October, called back, satisfied.
    assert (city.owed, city.contacted, city.solved, city.rated, city.satisfied) == (1, 1, 1, 1, 1)
    assert city.composite == pytest.approx(100.0)
    service.put_settings(
        db.uow(),
        world.admin,
        {"hotline": {"month_start_day": 1, "channels": ["hotline_12345", "public_web"]}},
    )
    city = _kpis(db).hotline.city
    # C1 满意, C2 基本满意, C3 不满意, C6 满意: all contacted; solved = not dissatisfied.
    assert (city.owed, city.contacted, city.solved, city.rated) == (4, 4, 3, 4)
    assert city.satisfaction_rate == pytest.approx(2.9 / 4)
    assert city.composite == pytest.approx(100 * (0.1 * 1 + 0.5 * 0.75 + 0.4 * 2.9 / 4))


def test_the_month_is_frozen_at_its_end(db: Database, world: World, october: October) -> None:
    """What happens in November does not change October's numbers."""
    before = _kpis(db).model_dump()
    _act(
        db,
        world.outsider,
        october.cases["C4"],
        CaseAction.DISPOSE,
        dt.datetime(2026, 11, 3, 10, tzinfo=_t(1, 0).tzinfo),
        reason="已处理",
    )
    assert _kpis(db).model_dump() == before
