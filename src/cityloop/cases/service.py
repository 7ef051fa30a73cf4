"""Case-loop use cases. Each public function owns one transaction.

Order inside ``act``: load the case, check scope, check the version, ask the pure table
(``domain.decide``), validate the action's own fields, apply the clock and effects, append the
event, flush (the ORM's version check catches a concurrent writer), commit. Any refusal before
commit leaves nothing written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityloop.audit.service import record
from cityloop.cases import domain
from cityloop.cases.attachments import add_upload
from cityloop.cases.clocks import (
    Context,
    apply_clock,
    apply_effects,
    milestones,
    pauses_of,
    recompute_deadline,
    start_step,
    sync_disposal_deadline,
)
from cityloop.cases.domain import (
    STATE_LABELS_ZH,
    WAIT_POINTS,
    CaseAction,
    CaseFacts,
    CaseState,
    Channel,
    LoopPolicy,
    Step,
)
from cityloop.cases.models import Case, CaseAttachment, CaseCodeSerial, CaseEvent
from cityloop.cases.schemas import (
    CaseActionRequest,
    CaseCreate,
    CaseFilters,
    CasePage,
    CasePublic,
    EventPublic,
    InboxItem,
    Reporter,
)
from cityloop.cases.settings import SETTINGS_KEY, CaseSettings
from cityloop.catalog.models import FilingStandard, MinorClass
from cityloop.cityconfig.service import load as load_setting
from cityloop.db import cache
from cityloop.db.base import utcnow
from cityloop.db.rows import execute_compiled, insert_new
from cityloop.db.uow import UnitOfWork
from cityloop.errors import CityloopError, Conflict, InvalidInput, NotFound, PermissionDenied
from cityloop.exchange import outbox
from cityloop.grid.coords import to_wgs84
from cityloop.grid.service import locate_case
from cityloop.org.domain import Actor, DepartmentKind, Role
from cityloop.org.models import Department, User
from cityloop.workcal.domain import Light, WorkingCalendar, parse_time_limit
from cityloop.workcal.service import calendar_in

# Actions whose form must carry a reason: refusals, requests and negative findings are
# decisions someone will later be asked to justify.
REASON_REQUIRED: frozenset[CaseAction] = frozenset(
    {
        CaseAction.VERIFY_NOT_FOUND,
        CaseAction.DECLINE,
        CaseAction.NOT_ACCEPT,
        CaseAction.REQUEST_RETURN,
        CaseAction.REJECT_RETURN,
        CaseAction.REQUEST_EXTENSION,
        CaseAction.REJECT_EXTENSION,
        CaseAction.REQUEST_SUSPEND,
        CaseAction.REJECT_SUSPEND,
        CaseAction.CHECK_FAIL,
        CaseAction.REQUEST_VOID,
        CaseAction.APPROVE_VOID,
        CaseAction.REJECT_VOID,
        CaseAction.DISPOSE,
        CaseAction.SELF_HANDLE,
        CaseAction.URGE,
    }
)

# Where photos are expected, and under which stage they are filed.
ATTACHMENT_STAGE: dict[CaseAction, str] = {
    CaseAction.DISPOSE: "feedback",
    CaseAction.CHECK_PASS: "check",
    CaseAction.CHECK_FAIL: "check",
    CaseAction.VERIFY_FOUND: "verify",
    CaseAction.VERIFY_NOT_FOUND: "verify",
    CaseAction.SELF_HANDLE: "feedback",
}


@dataclass(frozen=True)
class Reported:
    """What intake hands back: enough for a 201, a receipt to a citizen, or a staff view."""

    id: int
    code: str
    status: CaseState
    version: int
    created: bool
    view: CasePublic | None  # the staff view, when a staff actor reported


def _reported(
    session: Session, actor: Actor | None, case: Case, ctx: Context, now: dt.datetime, created: bool
) -> Reported:
    return Reported(
        id=case.id,
        code=case.code,
        status=CaseState(case.state),
        version=case.version,
        created=created,
        view=to_public(session, actor, case, ctx, now) if actor else None,
    )


CONTEXT_TTL = 5.0  # seconds another process's settings or calendar change may take to show


def load_context(session: Session) -> Context:
    """Settings, policy and calendar, cached briefly: every request needs them, few change them."""
    hit = cache.get(session, "case_context")
    if isinstance(hit, Context):
        return hit
    settings = load_setting(session, SETTINGS_KEY, CaseSettings)
    ctx = Context(settings=settings, policy=settings.policy(), calendar=calendar_in(session))
    cache.put(session, "case_context", ctx, ttl=CONTEXT_TTL)
    return ctx


# --- visibility ------------------------------------------------------------------------------


def can_see(actor: Actor, case: Case) -> bool:
    """Centre roles see every case; a department sees what is assigned to it; an inspector sees
    what they reported or were sent to, plus the unassigned verify/check pool."""
    if actor.is_citywide:
        return True
    if actor.role is Role.DEPARTMENT_OPERATOR:
        return actor.covers_department(case.department_id)
    if actor.role is Role.INSPECTOR:
        if actor.user_id in (case.reporter_user_id, case.inspector_id):
            return True
        return case.inspector_id is None and case.state in (
            CaseState.VERIFYING,
            CaseState.CHECKING,
        )
    return False


def _visibility_clause(actor: Actor) -> Any:
    if actor.is_citywide:
        return None
    if actor.role is Role.DEPARTMENT_OPERATOR:
        return Case.department_id.in_(sorted(actor.department_scope))
    if actor.role is Role.INSPECTOR:
        return or_(
            Case.reporter_user_id == actor.user_id,
            Case.inspector_id == actor.user_id,
            and_(
                Case.inspector_id.is_(None),
                Case.state.in_([CaseState.VERIFYING.value, CaseState.CHECKING.value]),
            ),
        )
    return Case.id.is_(None)  # nobody else sees cases


def _require_visible(actor: Actor, case: Case) -> None:
    if not can_see(actor, case):
        raise PermissionDenied(
            f"case {case.code} is outside the scope of {actor.username} ({actor.role.value})"
        )


def _get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case with id {case_id}", field="case_id")
    return case


def case_by_code(session: Session, code: str) -> Case:
    case = session.scalar(select(Case).where(Case.code == code))
    if case is None:
        raise NotFound(f"no case with code {code}", field="code")
    return case


# --- presentation ----------------------------------------------------------------------------


def facts_of(case: Case) -> CaseFacts:
    return CaseFacts(
        channel=Channel(case.channel),
        extension_count=case.extension_count,
        suspend_count=case.suspend_count,
        rework_count=case.rework_count,
        callback_count=case.callback_count,
        state_before_void=CaseState(case.state_before_void) if case.state_before_void else None,
    )


def light_of(case: Case, calendar: WorkingCalendar, now: dt.datetime) -> Light | None:
    if case.step is None or case.step_started_at is None or case.step_limit is None:
        return None
    if case.step_deadline is not None and now >= case.step_deadline:
        return Light.RED
    return calendar.light(
        case.step_started_at,
        now,
        parse_time_limit(case.step_limit),
        pauses=pauses_of(case),
        extensions=case.step_extensions,
    )


def _allowed(actor: Actor, case: Case, policy: LoopPolicy) -> list[CaseAction]:
    actions = domain.allowed_actions(case.state, actor.role, facts_of(case), policy)
    return [a for a in actions if _scope_refusal(actor, case, a) is None]


def to_public(
    session: Session, actor: Actor, case: Case, ctx: Context, now: dt.datetime
) -> CasePublic:
    minor = session.get(MinorClass, case.minor_id) if case.minor_id else None
    dept = session.get(Department, case.department_id) if case.department_id else None
    show_reporter = actor.is_citywide or actor.user_id == case.reporter_user_id
    reporter = (
        Reporter(name=case.reporter_name, phone=case.reporter_phone, email=case.reporter_email)
        if show_reporter and (case.reporter_name or case.reporter_phone or case.reporter_email)
        else None
    )
    return CasePublic(
        id=case.id,
        code=case.code,
        version=case.version,
        status=CaseState(case.state),
        status_label=STATE_LABELS_ZH[CaseState(case.state)],
        channel=Channel(case.channel),
        family=case.family,
        minor_code=minor.code if minor else None,
        minor_name=minor.name if minor else None,
        standard_id=case.standard_id,
        description=case.description,
        address=case.address,
        lon=case.lon,
        lat=case.lat,
        cell_code=case.cell_code,
        outside_jurisdiction=case.outside_jurisdiction,
        department_id=case.department_id,
        department_name=dept.name if dept else None,
        suggested_department_id=case.suggested_department_id,
        inspector_id=case.inspector_id,
        priority=case.priority,
        step=Step(case.step) if case.step else None,
        step_limit=case.step_limit,
        step_deadline=case.step_deadline,
        light=light_of(case, ctx.calendar, now),
        disposal_deadline=case.disposal_deadline,
        reported_at=case.reported_at,
        filed_at=case.filed_at,
        dispatched_at=case.dispatched_at,
        disposed_at=case.disposed_at,
        closed_at=case.closed_at,
        extension_count=case.extension_count,
        suspend_count=case.suspend_count,
        rework_count=case.rework_count,
        return_count=case.return_count,
        urge_count=case.urge_count,
        satisfaction=case.satisfaction,
        allowed_actions=_allowed(actor, case, ctx.policy),
        reporter=reporter,
    )


# --- clocks ----------------------------------------------------------------------------------


def _disposal_limit(session: Session, case: Case, ctx: Context) -> str:
    if case.standard_id is not None:
        row = session.get(FilingStandard, case.standard_id)
        if row is not None and row.limit_text:
            return row.limit_text
    return ctx.settings.default_disposal_limit


# --- intake ----------------------------------------------------------------------------------


def _serial_upsert(insert: Any) -> Any:
    return (
        insert(CaseCodeSerial.__table__)
        .values(day=bindparam("day"), last=1)
        .on_conflict_do_update(
            index_elements=[CaseCodeSerial.day], set_={"last": CaseCodeSerial.last + 1}
        )
        .returning(CaseCodeSerial.last)
    )


# Built once: a statement object that is reused keeps its cache key, so the compiled SQL is
# found without rebuilding the construct on every report.
_SERIAL_UPSERT = {"postgresql": _serial_upsert(pg_insert), "sqlite": _serial_upsert(sqlite_insert)}
_BY_IDEMPOTENCY_KEY = select(Case).where(Case.idempotency_key == bindparam("key"))


def _next_code(session: Session, day: dt.date, prefix: str) -> str:
    """Date plus a per-day serial: unique per city and the same in every copy of the data."""
    row = execute_compiled(session, _SERIAL_UPSERT[session.get_bind().dialect.name], {"day": day})
    assert row is not None
    serial = int(row[0])
    return f"{prefix}{day:%Y%m%d}{serial:05d}"


def _event(
    session: Session,
    case: Case,
    actor: Actor | None,
    *,
    action: CaseAction,
    from_state: str | None,
    now: dt.datetime,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    actor_name: str | None = None,
) -> CaseEvent:
    event = CaseEvent(
        case_id=case.id,
        at=now,
        actor_user_id=actor.user_id if actor else None,
        actor_name=actor.username if actor else (actor_name or "public"),
        actor_role=actor.role.value if actor else None,
        action=action.value,
        from_state=from_state,
        to_state=case.state,
        reason=reason,
        department_id=case.department_id,
        step=case.step,
        deadline=case.step_deadline,
        detail=detail or {},
    )
    insert_new(session, event)  # immutable: one INSERT, never touched again
    return event


def _resolve_class(session: Session, data: CaseCreate) -> tuple[int | None, int | None]:
    minor_id: int | None = None
    standard_id: int | None = None
    if data.minor_code is not None:
        minor = session.scalar(
            select(MinorClass).where(
                MinorClass.family == data.family,
                MinorClass.code == data.minor_code,
                MinorClass.active.is_(True),
            )
        )
        if minor is None:
            raise InvalidInput(
                f"no active {data.family} class with code {data.minor_code}", field="minor_code"
            )
        minor_id = minor.id
    if data.standard_id is not None:
        row = session.get(FilingStandard, data.standard_id)
        if row is None or not row.active:
            raise InvalidInput(
                f"no active filing-standard row {data.standard_id}", field="standard_id"
            )
        if minor_id is not None and row.minor_id != minor_id:
            raise InvalidInput(
                f"filing-standard row {row.id} does not belong to class {data.minor_code}",
                field="standard_id",
            )
        minor_id = row.minor_id
        standard_id = row.id
    return minor_id, standard_id


def _link_attachments(
    session: Session, case: Case, event: CaseEvent, ids: Sequence[int], actor: Actor | None
) -> None:
    for attachment_id in ids:
        att = session.get(CaseAttachment, attachment_id)
        if att is None or att.event_id is not None:
            raise InvalidInput(
                f"attachment {attachment_id} is unknown or already used", field="attachment_ids"
            )
        if att.case_id not in (None, case.id):
            raise InvalidInput(
                f"attachment {attachment_id} belongs to another case", field="attachment_ids"
            )
        # Only the uploader claims an upload; an anonymous report never claims a stored one
        # (its photos arrive with the report itself, see ``report(photos=...)``).
        if actor is None or att.uploaded_by != actor.user_id:
            raise InvalidInput(
                f"attachment {attachment_id} was not uploaded by you", field="attachment_ids"
            )
        att.case_id = case.id
        att.event_id = event.id


def report(
    uow: UnitOfWork,
    actor: Actor | None,
    data: CaseCreate,
    *,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
    locate: Any = None,
    photos: Sequence[tuple[str, bytes]] = (),
) -> Reported:
    """Create a case from any channel.

    ``actor`` is None for a citizen or a machine feed (public web, Open311). With an
    ``idempotency_key`` a repeat returns the first case, never a second one. ``locate`` is the
    grid's point assignment (cell, community, subdistrict, suggested department, inspector);
    by default the stored grid's (``grid.service.locate_case``), which refuses a point outside
    the city unless the city accepts such cases as outside its jurisdiction.
    ``photos`` (file name, bytes) are validated and stored in the same transaction.
    """
    now = now or utcnow()
    with uow:
        session = uow.session
        try:
            result = _create(session, actor, data, idempotency_key, now, locate, photos)
        except IntegrityError:
            # Another request with the same idempotency key won the race: return its case.
            session.rollback()
            existing = _existing(session, actor, idempotency_key, now)
            if existing is None:
                raise
            return existing
        uow.commit()
        return result


@dataclass(frozen=True)
class IntakeRequest:
    """One report waiting for a group commit (``report_many``)."""

    actor: Actor | None
    data: CaseCreate
    idempotency_key: str | None = None


def report_many(
    uow: UnitOfWork, requests: Sequence[IntakeRequest], *, now: dt.datetime | None = None
) -> list[Reported | Exception]:
    """Several reports in ONE transaction: group commit for a busy intake.

    Each report runs in its own savepoint, so a refused one (a bad class code, a point
    outside the city) is rolled back alone and its error is returned in its place, while the
    others are committed together: one BEGIN, one COMMIT and one disk sync for the batch
    instead of one per case. Nothing is acknowledged before that commit; if it fails, the
    exception propagates and no report of the batch counts as made.
    """
    now = now or utcnow()
    out: list[Reported | Exception] = []
    if len(requests) == 1:  # a quiet moment: no savepoint needed
        req = requests[0]
        try:
            out.append(
                report(uow, req.actor, req.data, idempotency_key=req.idempotency_key, now=now)
            )
        except CityloopError as exc:
            out.append(exc)
        return out
    with uow:
        session = uow.session
        for req in requests:
            try:
                with session.begin_nested():
                    out.append(
                        _create(session, req.actor, req.data, req.idempotency_key, now, None, ())
                    )
            except IntegrityError as exc:
                existing = _existing(session, req.actor, req.idempotency_key, now)
                out.append(existing if existing is not None else exc)
            except Exception as exc:  # it belongs to one request: its caller raises it
                out.append(exc)
        uow.commit()
    return out


def _existing(
    session: Session, actor: Actor | None, idempotency_key: str | None, now: dt.datetime
) -> Reported | None:
    """The case an idempotency key already made, as a repeat's answer."""
    if idempotency_key is None:
        return None
    existing = session.scalar(_BY_IDEMPOTENCY_KEY, {"key": idempotency_key})
    if existing is None:
        return None
    return _reported(session, actor, existing, load_context(session), now, False)


def _create(
    session: Session,
    actor: Actor | None,
    data: CaseCreate,
    idempotency_key: str | None,
    now: dt.datetime,
    locate: Any,
    photos: Sequence[tuple[str, bytes]],
) -> Reported:
    """The report itself, inside the caller's transaction.

    A repeated idempotency key is not looked up first (nearly every key is new): the case
    row's unique key refuses it with IntegrityError, and the caller rolls back and answers
    with the first case (``_existing``).
    """
    ctx = load_context(session)
    role = actor.role if actor else None
    transition = domain.decide_report(data.channel, role, ctx.policy)
    minor_id, standard_id = _resolve_class(session, data)
    lon = lat = None
    if data.location is not None:
        lon, lat = to_wgs84(data.location.lon, data.location.lat, data.location.system)
    local_day = ctx.calendar.to_local(now).date()
    case = Case(
        code=_next_code(session, local_day, ctx.settings.code_prefix),
        state=transition.to_state.value,
        channel=data.channel.value,
        idempotency_key=idempotency_key,
        external_id=data.external_id,
        family=data.family,
        minor_id=minor_id,
        standard_id=standard_id,
        description=data.description,
        lon=lon,
        lat=lat,
        coord_system=data.location.system.value if data.location else None,
        address=data.address,
        component_code=data.component_code,
        reporter_user_id=actor.user_id if actor else None,
        reporter_name=data.reporter.name if data.reporter else None,
        reporter_phone=data.reporter.phone if data.reporter else None,
        reporter_email=data.reporter.email if data.reporter else None,
        step_pauses=[],
        reported_at=now,
        updated_at=now,
    )
    if lon is not None and lat is not None:
        (locate or locate_case)(session, case, ctx.settings)
    # The clock is set before the insert so a new case is version 1.
    start_step(
        case,
        WAIT_POINTS[transition.to_state].step,
        ctx,
        now,
        _disposal_limit(session, case, ctx),
    )
    sync_disposal_deadline(case)
    # The case's first picture is complete here: one INSERT (db/rows.py), not a flush.
    insert_new(session, case)
    event = _event(
        session,
        case,
        actor,
        action=CaseAction.REPORT,
        from_state=None,
        now=now,
        detail={"channel": data.channel.value},
        # Never the citizen's name: the timeline is shown to departments.
        actor_name=f"public:{data.channel.value}" if actor is None else None,
    )
    _link_attachments(session, case, event, data.attachment_ids, actor)
    for filename, content in photos:
        # In the report's own transaction: a refused report leaves no orphan photo.
        att = add_upload(session, actor, filename=filename, content=content, stage="report")
        att.case_id = case.id
        att.event_id = event.id
    return _reported(session, actor, case, ctx, now, True)


# --- actions ---------------------------------------------------------------------------------


def _scope_refusal(actor: Actor, case: Case, action: CaseAction) -> str | None:
    """Why this actor may not act on this case beyond what the role table says, or None."""
    if actor.role is Role.DEPARTMENT_OPERATOR and not actor.covers_department(case.department_id):
        return "the case is not assigned to your department"
    if (
        actor.role is Role.INSPECTOR
        and action
        in (
            CaseAction.VERIFY_FOUND,
            CaseAction.VERIFY_NOT_FOUND,
            CaseAction.CHECK_PASS,
            CaseAction.CHECK_FAIL,
        )
        and case.inspector_id not in (None, actor.user_id)
    ):
        return "the task was sent to another inspector"
    if (
        actor.role is Role.INSPECTOR
        and action is CaseAction.SELF_HANDLE
        and CaseState(case.state) is not CaseState.VERIFYING
        and case.reporter_user_id != actor.user_id
    ):
        return "only the reporting inspector may self-handle this case"
    return None


def _inspector(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or user.role != Role.INSPECTOR.value:
        raise InvalidInput(f"'{username}' is not an active inspector", field="inspector")
    return user


def _handling_department(session: Session, code: str) -> Department:
    dept = session.scalar(select(Department).where(Department.code == code))
    if dept is None or not dept.active:
        raise InvalidInput(f"no active department with code '{code}'", field="department_code")
    if dept.kind == DepartmentKind.CENTRE.value:
        raise InvalidInput(
            f"'{code}' is the centre, not a handling or territorial unit", field="department_code"
        )
    return dept


def act(
    uow: UnitOfWork,
    actor: Actor,
    case_id: int,
    req: CaseActionRequest,
    *,
    now: dt.datetime | None = None,
) -> CasePublic:
    now = now or utcnow()
    with uow:
        session = uow.session
        case = _get_case(session, case_id)
        _require_visible(actor, case)
        if req.version != case.version:
            raise Conflict(
                f"case {case.code} changed: it is at version {case.version}, you sent "
                f"{req.version}; reload it and try again",
                field="version",
            )
        ctx = load_context(session)
        transition = domain.decide(case.state, req.action, actor.role, facts_of(case), ctx.policy)
        refusal = _scope_refusal(actor, case, req.action)
        if refusal is not None:
            raise PermissionDenied(f"action '{req.action.value}' on case {case.code}: {refusal}")
        reason = (req.reason or "").strip() or None
        if req.action in REASON_REQUIRED and reason is None:
            raise InvalidInput(f"action '{req.action.value}' needs a reason", field="reason")
        if req.attachment_ids and req.action not in ATTACHMENT_STAGE:
            raise InvalidInput(
                f"action '{req.action.value}' takes no attachments", field="attachment_ids"
            )
        if len(req.attachment_ids) > ctx.settings.max_attachments_per_action:
            raise InvalidInput(
                f"at most {ctx.settings.max_attachments_per_action} attachments per action",
                field="attachment_ids",
            )
        if (
            req.action is CaseAction.DISPOSE
            and ctx.settings.feedback_requires_evidence
            and not req.attachment_ids
        ):
            raise InvalidInput(
                "the disposal feedback needs at least one photo as evidence",
                field="attachment_ids",
            )

        from_state = case.state
        detail: dict[str, Any] = {}
        # No autoflush while the row is half-changed: a lookup in between would flush it early
        # and the one action would cost two versions.
        with session.no_autoflush:
            _apply_action_fields(session, case, req, detail)
            disposal_limit = _disposal_limit(session, case, ctx)
            case.state = (
                transition.to_state.value
                if req.action is not CaseAction.REJECT_VOID
                else (case.state_before_void or transition.to_state.value)
            )
            apply_effects(case, transition, req.action, from_state, now)
            milestones(case, req.action, now)
            apply_clock(case, transition, ctx, now, disposal_limit)
            sync_disposal_deadline(case)
            case.updated_at = now
        try:
            session.flush()
        except StaleDataError:
            raise Conflict(
                f"case {case.code} was changed by someone else; reload it and try again",
                field="version",
            ) from None
        event = _event(
            session,
            case,
            actor,
            action=req.action,
            from_state=from_state,
            now=now,
            reason=reason,
            detail=detail,
        )
        _link_attachments(session, case, event, req.attachment_ids, actor)
        # Filed, dispatched and closed cases go to the upward-exchange outbox in this same
        # transaction: the push to the higher-level platform is then at least once.
        outbox.record(session, case, event)
        view = to_public(session, actor, case, ctx, now)
        uow.commit()
        return view


def _apply_action_fields(
    session: Session, case: Case, req: CaseActionRequest, detail: dict[str, Any]
) -> None:
    action = req.action
    if action in (CaseAction.SEND_VERIFY, CaseAction.SEND_CHECK):
        if req.inspector is not None:
            case.inspector_id = _inspector(session, req.inspector).id
            detail["inspector"] = req.inspector
        elif action is CaseAction.SEND_CHECK and case.inspector_id is None:
            case.inspector_id = case.reporter_user_id if case.channel == Channel.INSPECTOR else None
    elif action is CaseAction.FILE:
        standard_id = req.standard_id or case.standard_id
        if standard_id is None:
            raise InvalidInput(
                "filing needs the filing-standard row (standard_id) the case meets",
                field="standard_id",
            )
        row = session.get(FilingStandard, standard_id)
        if row is None or not row.active:
            raise InvalidInput(f"no active filing-standard row {standard_id}", field="standard_id")
        minor = session.get(MinorClass, row.minor_id)
        assert minor is not None
        case.standard_id = row.id
        case.minor_id = minor.id
        case.family = minor.family
        if case.suggested_department_id is None and row.default_department_id is not None:
            case.suggested_department_id = row.default_department_id
        detail["standard_id"] = row.id
        detail["minor_code"] = minor.code
    elif action is CaseAction.DISPATCH:
        if req.department_code is None:
            raise InvalidInput("dispatch needs the handling department", field="department_code")
        dept = _handling_department(session, req.department_code)
        case.department_id = dept.id
        detail["department_code"] = dept.code
    elif action is CaseAction.CALLBACK:
        if req.satisfaction is None:
            raise InvalidInput(
                "a callback records the citizen's satisfaction", field="satisfaction"
            )
        case.satisfaction = req.satisfaction.value
        detail["satisfaction"] = req.satisfaction.value
    if req.department_code is not None and action is not CaseAction.DISPATCH:
        raise InvalidInput(f"action '{action.value}' takes no department", field="department_code")


# --- reading ---------------------------------------------------------------------------------


def get_case(
    uow: UnitOfWork, actor: Actor, case_id: int, *, now: dt.datetime | None = None
) -> CasePublic:
    now = now or utcnow()
    with uow.read():
        session = uow.session
        case = _get_case(session, case_id)
        _require_visible(actor, case)
        return to_public(session, actor, case, load_context(session), now)


def get_case_by_code(uow: UnitOfWork, actor: Actor, code: str) -> CasePublic:
    with uow.read():
        session = uow.session
        case = case_by_code(session, code)
        _require_visible(actor, case)
        return to_public(session, actor, case, load_context(session), utcnow())


def events(uow: UnitOfWork, actor: Actor, case_id: int) -> list[EventPublic]:
    """The timeline, read from the immutable event rows."""
    with uow.read():
        session = uow.session
        case = _get_case(session, case_id)
        _require_visible(actor, case)
        rows = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        ).all()
        attachments: dict[int, list[int]] = {}
        for att_id, event_id in session.execute(
            select(CaseAttachment.id, CaseAttachment.event_id).where(
                CaseAttachment.case_id == case.id
            )
        ):
            if event_id is not None:
                attachments.setdefault(event_id, []).append(att_id)
        return [
            EventPublic.model_validate(row).model_copy(
                update={"attachment_ids": attachments.get(row.id, [])}
            )
            for row in rows
        ]


def filtered_cases(
    session: Session, actor: Actor, f: CaseFilters, now: dt.datetime
) -> Select[Case]:
    """The cases ``actor`` may see that match ``f``, as a statement (the list and the export)."""
    stmt = select(Case)
    clause = _visibility_clause(actor)
    if clause is not None:
        stmt = stmt.where(clause)
    if f.status:
        stmt = stmt.where(Case.state.in_([s.value for s in f.status]))
    if f.department_code is not None:
        dept_id = session.scalar(select(Department.id).where(Department.code == f.department_code))
        if dept_id is None:
            raise InvalidInput(
                f"no department with code '{f.department_code}'", field="department_code"
            )
        stmt = stmt.where(Case.department_id == dept_id)
    if f.family is not None:
        stmt = stmt.where(Case.family == f.family)
    if f.minor_code is not None:
        stmt = stmt.join(MinorClass, MinorClass.id == Case.minor_id).where(
            MinorClass.code == f.minor_code
        )
    if f.channel is not None:
        stmt = stmt.where(Case.channel == f.channel.value)
    if f.overdue is True:
        stmt = stmt.where(Case.step_deadline.is_not(None), Case.step_deadline < now)
    elif f.overdue is False:
        stmt = stmt.where(or_(Case.step_deadline.is_(None), Case.step_deadline >= now))
    if f.reported_from is not None:
        stmt = stmt.where(Case.reported_at >= f.reported_from)
    if f.reported_to is not None:
        stmt = stmt.where(Case.reported_at < f.reported_to)
    if f.q:
        pattern = f"%{f.q}%"
        stmt = stmt.where(
            or_(Case.code.like(pattern), Case.description.like(pattern), Case.address.like(pattern))
        )
    return stmt


def list_cases(
    uow: UnitOfWork, actor: Actor, filters: CaseFilters, *, now: dt.datetime | None = None
) -> CasePage:
    now = now or utcnow()
    if (
        filters.reported_from is not None
        and filters.reported_to is not None
        and filters.reported_to <= filters.reported_from
    ):
        raise InvalidInput("reported_to must be after reported_from", field="reported_to")
    with uow.read():
        session = uow.session
        stmt = filtered_cases(session, actor, filters, now)
        total = (
            session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        )
        rows = session.scalars(
            stmt.order_by(Case.reported_at.desc(), Case.id.desc())
            .limit(filters.page_size)
            .offset((filters.page - 1) * filters.page_size)
        ).all()
        ctx = load_context(session)
        return CasePage(
            items=[to_public(session, actor, c, ctx, now) for c in rows],
            total=total,
            page=filters.page,
            page_size=filters.page_size,
        )


def _inbox_clause(actor: Actor) -> Any:
    """The states where this role must act next (its 待办), within its scope."""
    states = [s.value for s, wp in WAIT_POINTS.items() if wp.owner is actor.role]
    clause: Any = Case.state.in_(states)
    visible = _visibility_clause(actor)
    if visible is not None:
        clause = and_(clause, visible)
    if actor.role is Role.INSPECTOR:
        clause = and_(clause, or_(Case.inspector_id.is_(None), Case.inspector_id == actor.user_id))
    return clause


def inbox(
    uow: UnitOfWork, actor: Actor, *, limit: int = 200, now: dt.datetime | None = None
) -> list[InboxItem]:
    """The actor's to-do list across cases, nearest deadline first, urged cases on top."""
    now = now or utcnow()
    with uow.read():
        session = uow.session
        ctx = load_context(session)
        stmt = (
            select(Case)
            .where(_inbox_clause(actor))
            .order_by(
                Case.priority.desc(),
                Case.step_deadline.is_(None),
                Case.step_deadline,
                Case.id,
            )
            .limit(limit)
        )
        items: list[InboxItem] = []
        for case in session.scalars(stmt):
            allowed = _allowed(actor, case, ctx.policy)
            if not allowed:
                continue
            items.append(
                InboxItem(
                    id=case.id,
                    code=case.code,
                    version=case.version,
                    status=CaseState(case.state),
                    status_label=STATE_LABELS_ZH[CaseState(case.state)],
                    description=case.description,
                    step=Step(case.step) if case.step else None,
                    step_deadline=case.step_deadline,
                    light=light_of(case, ctx.calendar, now),
                    priority=case.priority,
                    allowed_actions=allowed,
                )
            )
        # Within equal priority the nearest deadline comes first (SQL sorted it); a case
        # already red stays above yellow and green ones because its deadline is nearer.
        return items


def recompute_open_deadlines(uow: UnitOfWork, actor: Actor) -> int:
    """Recompute every running step's deadline with the current calendar and settings.

    Run after a holiday override, a covered year or the working schedule changes: a stored
    deadline is a cache of the calendar, and a typhoon day declared today must move the
    deadlines of cases already running. The version is not bumped (nobody's pending action
    should fail because the calendar moved). Returns how many cases changed.
    """
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only an admin may recompute deadlines")
    changed = 0
    with uow:
        session = uow.session
        ctx = load_context(session)
        rows = session.execute(
            select(
                Case.id,
                Case.step_started_at,
                Case.step_limit,
                Case.step_pauses,
                Case.step_extensions,
                Case.step,
                Case.step_deadline,
            ).where(Case.step.is_not(None), Case.step_started_at.is_not(None))
        ).all()
        for row in rows:
            probe = _DeadlineProbe(
                row.step_started_at, row.step_limit, row.step_pauses, row.step_extensions
            )
            recompute_deadline(probe, ctx)  # type: ignore[arg-type]
            if probe.step_deadline == row.step_deadline:
                continue
            values: dict[str, Any] = {
                "step_deadline": probe.step_deadline,
                "step_warn_at": probe.step_warn_at,
            }
            if row.step == Step.DISPOSE.value:
                values["disposal_deadline"] = probe.step_deadline
            session.execute(
                update(Case).where(Case.id == row.id).values(values),
                execution_options={"synchronize_session": False},
            )
            changed += 1
        record(
            session,
            actor,
            action="cases.recompute_deadlines",
            entity="case_file",
            entity_id="*",
            detail={"changed": changed},
        )
        uow.commit()
    return changed


@dataclass
class _DeadlineProbe:
    step_started_at: dt.datetime
    step_limit: str
    step_pauses: list[list[str]]
    step_extensions: int
    step_deadline: dt.datetime | None = None
    step_warn_at: dt.datetime | None = None
