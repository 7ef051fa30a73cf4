"""The case loop through the service layer, on SQLite and PostgreSQL.

Times are fixed: Monday 2026-11-23 09:00 in Shanghai, a plain working day.
"""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from tests.world import World, add_manhole_standard

from cityloop.cases import attachments
from cityloop.cases import service as cases
from cityloop.cases.domain import CaseAction, CaseState, Channel, Satisfaction
from cityloop.cases.models import CaseEvent
from cityloop.cases.schemas import CaseActionRequest, CaseCreate, CaseFilters, Location, Reporter
from cityloop.db.engine import Database
from cityloop.errors import Conflict, InvalidInput, PermissionDenied, RuleViolation
from cityloop.grid.coords import CoordSystem
from cityloop.org.domain import Actor

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SH)


pytestmark = pytest.mark.usefixtures("data_dir")  # attachments go to a temp folder


@pytest.fixture
def standard_id(db: Database) -> int:
    """上水井盖 broken > 25 cm² -> 2 working days (a small catalog of one row)."""
    return add_manhole_standard(db)


def photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def public_report(db: Database, **extra: object) -> int:
    data = CaseCreate(
        channel=Channel.PUBLIC_WEB,
        description="井盖破损, 有安全隐患",
        location=Location(lon=116.3, lat=39.96, system=CoordSystem.GCJ02),
        address="海淀区某路 1 号(演示)",
        reporter=Reporter(name="张三(演示)", phone="13800000000"),
        **extra,  # type: ignore[arg-type]
    )
    reported = cases.report(db.uow(), None, data, now=MONDAY_9)
    assert reported.created and reported.view is None
    return reported.id


def step(
    db: Database,
    actor: Actor,
    case_id: int,
    action: CaseAction,
    at: dt.datetime,
    **fields: object,
) -> cases.CasePublic:
    version = cases.get_case(db.uow(), actor, case_id).version
    req = CaseActionRequest(action=action, version=version, **fields)  # type: ignore[arg-type]
    return cases.act(db.uow(), actor, case_id, req, now=at)


def upload(db: Database, actor: Actor) -> int:
    return attachments.upload(
        db.uow(), actor, filename="p.jpg", content=photo(), stage="feedback"
    ).id


def to_dispatched(db: Database, w: World, standard_id: int) -> int:
    case_id = public_report(db)
    h = dt.timedelta(minutes=10)
    step(db, w.intake, case_id, CaseAction.SEND_VERIFY, MONDAY_9 + h, inspector="inspector")
    step(db, w.inspector, case_id, CaseAction.VERIFY_FOUND, MONDAY_9 + 2 * h)
    step(db, w.supervisor, case_id, CaseAction.FILE, MONDAY_9 + 3 * h, standard_id=standard_id)
    step(
        db, w.dispatcher, case_id, CaseAction.DISPATCH, MONDAY_9 + 4 * h, department_code="drainage"
    )
    return case_id


def test_the_normal_path_runs_from_public_report_to_callback(
    world: World, db: Database, standard_id: int
) -> None:
    case_id = to_dispatched(db, world, standard_id)
    dispatched = cases.get_case(db.uow(), world.dispatcher, case_id)
    assert dispatched.status is CaseState.DISPATCHED
    # Dispatched Monday 09:40 with 2 working days (960 working minutes): Wednesday 09:40.
    assert dispatched.step_deadline == dt.datetime(2026, 11, 25, 9, 40, tzinfo=SH)
    assert dispatched.disposal_deadline == dispatched.step_deadline

    at = MONDAY_9 + dt.timedelta(hours=3)
    photo_id = upload(db, world.operator)
    step(
        db,
        world.operator,
        case_id,
        CaseAction.DISPOSE,
        at,
        reason="已更换井盖",
        attachment_ids=[photo_id],
    )
    step(db, world.intake, case_id, CaseAction.SEND_CHECK, at, inspector="inspector")
    step(db, world.inspector, case_id, CaseAction.CHECK_PASS, at)
    step(db, world.supervisor, case_id, CaseAction.CLOSE, at)
    closed = step(
        db, world.intake, case_id, CaseAction.CALLBACK, at, satisfaction=Satisfaction.SATISFIED
    )
    assert closed.status is CaseState.CLOSED
    assert closed.satisfaction is Satisfaction.SATISFIED
    timeline = cases.events(db.uow(), world.leader, case_id)
    assert [e.action for e in timeline] == [
        "report",
        "send_verify",
        "verify_found",
        "file",
        "dispatch",
        "dispose",
        "send_check",
        "check_pass",
        "close",
        "callback",
    ]
    assert timeline[5].attachment_ids == [photo_id]
    assert timeline[0].actor_role is None  # a citizen
    assert closed.version == len(timeline)  # one version per action


def test_a_stale_version_is_a_conflict_and_changes_nothing(
    world: World, db: Database, standard_id: int
) -> None:
    case_id = public_report(db)
    req = CaseActionRequest(action=CaseAction.SEND_VERIFY, version=1)
    cases.act(db.uow(), world.intake, case_id, req, now=MONDAY_9)
    with pytest.raises(Conflict) as err:
        cases.act(db.uow(), world.intake, case_id, req, now=MONDAY_9)
    assert err.value.field == "version"
    assert len(cases.events(db.uow(), world.intake, case_id)) == 2


def test_an_action_not_in_the_table_names_state_action_and_role(world: World, db: Database) -> None:
    case_id = public_report(db)
    with pytest.raises(RuleViolation) as err:
        step(db, world.supervisor, case_id, CaseAction.CLOSE, MONDAY_9)
    message = err.value.message
    assert "close" in message and "reported" in message and "shift_supervisor" in message


def test_the_other_department_can_neither_see_nor_act(
    world: World, db: Database, standard_id: int
) -> None:
    case_id = to_dispatched(db, world, standard_id)
    with pytest.raises(PermissionDenied):
        cases.get_case(db.uow(), world.outsider, case_id)
    with pytest.raises(PermissionDenied):
        cases.act(
            db.uow(),
            world.outsider,
            case_id,
            CaseActionRequest(action=CaseAction.REQUEST_RETURN, version=5, reason="not ours"),
        )
    assert cases.list_cases(db.uow(), world.outsider, CaseFilters()).total == 0
    assert cases.list_cases(db.uow(), world.operator, CaseFilters()).total == 1
    assert cases.inbox(db.uow(), world.outsider) == []


def test_departments_never_see_the_reporters_contact(
    world: World, db: Database, standard_id: int
) -> None:
    case_id = to_dispatched(db, world, standard_id)
    assert cases.get_case(db.uow(), world.operator, case_id).reporter is None
    reporter = cases.get_case(db.uow(), world.dispatcher, case_id).reporter
    assert reporter is not None and reporter.phone == "13800000000"


def test_the_same_idempotency_key_returns_the_same_case(world: World, db: Database) -> None:
    data = CaseCreate(channel=Channel.HOTLINE_12345, description="噪音扰民", address="某小区(演示)")
    first = cases.report(db.uow(), world.intake, data, idempotency_key="k-1", now=MONDAY_9)
    again = cases.report(db.uow(), world.intake, data, idempotency_key="k-1", now=MONDAY_9)
    assert first.id == again.id
    assert (first.created, again.created) == (True, False)
    assert cases.list_cases(db.uow(), world.intake, CaseFilters()).total == 1


def test_case_codes_are_the_local_date_plus_a_daily_serial(world: World, db: Database) -> None:
    data = CaseCreate(channel=Channel.HOTLINE_12345, description="x", address="y")
    late = dt.datetime(2026, 11, 23, 23, 59, tzinfo=SH)  # 15:59 UTC, still the 23rd locally
    codes = [cases.report(db.uow(), world.intake, data, now=late).code for _ in range(2)]
    assert codes == ["2026112300001", "2026112300002"]


def test_an_extension_adds_one_original_limit(world: World, db: Database, standard_id: int) -> None:
    case_id = to_dispatched(db, world, standard_id)
    at = MONDAY_9 + dt.timedelta(hours=1)
    step(db, world.operator, case_id, CaseAction.REQUEST_EXTENSION, at, reason="需采购井盖")
    extended = step(db, world.dispatcher, case_id, CaseAction.APPROVE_EXTENSION, at)
    assert extended.status is CaseState.DISPATCHED
    assert extended.extension_count == 1
    # 4 working days from Monday 09:40: Friday 09:40.
    assert extended.step_deadline == dt.datetime(2026, 11, 27, 9, 40, tzinfo=SH)


def test_suspension_pauses_the_clock_and_resume_moves_the_deadline(
    world: World, db: Database, standard_id: int
) -> None:
    case_id = to_dispatched(db, world, standard_id)
    at = MONDAY_9 + dt.timedelta(hours=1)  # 10:00
    step(db, world.operator, case_id, CaseAction.REQUEST_SUSPEND, at, reason="待管线迁改")
    suspended = step(db, world.dispatcher, case_id, CaseAction.APPROVE_SUSPEND, at)
    assert suspended.status is CaseState.SUSPENDED
    assert suspended.step is None and suspended.step_deadline is None
    # Resumed the next day at 10:00: one working day (480 min) paused.
    resumed = step(db, world.dispatcher, case_id, CaseAction.RESUME, at + dt.timedelta(days=1))
    assert resumed.status is CaseState.DISPATCHED
    assert resumed.step_deadline == dt.datetime(2026, 11, 26, 9, 40, tzinfo=SH)
    with pytest.raises(RuleViolation):  # at most once
        step(db, world.operator, case_id, CaseAction.REQUEST_SUSPEND, at, reason="again")


def test_a_failed_check_sends_it_back_to_the_same_department_as_rework(
    world: World, db: Database, standard_id: int
) -> None:
    case_id = to_dispatched(db, world, standard_id)
    at = MONDAY_9 + dt.timedelta(hours=2)
    photo_id = upload(db, world.operator)
    step(
        db,
        world.operator,
        case_id,
        CaseAction.DISPOSE,
        at,
        reason="done",
        attachment_ids=[photo_id],
    )
    step(db, world.intake, case_id, CaseAction.SEND_CHECK, at)
    reworked = step(db, world.inspector, case_id, CaseAction.CHECK_FAIL, at, reason="井盖仍松动")
    assert reworked.status is CaseState.DISPATCHED
    assert reworked.rework_count == 1
    assert reworked.department_id == world.drainage_id


def test_an_approved_return_releases_the_department_for_redispatch(
    world: World, db: Database, standard_id: int
) -> None:
    case_id = to_dispatched(db, world, standard_id)
    at = MONDAY_9 + dt.timedelta(hours=1)
    step(db, world.operator, case_id, CaseAction.REQUEST_RETURN, at, reason="属环卫职责")
    returned = step(db, world.dispatcher, case_id, CaseAction.APPROVE_RETURN, at)
    assert returned.status is CaseState.FILED
    assert returned.department_id is None and returned.return_count == 1
    with pytest.raises(PermissionDenied):  # drainage no longer sees it
        cases.get_case(db.uow(), world.operator, case_id)
    again = step(
        db, world.dispatcher, case_id, CaseAction.DISPATCH, at, department_code="sanitation"
    )
    assert again.department_id == world.sanitation_id
    assert cases.get_case(db.uow(), world.outsider, case_id).status is CaseState.DISPATCHED


def test_disposal_needs_a_photo_and_a_reason(world: World, db: Database, standard_id: int) -> None:
    case_id = to_dispatched(db, world, standard_id)
    with pytest.raises(InvalidInput) as no_photo:
        step(db, world.operator, case_id, CaseAction.DISPOSE, MONDAY_9, reason="done")
    assert no_photo.value.field == "attachment_ids"
    with pytest.raises(InvalidInput) as no_reason:
        step(
            db,
            world.operator,
            case_id,
            CaseAction.DISPOSE,
            MONDAY_9,
            attachment_ids=[upload(db, world.operator)],
        )
    assert no_reason.value.field == "reason"


def test_an_inspector_can_self_handle_their_own_report(world: World, db: Database) -> None:
    data = CaseCreate(channel=Channel.INSPECTOR, description="小广告", address="某路(演示)")
    reported = cases.report(db.uow(), world.inspector, data, now=MONDAY_9)
    assert reported.status is CaseState.VERIFIED  # an inspector's report skips verification
    step(db, world.inspector, reported.id, CaseAction.SELF_HANDLE, MONDAY_9, reason="已当场清除")
    closed = step(db, world.supervisor, reported.id, CaseAction.CLOSE, MONDAY_9)
    assert closed.status is CaseState.CLOSED


def test_a_void_request_is_approved_by_the_shift_supervisor(world: World, db: Database) -> None:
    case_id = public_report(db)
    step(db, world.intake, case_id, CaseAction.REQUEST_VOID, MONDAY_9, reason="重复上报")
    voided = step(db, world.supervisor, case_id, CaseAction.APPROVE_VOID, MONDAY_9, reason="同意")
    assert voided.status is CaseState.VOIDED


def test_the_inbox_lists_the_departments_work_with_lights(
    world: World, db: Database, standard_id: int
) -> None:
    case_id = to_dispatched(db, world, standard_id)
    items = cases.inbox(db.uow(), world.operator, now=MONDAY_9 + dt.timedelta(hours=1))
    assert [i.id for i in items] == [case_id]
    assert items[0].light is not None and items[0].light.value == "green"
    late = cases.inbox(db.uow(), world.operator, now=dt.datetime(2026, 11, 26, 9, 0, tzinfo=SH))
    assert late[0].light is not None and late[0].light.value == "red"


def test_case_events_cannot_be_rewritten(world: World, db: Database) -> None:
    public_report(db)
    with db.uow() as uow:
        assert uow.session.scalar(select(CaseEvent.id)) is not None
    for statement in ("UPDATE case_event SET reason = 'forged'", "DELETE FROM case_event"):
        with db.uow() as uow, pytest.raises(DBAPIError, match="append-only"):
            uow.session.execute(text(statement))


def test_a_bad_coordinate_system_or_missing_place_is_named() -> None:
    with pytest.raises(ValueError, match="location"):
        CaseCreate(channel=Channel.PUBLIC_WEB, description="x")


def test_a_new_holiday_moves_running_deadlines(
    world: World, db: Database, standard_id: int
) -> None:
    from cityloop.workcal import service as workcal

    case_id = to_dispatched(db, world, standard_id)
    before = cases.get_case(db.uow(), world.dispatcher, case_id)
    assert before.step_deadline == dt.datetime(2026, 11, 25, 9, 40, tzinfo=SH)
    workcal.add_override(
        db.uow(), world.admin, day=dt.date(2026, 11, 24), kind="holiday", note="台风(演示)"
    )
    assert cases.recompute_open_deadlines(db.uow(), world.admin) == 1
    after = cases.get_case(db.uow(), world.dispatcher, case_id)
    assert after.step_deadline == dt.datetime(2026, 11, 26, 9, 40, tzinfo=SH)
    assert after.disposal_deadline == after.step_deadline
    assert after.version == before.version  # nobody's pending action goes stale
    with pytest.raises(PermissionDenied):
        cases.recompute_open_deadlines(db.uow(), world.dispatcher)
