"""Ledger use cases. Each public function owns one transaction (``with uow: … uow.commit()``
to write, ``with uow.read():`` to read); a failure leaves nothing written.

Who may do what:

- leaders and admins (the rectification office) create ledgers, add and edit groups and items,
  import workbooks, review, approve, reject and look back;
- a department operator sees only the items whose responsible unit is in its department scope,
  reports progress on them (with evidence) and submits them for sign-off;
- on a hazard survey the inspector (监督员) also records inspections and hazards and reviews
  (verifies on site) their rectification;
- every citywide role reads whole ledgers, exports them and generates bulletins.

Every change writes an ``audit_entry`` row; every sign-off transition also writes a
``ledger_item_event`` row (the history the chart and the relapse statistics read).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityloop.audit.service import record
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from cityloop.ledgers import bulletin as bulletin_mod
from cityloop.ledgers import workbook
from cityloop.ledgers.chart import progress_svg
from cityloop.ledgers.cn import heading_number, strip_numbering
from cityloop.ledgers.domain import (
    DEFAULT_POLICY,
    DEFAULT_STAGES,
    SHAPES,
    STATE_LABELS_ZH,
    STATUS_LABELS_ZH,
    DeadlineKind,
    EventFacts,
    GroupFacts,
    ItemFacts,
    ItemStatus,
    LedgerFacts,
    LedgerKind,
    LedgerSnapshot,
    SignoffAction,
    SignoffFacts,
    SignoffPolicy,
    SignoffState,
    TextBlock,
    allowed_actions,
    check_editable,
    check_status_change,
    decide,
    hazard_stats,
    normalise_hazard_level,
    overdue_items,
    parse_deadline,
    progress_by_stage,
    progress_by_top_group,
    progress_by_unit,
    progress_timeline,
    resolve_deadline,
    totals,
)
from cityloop.ledgers.evidence import (
    MAX_FILES_PER_ENTRY,
    EvidenceStore,
    FileType,
    check_file,
    clean_filename,
)
from cityloop.ledgers.models import (
    Ledger,
    LedgerEvidence,
    LedgerGroup,
    LedgerItem,
    LedgerItemEvent,
    LedgerProgress,
)
from cityloop.ledgers.schemas import (
    EventPublic,
    EvidencePublic,
    GroupCreate,
    GroupNode,
    GroupPublic,
    HazardStatsPublic,
    ImportReport,
    ItemCreate,
    ItemDetail,
    ItemPublic,
    ItemUpdate,
    LedgerCreate,
    LedgerDetail,
    LedgerPublic,
    LedgerSummary,
    LedgerUpdate,
    ProgressPublic,
    ProgressRowPublic,
    StatsPublic,
    TimelinePointPublic,
    TotalsPublic,
)
from cityloop.org.domain import Actor, Role
from cityloop.org.models import Department
from cityloop.workcal.domain import WorkingCalendar
from cityloop.workcal.service import load_calendar

MANAGERS = frozenset({Role.LEADER, Role.ADMIN})
HAZARD_RECORDERS = MANAGERS | {Role.INSPECTOR}
PROGRESS_TEXT_MAX = 8000

# --------------------------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------------------------


def can_see_item(actor: Actor, kind: LedgerKind, unit_id: int | None) -> bool:
    """Citywide roles see everything; an operator sees its units' items; an inspector sees
    hazard surveys (it records them)."""
    if actor.is_citywide:
        return True
    if actor.role is Role.INSPECTOR:
        return kind is LedgerKind.HAZARD
    if actor.role is Role.DEPARTMENT_OPERATOR:
        return actor.covers_department(unit_id)
    return False


def _require_manager(actor: Actor, kind: LedgerKind) -> None:
    roles = HAZARD_RECORDERS if kind is LedgerKind.HAZARD else MANAGERS
    if actor.role not in roles:
        names = ", ".join(sorted(r.value for r in roles))
        raise PermissionDenied(
            f"role '{actor.role.value}' may not change this ledger's contents; it needs one of: "
            f"{names}"
        )


def _require_whole_reader(actor: Actor) -> None:
    if not actor.is_citywide:
        raise PermissionDenied(
            "only citywide roles (leader, admin, the centre's staff) may export a whole ledger "
            "or publish its bulletin"
        )


def _require_visible(actor: Actor, kind: LedgerKind, item: LedgerItem) -> None:
    if not can_see_item(actor, kind, item.unit_id):
        # The same answer as a missing item: an operator must not learn what other units hold.
        raise NotFound(f"no ledger item {item.id}", field="item_id")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _ledger(session: Session, ledger_id: int) -> Ledger:
    ledger = session.get(Ledger, ledger_id)
    if ledger is None:
        raise NotFound(f"no ledger {ledger_id}", field="ledger_id")
    return ledger


def _item(session: Session, item_id: int) -> tuple[LedgerItem, Ledger]:
    item = session.get(LedgerItem, item_id)
    if item is None:
        raise NotFound(f"no ledger item {item_id}", field="item_id")
    return item, _ledger(session, item.ledger_id)


def _blocks(raw: Iterable[dict[str, str]]) -> tuple[TextBlock, ...]:
    return tuple(TextBlock(b.get("heading", ""), b.get("text", "")) for b in raw)


def ledger_facts(ledger: Ledger) -> LedgerFacts:
    return LedgerFacts(
        id=ledger.id,
        kind=LedgerKind(ledger.kind),
        title=ledger.title,
        subject=ledger.subject,
        authority=ledger.authority,
        inspection_group=ledger.inspection_group,
        onsite_start=ledger.onsite_start,
        onsite_end=ledger.onsite_end,
        feedback_on=ledger.feedback_on,
        stages=tuple(ledger.stages or DEFAULT_STAGES),
        bulletin_title=ledger.bulletin_title,
        organisation=_blocks(ledger.organisation or []),
        next_steps=_blocks(ledger.next_steps or []),
        as_of=ledger.as_of,
        issuer=ledger.issuer,
        issued_on=ledger.issued_on,
        contact_phone=ledger.contact_phone,
        contact_mailbox=ledger.contact_mailbox,
        contact_postcode=ledger.contact_postcode,
        contact_email=ledger.contact_email,
    )


def _group_facts(group: LedgerGroup) -> GroupFacts:
    return GroupFacts(
        id=group.id,
        parent_id=group.parent_id,
        level=group.level,
        position=group.position,
        title=group.title,
        held_on=group.held_on,
        place=group.place,
        inspector=group.inspector,
        note=group.note,
    )


def _item_facts(item: LedgerItem, unit_name: str | None) -> ItemFacts:
    return ItemFacts(
        id=item.id,
        group_id=item.group_id,
        position=item.position,
        content=item.content,
        state=SignoffState(item.signoff_state),
        status=ItemStatus(item.status),
        responsible_leader=item.responsible_leader,
        unit_id=item.unit_id,
        unit_name=unit_name or "",
        co_units=item.co_units,
        responsible_person=item.responsible_person,
        deadline_text=item.deadline_text,
        due_on=item.due_on,
        due_at=item.due_at,
        stage=item.stage,
        completion=item.completion,
        hazard_class=item.hazard_class,
        hazard_level=item.hazard_level,
        location=item.location,
        relapse_count=item.relapse_count,
        signed_off_at=item.signed_off_at,
    )


def _rows(session: Session, ledger_id: int) -> list[tuple[LedgerItem, str | None]]:
    stmt = (
        select(LedgerItem, Department.name)
        .outerjoin(Department, LedgerItem.unit_id == Department.id)
        .where(LedgerItem.ledger_id == ledger_id)
        .order_by(LedgerItem.position, LedgerItem.id)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]


def _snapshot(session: Session, ledger: Ledger, actor: Actor | None = None) -> LedgerSnapshot:
    """The ledger as pure facts; restricted to what ``actor`` may see when given."""
    groups = session.scalars(
        select(LedgerGroup)
        .where(LedgerGroup.ledger_id == ledger.id)
        .order_by(LedgerGroup.level, LedgerGroup.position, LedgerGroup.id)
    )
    rows = _rows(session, ledger.id)
    snapshot = LedgerSnapshot(
        ledger_facts(ledger),
        tuple(_group_facts(g) for g in groups),
        tuple(_item_facts(item, name) for item, name in rows),
    )
    if actor is None:
        return snapshot
    kind = LedgerKind(ledger.kind)
    visible = [i.id for i in snapshot.items if can_see_item(actor, kind, i.unit_id)]
    if len(visible) == len(snapshot.items) and (actor.is_citywide or kind is LedgerKind.HAZARD):
        return snapshot
    return snapshot.restricted_to(visible)


def _visible_ledger(session: Session, actor: Actor, ledger_id: int) -> Ledger:
    ledger = _ledger(session, ledger_id)
    kind = LedgerKind(ledger.kind)
    if actor.is_citywide or (actor.role is Role.INSPECTOR and kind is LedgerKind.HAZARD):
        return ledger
    if actor.role is Role.DEPARTMENT_OPERATOR and actor.department_scope:
        has_any = session.scalar(
            select(func.count(LedgerItem.id)).where(
                LedgerItem.ledger_id == ledger_id,
                LedgerItem.unit_id.in_(actor.department_scope),
            )
        )
        if has_any:
            return ledger
    raise NotFound(f"no ledger {ledger_id}", field="ledger_id")


def _ledger_public(ledger: Ledger) -> LedgerPublic:
    return LedgerPublic.model_validate(
        {
            **{c: getattr(ledger, c) for c in _LEDGER_COLUMNS},
            "organisation": ledger.organisation or [],
            "next_steps": ledger.next_steps or [],
            "stages": list(ledger.stages or DEFAULT_STAGES),
        }
    )


_LEDGER_COLUMNS = (
    "id",
    "kind",
    "title",
    "subject",
    "authority",
    "inspection_group",
    "onsite_start",
    "onsite_end",
    "feedback_on",
    "bulletin_title",
    "as_of",
    "issuer",
    "issued_on",
    "contact_phone",
    "contact_mailbox",
    "contact_postcode",
    "contact_email",
    "created_by",
    "created_at",
    "updated_at",
    "version",
)


def _item_public(item: LedgerItem, unit_name: str | None, now: dt.datetime) -> ItemPublic:
    facts = _item_facts(item, unit_name)
    return ItemPublic(
        id=item.id,
        ledger_id=item.ledger_id,
        group_id=item.group_id,
        position=item.position,
        content=item.content,
        responsible_leader=item.responsible_leader,
        unit_id=item.unit_id,
        unit_name=unit_name or "",
        co_units=item.co_units,
        responsible_person=item.responsible_person,
        deadline_text=item.deadline_text,
        due_on=item.due_on,
        due_at=item.due_at,
        stage=item.stage,
        status=facts.status,
        status_label=STATUS_LABELS_ZH[facts.status],
        signoff_state=facts.state,
        state_label=STATE_LABELS_ZH[facts.state],
        completion=item.completion,
        hazard_class=item.hazard_class,
        hazard_level=item.hazard_level,
        location=item.location,
        relapse_count=item.relapse_count,
        last_reason=item.last_reason,
        signed_off_at=item.signed_off_at,
        overdue=facts.overdue(now),
        version=item.version,
    )


def _unit_name(session: Session, unit_id: int | None) -> str | None:
    if unit_id is None:
        return None
    dept = session.get(Department, unit_id)
    return dept.name if dept is not None else None


def _flush(session: Session, what: str) -> None:
    """Flush, turning a lost optimistic-lock race into ``Conflict``."""
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(f"{what} was changed by someone else meanwhile; reload and retry") from None


def _check_version(expected: int | None, actual: int, what: str) -> None:
    if expected is not None and expected != actual:
        raise Conflict(
            f"{what} is at version {actual}, not {expected}: it changed since you loaded it",
            field="expected_version",
        )


# --------------------------------------------------------------------------------------------
# Ledgers
# --------------------------------------------------------------------------------------------


def _audit(session: Session, actor: Actor, action: str, entity: str, entity_id: object,
           detail: dict[str, Any] | None = None) -> None:  # fmt: skip
    record(session, actor, action=action, entity=entity, entity_id=entity_id, detail=detail)


def create_ledger(uow: UnitOfWork, actor: Actor, data: LedgerCreate) -> LedgerPublic:
    _require_manager(actor, data.kind)
    if data.kind is LedgerKind.HAZARD and actor.role is Role.INSPECTOR:
        raise PermissionDenied("an inspector records hazards in a ledger; a leader creates it")
    _check_dates(data.onsite_start, data.onsite_end, data.feedback_on)
    with uow:
        session = uow.session
        ledger = Ledger(
            kind=data.kind.value,
            title=data.title.strip(),
            stages=list(data.stages or DEFAULT_STAGES),
            created_by=actor.username,
            **_header_values(data.model_dump(exclude={"kind", "title", "stages"})),
        )
        session.add(ledger)
        session.flush()
        _audit(
            session,
            actor,
            "ledger.create",
            "ledger",
            ledger.id,
            {"kind": ledger.kind, "title": ledger.title},
        )
        result = _ledger_public(ledger)
        uow.commit()
    return result


def _header_values(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key in ("organisation", "next_steps") and value is not None:
            value = [
                {"heading": b["heading"].strip(), "text": b["text"].strip()}
                for b in value
                if b["heading"].strip() or b["text"].strip()
            ]
        elif isinstance(value, str):
            value = value.strip()
        out[key] = value
    return out


def _check_dates(start: dt.date | None, end: dt.date | None, feedback: dt.date | None) -> None:
    if start and end and end < start:
        raise InvalidInput("the inspection cannot end before it starts", field="onsite_end")
    if feedback and (end or start) and feedback < (end or start or feedback):
        raise InvalidInput(
            "the feedback date cannot be before the inspection on site", field="feedback_on"
        )


def update_ledger(
    uow: UnitOfWork, actor: Actor, ledger_id: int, data: LedgerUpdate
) -> LedgerPublic:
    """Change header or bulletin fields. A new feedback date moves every deadline that counts
    from it; a new stage list must still contain every stage in use."""
    changes = data.model_dump(exclude_unset=True, exclude={"expected_version"})
    calendar = _calendar(uow) if "feedback_on" in changes else None
    with uow:
        session = uow.session
        ledger = _ledger(session, ledger_id)
        if actor.role not in MANAGERS:
            raise PermissionDenied("only a leader or an admin may edit a ledger's header")
        _check_version(data.expected_version, ledger.version, "the ledger")
        values = _header_values(changes)
        if "title" in values and not values["title"]:
            raise InvalidInput("the title cannot be empty", field="title")
        _check_dates(
            values.get("onsite_start", ledger.onsite_start),
            values.get("onsite_end", ledger.onsite_end),
            values.get("feedback_on", ledger.feedback_on),
        )
        if "stages" in values:
            values["stages"] = list(values["stages"] or DEFAULT_STAGES)
            in_use = set(
                session.scalars(
                    select(LedgerItem.stage).where(
                        LedgerItem.ledger_id == ledger_id, LedgerItem.stage != ""
                    )
                )
            )
            dropped = sorted(in_use - set(values["stages"]))
            if dropped:
                raise RuleViolation(
                    f"stages still in use cannot be removed: {'、'.join(dropped)}",
                    field="stages",
                )
        before = {k: _jsonable(getattr(ledger, k)) for k in values}
        for key, value in values.items():
            setattr(ledger, key, value)
        ledger.updated_at = utcnow()
        moved = 0
        if calendar is not None and before.get("feedback_on") != _jsonable(ledger.feedback_on):
            moved = _recompute_deadlines(session, ledger, calendar)
        _flush(session, "the ledger")
        _audit(
            session,
            actor,
            "ledger.update",
            "ledger",
            ledger.id,
            {
                "before": before,
                "after": {k: _jsonable(getattr(ledger, k)) for k in values},
                "deadlines_moved": moved,
            },
        )
        result = _ledger_public(ledger)
        uow.commit()
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _recompute_deadlines(session: Session, ledger: Ledger, calendar: WorkingCalendar) -> int:
    """Re-read every item's written deadline against the (new) feedback date."""
    moved = 0
    problems = []
    for item in session.scalars(select(LedgerItem).where(LedgerItem.ledger_id == ledger.id)):
        try:
            due_on, due_at = _resolve(item.deadline_text, ledger.feedback_on, calendar)
        except InvalidInput as exc:
            problems.append(f"item {item.id}: {exc.message}")
            continue
        if (due_on, due_at) != (item.due_on, item.due_at):
            item.due_on, item.due_at = due_on, due_at
            moved += 1
    if problems:
        raise InvalidInput(
            "the new feedback date leaves deadlines unreadable: " + "; ".join(problems[:5]),
            field="feedback_on",
        )
    return moved


def _resolve(
    text: str, feedback_on: dt.date | None, calendar: WorkingCalendar
) -> tuple[dt.date | None, dt.datetime | None]:
    spec = parse_deadline(text, reference=feedback_on)
    return resolve_deadline(spec, start=feedback_on, calendar=calendar)


def _calendar(uow: UnitOfWork) -> WorkingCalendar:
    """The city's working calendar (its own short transaction, before ours opens)."""
    return load_calendar(uow)


def list_ledgers(
    uow: UnitOfWork, actor: Actor, *, kind: LedgerKind | None = None, now: dt.datetime | None = None
) -> list[LedgerSummary]:
    """The ledgers ``actor`` can see, newest first, with counts over the items it can see."""
    now = now or utcnow()
    with uow.read():
        session = uow.session
        stmt = select(Ledger).order_by(Ledger.id.desc())
        if kind is not None:
            stmt = stmt.where(Ledger.kind == kind.value)
        out = []
        for ledger in session.scalars(stmt):
            lkind = LedgerKind(ledger.kind)
            items = [
                _item_facts(item, name)
                for item, name in _rows(session, ledger.id)
                if can_see_item(actor, lkind, item.unit_id)
            ]
            visible_ledger = actor.is_citywide or (
                actor.role is Role.INSPECTOR and lkind is LedgerKind.HAZARD
            )
            if not items and not visible_ledger:
                continue
            out.append(
                LedgerSummary(
                    id=ledger.id,
                    kind=lkind,
                    title=ledger.title,
                    items=len(items),
                    signed_off=sum(1 for i in items if i.signed_off),
                    overdue=sum(1 for i in items if i.overdue(now)),
                )
            )
        return out


def get_ledger(
    uow: UnitOfWork, actor: Actor, ledger_id: int, *, now: dt.datetime | None = None
) -> LedgerDetail:
    """The ledger with its groups and the items ``actor`` may see, in document order."""
    now = now or utcnow()
    with uow.read():
        session = uow.session
        ledger = _visible_ledger(session, actor, ledger_id)
        snapshot = _snapshot(session, ledger, actor)
        items = {item.id: (item, name) for item, name in _rows(session, ledger.id)}
        groups = {
            g.id: g
            for g in session.scalars(select(LedgerGroup).where(LedgerGroup.ledger_id == ledger_id))
        }

        def node(facts: GroupFacts, number: str) -> GroupNode:
            children = [
                node(child, heading_number(3, n))
                for n, child in enumerate(snapshot.children(facts.id), start=1)
            ]
            return GroupNode(
                group=GroupPublic.model_validate(groups[facts.id]),
                number=number,
                children=children,
                items=[_item_public(*items[i.id], now) for i in snapshot.items_of(facts.id)],
            )

        tree = [node(top, heading_number(1, n)) for n, top in enumerate(snapshot.top_groups(), 1)]
        return LedgerDetail(ledger=_ledger_public(ledger), groups=tree)


# --------------------------------------------------------------------------------------------
# Groups and items
# --------------------------------------------------------------------------------------------


def _next_position(session: Session, model: Any, *where: Any) -> int:
    current = session.scalar(select(func.max(model.position)).where(*where))
    return int(current or 0) + 1


def add_group(uow: UnitOfWork, actor: Actor, ledger_id: int, data: GroupCreate) -> GroupPublic:
    """Add a 方面 (no parent) or a 问题 (under a 方面); an inspection or a section."""
    with uow:
        session = uow.session
        ledger = _ledger(session, ledger_id)
        kind = LedgerKind(ledger.kind)
        _require_manager(actor, kind)
        shape = SHAPES[kind]
        level = 1
        if data.parent_id is not None:
            parent = session.get(LedgerGroup, data.parent_id)
            if parent is None or parent.ledger_id != ledger_id:
                raise NotFound(f"no group {data.parent_id} in this ledger", field="parent_id")
            level = parent.level + 1
        if level > shape.item_level:
            raise RuleViolation(
                f"a {shape.label} has {shape.item_level} level(s) of groups "
                f"({'/'.join(shape.group_levels)}); this one would be level {level}",
                field="parent_id",
            )
        if kind is LedgerKind.HAZARD and (data.held_on is None or not data.place.strip()):
            raise InvalidInput(
                "an inspection needs the date it was held and the place or enterprise",
                field="held_on" if data.held_on is None else "place",
            )
        group = LedgerGroup(
            ledger_id=ledger_id,
            parent_id=data.parent_id,
            level=level,
            position=_next_position(
                session,
                LedgerGroup,
                LedgerGroup.ledger_id == ledger_id,
                LedgerGroup.parent_id.is_(None)
                if data.parent_id is None
                else LedgerGroup.parent_id == data.parent_id,
            ),
            title=strip_numbering(data.title) or data.title.strip(),
            held_on=data.held_on,
            place=data.place.strip(),
            inspector=data.inspector.strip(),
            note=data.note.strip(),
        )
        session.add(group)
        session.flush()
        _audit(
            session,
            actor,
            "ledger.group.create",
            "ledger_group",
            group.id,
            {"ledger_id": ledger_id, "level": level, "title": group.title},
        )
        result = GroupPublic.model_validate(group)
        uow.commit()
    return result


def _check_unit(session: Session, unit_id: int | None, required: bool) -> None:
    if unit_id is None:
        if required:
            raise InvalidInput("every measure needs a responsible unit", field="unit_id")
        return
    dept = session.get(Department, unit_id)
    if dept is None or not dept.active:
        raise NotFound(f"no active department {unit_id}", field="unit_id")


def _check_stage(ledger: Ledger, stage: str) -> str:
    stage = stage.strip()
    stages = list(ledger.stages or DEFAULT_STAGES)
    if stage and stage not in stages:
        raise InvalidInput(
            f"'{stage}' is not one of this ledger's stages ({'、'.join(stages)})", field="stage"
        )
    return stage


def _event(
    session: Session,
    actor: Actor,
    item: LedgerItem,
    *,
    action: str,
    from_state: str | None,
    from_status: str | None,
    reason: str = "",
    at: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        LedgerItemEvent(
            ledger_id=item.ledger_id,
            item_id=item.id,
            at=at,
            actor_user_id=actor.user_id,
            actor_username=actor.username,
            actor_role=actor.role.value,
            action=action,
            from_state=from_state,
            to_state=item.signoff_state,
            from_status=from_status,
            to_status=item.status,
            reason=reason,
            detail=detail or {},
        )
    )


def add_item(
    uow: UnitOfWork,
    actor: Actor,
    ledger_id: int,
    data: ItemCreate,
    *,
    now: dt.datetime | None = None,
) -> ItemPublic:
    """Add a measure under a 问题 (a hazard under an inspection, an item under a section)."""
    calendar = _calendar(uow)
    now = now or utcnow()
    with uow:
        session = uow.session
        ledger = _ledger(session, ledger_id)
        kind = LedgerKind(ledger.kind)
        _require_manager(actor, kind)
        shape = SHAPES[kind]
        group = session.get(LedgerGroup, data.group_id)
        if group is None or group.ledger_id != ledger_id:
            raise NotFound(f"no group {data.group_id} in this ledger", field="group_id")
        if group.level != shape.item_level:
            raise RuleViolation(
                f"{shape.item_noun} hang under a {shape.group_levels[-1]}, "
                f"not under a {shape.group_levels[group.level - 1]}",
                field="group_id",
            )
        _check_unit(session, data.unit_id, shape.requires_unit)
        spec = parse_deadline(data.deadline, reference=ledger.feedback_on)
        due_on, due_at = resolve_deadline(spec, start=ledger.feedback_on, calendar=calendar)
        status = data.status or (
            ItemStatus.LONG_TERM if spec.kind is DeadlineKind.LONG_TERM else ItemStatus.NOT_STARTED
        )
        item = LedgerItem(
            ledger_id=ledger_id,
            group_id=group.id,
            position=_next_position(session, LedgerItem, LedgerItem.group_id == group.id),
            content=data.content.strip(),
            responsible_leader=data.responsible_leader.strip(),
            unit_id=data.unit_id,
            co_units=data.co_units.strip(),
            responsible_person=data.responsible_person.strip(),
            deadline_text=spec.text,
            due_on=due_on,
            due_at=due_at,
            stage=_check_stage(ledger, data.stage),
            status=status.value,
            signoff_state=SignoffState.OPEN.value,
            completion=data.completion.strip(),
            hazard_class=data.hazard_class.strip(),
            hazard_level=normalise_hazard_level(data.hazard_level) if data.hazard_level else "",
            location=data.location.strip(),
            created_at=now,
            updated_at=now,
        )
        if kind is LedgerKind.HAZARD and not item.hazard_level:
            item.hazard_level = "一般"
        session.add(item)
        session.flush()
        _event(session, actor, item, action="create", from_state=None, from_status=None, at=now)
        _audit(
            session,
            actor,
            "ledger.item.create",
            "ledger_item",
            item.id,
            {"ledger_id": ledger_id, "group_id": group.id, "content": item.content[:200]},
        )
        result = _item_public(item, _unit_name(session, item.unit_id), now)
        uow.commit()
    return result


_MANAGER_FIELDS = frozenset(
    {
        "content",
        "responsible_leader",
        "unit_id",
        "co_units",
        "responsible_person",
        "deadline",
        "stage",
        "hazard_class",
        "hazard_level",
        "location",
    }
)
_UNIT_FIELDS = frozenset({"completion", "status"})


def update_item(
    uow: UnitOfWork,
    actor: Actor,
    item_id: int,
    data: ItemUpdate,
    *,
    now: dt.datetime | None = None,
) -> ItemPublic:
    """Edit an item. Managers edit anything while the item is worked on; the unit's operators
    edit only its 完成情况 and status."""
    changes = data.model_dump(exclude_unset=True, exclude={"expected_version"})
    calendar = _calendar(uow) if "deadline" in changes else None
    now = now or utcnow()
    with uow:
        session = uow.session
        item, ledger = _item(session, item_id)
        kind = LedgerKind(ledger.kind)
        _require_visible(actor, kind, item)
        manager = actor.role in (HAZARD_RECORDERS if kind is LedgerKind.HAZARD else MANAGERS)
        allowed = _MANAGER_FIELDS | _UNIT_FIELDS if manager else _UNIT_FIELDS
        if actor.role is Role.INSPECTOR and kind is not LedgerKind.HAZARD:
            allowed = frozenset()
        refused = sorted(set(changes) - allowed)
        if refused:
            raise PermissionDenied(
                f"role '{actor.role.value}' may not change {', '.join(refused)} of this item"
            )
        _check_version(data.expected_version, item.version, "the item")
        state = SignoffState(item.signoff_state)
        # Managers may still polish the 完成情况 of a signed-off item (audited); a unit's
        # account of its own work is fixed once it asked for sign-off.
        if set(changes) & _MANAGER_FIELDS or not manager:
            check_editable(state)
        before = {k: _jsonable(getattr(item, k if k != "deadline" else "deadline_text"))
                  for k in changes}  # fmt: skip
        for key, value in changes.items():
            if key == "deadline":
                assert calendar is not None
                spec = parse_deadline(value or "", reference=ledger.feedback_on)
                item.deadline_text = spec.text
                item.due_on, item.due_at = resolve_deadline(
                    spec, start=ledger.feedback_on, calendar=calendar
                )
            elif key == "unit_id":
                _check_unit(session, value, SHAPES[kind].requires_unit)
                item.unit_id = value
            elif key == "stage":
                item.stage = _check_stage(ledger, value or "")
            elif key == "status":
                if value is None:
                    raise InvalidInput("status cannot be empty", field="status")
                new_status = ItemStatus(value)
                check_status_change(state, new_status)
                item.status = new_status.value
            elif key == "hazard_level":
                item.hazard_level = normalise_hazard_level(value) if value else ""
            elif key == "content":
                if not value or not value.strip():
                    raise InvalidInput("the content cannot be empty", field="content")
                item.content = value.strip()
            else:
                setattr(item, key, (value or "").strip())
        item.updated_at = now
        _flush(session, "the item")
        after = {k: _jsonable(getattr(item, k if k != "deadline" else "deadline_text"))
                 for k in changes}  # fmt: skip
        _audit(
            session,
            actor,
            "ledger.item.update",
            "ledger_item",
            item.id,
            {"before": before, "after": after},
        )
        result = _item_public(item, _unit_name(session, item.unit_id), now)
        uow.commit()
    return result


# --------------------------------------------------------------------------------------------
# Progress and evidence
# --------------------------------------------------------------------------------------------


def add_progress(
    uow: UnitOfWork,
    actor: Actor,
    item_id: int,
    *,
    text: str = "",
    status: ItemStatus | None = None,
    completion: str | None = None,
    files: Sequence[tuple[str, bytes]] = (),
    store: EvidenceStore | None = None,
    now: dt.datetime | None = None,
) -> ProgressPublic:
    """Record progress on an item: what was done, optionally a new status and a new 完成情况,
    and evidence files (checked by content before anything is written)."""
    text = text.strip()
    if len(text) > PROGRESS_TEXT_MAX:
        raise InvalidInput(
            f"the progress text has {len(text)} characters; at most {PROGRESS_TEXT_MAX}",
            field="text",
        )
    if completion is not None and len(completion) > PROGRESS_TEXT_MAX:
        raise InvalidInput("完成情况 is too long (at most 8000 characters)", field="completion")
    if len(files) > MAX_FILES_PER_ENTRY:
        raise InvalidInput(f"at most {MAX_FILES_PER_ENTRY} files per progress entry", field="files")
    checked: list[tuple[str, bytes, FileType]] = [
        (clean_filename(name), data, check_file(name, data)) for name, data in files
    ]
    if not text and not checked and status is None and completion is None:
        raise InvalidInput(
            "a progress entry needs a text, a status, 完成情况 or a file", field="text"
        )
    store = store or EvidenceStore.default()
    now = now or utcnow()
    with uow:
        session = uow.session
        item, ledger = _item(session, item_id)
        kind = LedgerKind(ledger.kind)
        _require_visible(actor, kind, item)
        if (
            actor.role not in MANAGERS
            and actor.role is not Role.DEPARTMENT_OPERATOR
            and not (actor.role is Role.INSPECTOR and kind is LedgerKind.HAZARD)
        ):
            raise PermissionDenied(f"role '{actor.role.value}' may not report progress")
        state = SignoffState(item.signoff_state)
        if state not in (SignoffState.OPEN, SignoffState.RETURNED, SignoffState.RELAPSED):
            raise RuleViolation(
                f"the item is {STATE_LABELS_ZH[state]}: progress is reported while it is worked "
                f"on, not while it is judged",
                field="item_id",
            )
        before_status = item.status
        if status is not None:
            check_status_change(state, status)
            item.status = status.value
        if completion is not None:
            item.completion = completion.strip()
        progress = LedgerProgress(
            item_id=item.id,
            at=now,
            actor_user_id=actor.user_id,
            actor_username=actor.username,
            text=text,
            status_after=status.value if status is not None else None,
        )
        session.add(progress)
        item.updated_at = now
        _flush(session, "the item")
        evidence = []
        for name, data, kind_of in checked:
            key, digest = store.put(data, kind_of)
            row = LedgerEvidence(
                item_id=item.id,
                progress_id=progress.id,
                filename=name,
                content_type=kind_of.content_type,
                size=len(data),
                sha256=digest,
                storage_key=key,
                uploaded_at=now,
                uploaded_by=actor.username,
            )
            session.add(row)
            evidence.append(row)
        session.flush()
        _audit(
            session,
            actor,
            "ledger.item.progress",
            "ledger_item",
            item.id,
            {
                "progress_id": progress.id,
                "status": {"before": before_status, "after": item.status},
                "completion_changed": completion is not None,
                "files": [{"name": e.filename, "sha256": e.sha256} for e in evidence],
            },
        )
        result = ProgressPublic(
            id=progress.id,
            item_id=item.id,
            at=progress.at,
            actor_username=progress.actor_username,
            text=progress.text,
            status_after=status,
            evidence=[EvidencePublic.model_validate(e) for e in evidence],
        )
        uow.commit()
    return result


def evidence_file(
    uow: UnitOfWork, actor: Actor, evidence_id: int, *, store: EvidenceStore | None = None
) -> tuple[EvidencePublic, bytes]:
    store = store or EvidenceStore.default()
    with uow.read():
        session = uow.session
        row = session.get(LedgerEvidence, evidence_id)
        if row is None:
            raise NotFound(f"no evidence file {evidence_id}", field="evidence_id")
        item, ledger = _item(session, row.item_id)
        if not can_see_item(actor, LedgerKind(ledger.kind), item.unit_id):
            raise NotFound(f"no evidence file {evidence_id}", field="evidence_id")
        public = EvidencePublic.model_validate(row)
        key = row.storage_key
    return public, store.get(key)


# --------------------------------------------------------------------------------------------
# Sign-off (销号) and look-back (回头看)
# --------------------------------------------------------------------------------------------


def _fresh_evidence(session: Session, item: LedgerItem) -> int:
    stmt = select(func.count(LedgerEvidence.id)).where(LedgerEvidence.item_id == item.id)
    if item.reopened_at is not None:
        stmt = stmt.where(LedgerEvidence.uploaded_at > item.reopened_at)
    return int(session.scalar(stmt) or 0)


def _signoff_facts(session: Session, item: LedgerItem, kind: LedgerKind) -> SignoffFacts:
    return SignoffFacts(
        kind=kind,
        state=SignoffState(item.signoff_state),
        status=ItemStatus(item.status),
        fresh_evidence=_fresh_evidence(session, item),
        submitted_by=item.submitted_by,
        reviewed_by=item.reviewed_by,
    )


def act(
    uow: UnitOfWork,
    actor: Actor,
    item_id: int,
    action: SignoffAction,
    *,
    reason: str = "",
    expected_version: int | None = None,
    policy: SignoffPolicy = DEFAULT_POLICY,
    now: dt.datetime | None = None,
) -> ItemPublic:
    """Take one sign-off action (submit, review, approve, reject, confirm, relapse)."""
    now = now or utcnow()
    with uow:
        session = uow.session
        item, ledger = _item(session, item_id)
        kind = LedgerKind(ledger.kind)
        _require_visible(actor, kind, item)
        if (
            action is SignoffAction.SUBMIT
            and actor.role is Role.DEPARTMENT_OPERATOR
            and not actor.covers_department(item.unit_id)
        ):
            raise PermissionDenied("only the responsible unit may submit this item")
        _check_version(expected_version, item.version, "the item")
        transition = decide(
            _signoff_facts(session, item, kind), action, actor, reason=reason, policy=policy
        )
        item.signoff_state = transition.to_state.value
        item.status = transition.to_status.value
        if action is SignoffAction.SUBMIT:
            item.submitted_by, item.reviewed_by = actor.user_id, None
        elif action is SignoffAction.REVIEW:
            item.reviewed_by = actor.user_id
        elif action is SignoffAction.APPROVE:
            item.signed_off_at = now
        elif action in (SignoffAction.REJECT, SignoffAction.RELAPSE):
            item.reopened_at = now
            item.last_reason = transition.reason
            item.submitted_by = item.reviewed_by = None
            if action is SignoffAction.RELAPSE:
                item.relapse_count += 1
                item.signed_off_at = None
        item.updated_at = now
        _flush(session, "the item")
        _event(
            session,
            actor,
            item,
            action=action.value,
            from_state=transition.from_state.value,
            from_status=transition.from_status.value,
            reason=transition.reason,
            at=now,
        )
        _audit(
            session,
            actor,
            f"ledger.item.{action.value}",
            "ledger_item",
            item.id,
            {
                "ledger_id": ledger.id,
                "from": transition.from_state.value,
                "to": transition.to_state.value,
                "status": {"from": transition.from_status.value, "to": transition.to_status.value},
                "reason": transition.reason,
            },
        )
        result = _item_public(item, _unit_name(session, item.unit_id), now)
        uow.commit()
    return result


def get_item(
    uow: UnitOfWork,
    actor: Actor,
    item_id: int,
    *,
    now: dt.datetime | None = None,
    policy: SignoffPolicy = DEFAULT_POLICY,
) -> ItemDetail:
    """An item with its history, progress entries, evidence and the actions ``actor`` may take."""
    now = now or utcnow()
    with uow.read():
        session = uow.session
        item, ledger = _item(session, item_id)
        kind = LedgerKind(ledger.kind)
        _require_visible(actor, kind, item)
        events = session.scalars(
            select(LedgerItemEvent)
            .where(LedgerItemEvent.item_id == item_id)
            .order_by(LedgerItemEvent.at, LedgerItemEvent.id)
        )
        progress_rows = list(
            session.scalars(
                select(LedgerProgress)
                .where(LedgerProgress.item_id == item_id)
                .order_by(LedgerProgress.at, LedgerProgress.id)
            )
        )
        evidence: dict[int, list[EvidencePublic]] = {}
        for row in session.scalars(
            select(LedgerEvidence)
            .where(LedgerEvidence.item_id == item_id)
            .order_by(LedgerEvidence.id)
        ):
            evidence.setdefault(row.progress_id, []).append(EvidencePublic.model_validate(row))
        actions = allowed_actions(_signoff_facts(session, item, kind), actor, policy)
        if (
            actor.role is Role.DEPARTMENT_OPERATOR
            and not actor.covers_department(item.unit_id)
            and SignoffAction.SUBMIT in actions
        ):
            actions.remove(SignoffAction.SUBMIT)
        return ItemDetail(
            item=_item_public(item, _unit_name(session, item.unit_id), now),
            events=[EventPublic.model_validate(e) for e in events],
            progress=[
                ProgressPublic(
                    id=p.id,
                    item_id=p.item_id,
                    at=p.at,
                    actor_username=p.actor_username,
                    text=p.text,
                    status_after=ItemStatus(p.status_after) if p.status_after else None,
                    evidence=evidence.get(p.id, []),
                )
                for p in progress_rows
            ],
            allowed_actions=actions,
        )


# --------------------------------------------------------------------------------------------
# Views: statistics, overdue, timeline, chart
# --------------------------------------------------------------------------------------------


def _row_public(row: Any) -> ProgressRowPublic:
    return ProgressRowPublic(
        key=row.key,
        label=row.label,
        items=row.items,
        signed_off=row.signed_off,
        remaining=row.remaining,
        pending=row.pending,
        overdue=row.overdue,
        relapsed_now=row.relapsed_now,
        relapses=row.relapses,
        groups=row.groups,
        groups_done=row.groups_done,
        signoff_rate=row.signoff_rate,
    )


def snapshot_stats(
    snapshot: LedgerSnapshot, *, now: dt.datetime, since: dt.date | None = None
) -> StatsPublic:
    """Statistics of a snapshot (pure; the service and the CLI share it)."""
    t = totals(snapshot, now=now)
    hazard = None
    if snapshot.ledger.kind is LedgerKind.HAZARD:
        h = hazard_stats(snapshot, since=since)
        hazard = HazardStatsPublic(
            since=h.since,
            inspections=h.inspections,
            found=h.found,
            rectified=h.rectified,
            rate=h.rate,
            by_level=dict(h.by_level),
            sentence=h.sentence(),
        )
    return StatsPublic(
        ledger_id=snapshot.ledger.id,
        kind=snapshot.ledger.kind,
        totals=TotalsPublic(
            groups_top=t.groups_top,
            groups_leaf=t.groups_leaf,
            groups_done=t.groups_done,
            groups_remaining=t.groups_remaining,
            items=t.items,
            signed_off=t.signed_off,
            pending=t.pending,
            overdue=t.overdue,
            relapsed_now=t.relapsed_now,
            relapses=t.relapses,
            items_relapsed=t.items_relapsed,
            signoff_rate=t.signoff_rate,
            relapse_rate=t.relapse_rate,
            by_status={s.value: n for s, n in t.by_status.items()},
            by_state={s.value: n for s, n in t.by_state.items()},
        ),
        by_group=[_row_public(r) for r in progress_by_top_group(snapshot, now=now)],
        by_unit=[_row_public(r) for r in progress_by_unit(snapshot, now=now)],
        by_stage=[_row_public(r) for r in progress_by_stage(snapshot, now=now)],
        counts_sentence=bulletin_mod.counts_sentence(snapshot),
        hazard=hazard,
    )


def ledger_stats(
    uow: UnitOfWork,
    actor: Actor,
    ledger_id: int,
    *,
    now: dt.datetime | None = None,
    since: dt.date | None = None,
) -> StatsPublic:
    """Progress by aspect, by unit and by stage, totals (with relapses) and, for a hazard
    survey, the four hazard numbers. An operator's numbers cover its units' items only."""
    now = now or utcnow()
    with uow.read():
        session = uow.session
        ledger = _visible_ledger(session, actor, ledger_id)
        snapshot = _snapshot(session, ledger, actor)
    return snapshot_stats(snapshot, now=now, since=since)


def list_overdue(
    uow: UnitOfWork, actor: Actor, ledger_id: int, *, now: dt.datetime | None = None
) -> list[ItemPublic]:
    """Items past their deadline and not signed off, the most overdue first."""
    now = now or utcnow()
    with uow.read():
        session = uow.session
        ledger = _visible_ledger(session, actor, ledger_id)
        snapshot = _snapshot(session, ledger, actor)
        rows = {item.id: (item, name) for item, name in _rows(session, ledger.id)}
        return [_item_public(*rows[i.id], now) for i in overdue_items(snapshot, now=now)]


def timeline(
    uow: UnitOfWork, actor: Actor, ledger_id: int, *, until: dt.date | None = None
) -> list[TimelinePointPublic]:
    points, _ = _timeline(uow, actor, ledger_id, until=until)
    return [
        TimelinePointPublic(day=p.day, signed_off=p.signed_off, groups_done=p.groups_done)
        for p in points
    ]


def _timeline(
    uow: UnitOfWork, actor: Actor, ledger_id: int, *, until: dt.date | None
) -> tuple[list[Any], LedgerSnapshot]:
    tz = _calendar(uow).tz
    with uow.read():
        session = uow.session
        ledger = _visible_ledger(session, actor, ledger_id)
        snapshot = _snapshot(session, ledger, actor)
        visible = {i.id for i in snapshot.items}
        events = [
            EventFacts(e.item_id, e.at, SignoffState(e.to_state))
            for e in session.scalars(
                select(LedgerItemEvent)
                .where(LedgerItemEvent.ledger_id == ledger_id)
                .order_by(LedgerItemEvent.at, LedgerItemEvent.id)
            )
            # Creation says nothing about sign-off, and a ledger typed in after the fact has
            # creation events later than the sign-offs it records.
            if e.item_id in visible and e.action != "create"
        ]
    return progress_timeline(snapshot, events, tz=tz, until=until), snapshot


def chart_svg(
    uow: UnitOfWork, actor: Actor, ledger_id: int, *, until: dt.date | None = None
) -> str:
    """The 挂图作战 chart: signed-off items and done problems over time (SVG)."""
    points, snapshot = _timeline(uow, actor, ledger_id, until=until)
    shape = snapshot.shape
    two_levels = shape.item_level == 2
    return progress_svg(
        points,
        title=f"{snapshot.ledger.title} 整改进度",
        total_items=len(snapshot.items),
        total_groups=len(snapshot.leaf_groups()),
        item_label=f"已销号{shape.item_noun}",
        group_label=f"已完成{shape.group_levels[-1]}"
        if two_levels
        else f"已销号{shape.group_levels[-1]}",
    )


# --------------------------------------------------------------------------------------------
# Excel and bulletin
# --------------------------------------------------------------------------------------------


def export_xlsx(uow: UnitOfWork, actor: Actor, ledger_id: int) -> bytes:
    _require_whole_reader(actor)
    with uow.read():
        snapshot = _snapshot(uow.session, _ledger(uow.session, ledger_id))
    return workbook.export_workbook(snapshot)


def render_bulletin(
    uow: UnitOfWork,
    actor: Actor,
    ledger_id: int,
    fmt: str,
    *,
    template_text: str | None = None,
) -> tuple[bytes, str]:
    """(bytes, media type) of the bulletin as "md" or "docx" from the default or given template."""
    _require_whole_reader(actor)
    with uow.read():
        snapshot = _snapshot(uow.session, _ledger(uow.session, ledger_id))
    return bulletin_mod.render(snapshot, fmt, template_text)


def _unit_lookup(session: Session) -> dict[str, int]:
    """Department name and code -> id. A name two departments share maps to nothing (the sheet
    must then use the code)."""
    by_name: dict[str, list[int]] = {}
    lookup: dict[str, int] = {}
    for dept in session.scalars(select(Department).where(Department.active.is_(True))):
        by_name.setdefault(dept.name.strip(), []).append(dept.id)
        lookup[dept.code] = dept.id
    for name, ids in by_name.items():
        if len(ids) == 1:
            lookup.setdefault(name, ids[0])
    return lookup


def import_xlsx(
    uow: UnitOfWork,
    actor: Actor,
    ledger_id: int,
    data: bytes,
    *,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Add a workbook's groups and items to a ledger, all or nothing.

    Groups already in the ledger with the same title (and, for inspections, date, place and
    inspector) are reused, so a workbook can extend a ledger. Nothing is signed off by an
    import: the 销号状态 column is ignored.
    """
    calendar = _calendar(uow)
    now = now or utcnow()
    with uow:
        session = uow.session
        ledger = _ledger(session, ledger_id)
        kind = LedgerKind(ledger.kind)
        if actor.role not in MANAGERS:
            raise PermissionDenied("only a leader or an admin may import a workbook")
        sheet = workbook.read_sheet(data, kind)
        context = workbook.ImportContext(
            units=_unit_lookup(session),
            stages=list(ledger.stages or DEFAULT_STAGES),
            feedback_on=ledger.feedback_on,
            calendar=calendar,
        )
        rows = workbook.validate_rows(sheet, context)
        if not rows:
            raise InvalidInput("the workbook has no data rows", field="file")
        created_groups, created_items = _write_rows(session, actor, ledger, rows, now)
        _audit(
            session,
            actor,
            "ledger.import",
            "ledger",
            ledger.id,
            {"rows": len(rows), "groups": created_groups, "items": created_items},
        )
        ledger.updated_at = now
        _flush(session, "the ledger")
        report = ImportReport(
            ledger_id=ledger.id,
            rows=len(rows),
            groups_created=created_groups,
            items_created=created_items,
        )
        uow.commit()
    return report


def _write_rows(
    session: Session,
    actor: Actor,
    ledger: Ledger,
    rows: Sequence[workbook.ValidRow],
    now: dt.datetime,
) -> tuple[int, int]:
    existing: dict[tuple[int | None, workbook.GroupKey], LedgerGroup] = {}
    positions: dict[int | None, int] = {}
    item_positions: dict[int, int] = {}
    for group in session.scalars(select(LedgerGroup).where(LedgerGroup.ledger_id == ledger.id)):
        key = workbook.GroupKey(group.title, group.held_on, group.place, group.inspector)
        existing[(group.parent_id, key)] = group
        positions[group.parent_id] = max(positions.get(group.parent_id, 0), group.position)
    for group_id, position in session.execute(
        select(LedgerItem.group_id, func.max(LedgerItem.position))
        .where(LedgerItem.ledger_id == ledger.id)
        .group_by(LedgerItem.group_id)
    ):
        item_positions[group_id] = int(position or 0)
    groups_created = items_created = 0
    for row in rows:
        parent_id: int | None = None
        for level, key in enumerate(row.groups, start=1):
            found = existing.get((parent_id, key))
            if found is not None:
                group = found
            else:
                positions[parent_id] = positions.get(parent_id, 0) + 1
                group = LedgerGroup(
                    ledger_id=ledger.id,
                    parent_id=parent_id,
                    level=level,
                    position=positions[parent_id],
                    title=key.title,
                    held_on=key.held_on,
                    place=key.place,
                    inspector=key.inspector,
                    note="",
                    created_at=now,
                )
                session.add(group)
                session.flush()
                existing[(parent_id, key)] = group
                groups_created += 1
            parent_id = group.id
        if row.item is None:
            continue
        assert parent_id is not None
        values = row.item
        item_positions[parent_id] = item_positions.get(parent_id, 0) + 1
        item = LedgerItem(
            ledger_id=ledger.id,
            group_id=parent_id,
            position=item_positions[parent_id],
            content=values.content,
            responsible_leader=values.responsible_leader,
            unit_id=values.unit_id,
            co_units=values.co_units,
            responsible_person=values.responsible_person,
            deadline_text=values.deadline_text,
            due_on=values.due_on,
            due_at=values.due_at,
            stage=values.stage,
            status=values.status.value,
            signoff_state=SignoffState.OPEN.value,
            completion=values.completion,
            hazard_class=values.hazard_class,
            hazard_level=values.hazard_level
            or ("一般" if ledger.kind == LedgerKind.HAZARD.value else ""),
            location=values.location,
            created_at=now,
            updated_at=now,
        )
        session.add(item)
        session.flush()
        _event(
            session,
            actor,
            item,
            action="create",
            from_state=None,
            from_status=None,
            at=now,
            detail={"import_row": row.row},
        )
        items_created += 1
    return groups_created, items_created


def ledger_snapshot(uow: UnitOfWork, actor: Actor, ledger_id: int) -> LedgerSnapshot:
    """The pure snapshot of a ledger as ``actor`` may see it (for callers that render)."""
    with uow.read():
        session = uow.session
        ledger = _visible_ledger(session, actor, ledger_id)
        return _snapshot(session, ledger, actor)
