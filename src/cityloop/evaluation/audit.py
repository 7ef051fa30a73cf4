"""双随机 audits: random cases, random auditors, recorded with the seed, outcomes into the KPIs.

"Double random" means both the items inspected and the inspectors are chosen by chance, and the
results are published. Here:

* the items: for each handling department, ``cases_per_department`` of the cases whose closing
  event (结案) fell in the month, picked by ``domain.draw_cases`` (SHA-256 keyed by the seed);
* the inspectors: for each picked case, one active user of an eligible role, picked by
  ``domain.pick_auditor`` among those who never acted on the case (no event of theirs on it, not
  its reporter, not its assigned inspector): nobody audits their own work;
* the record: the draw's seed, time, drawer and the rules in force are stored, so anyone can
  recompute the draw from the published seed and see that nobody steered it.

Outcomes (pass, or fail with a reason) are entered by the assigned auditor and feed the
department's 抽查通过率 and, if configured, a deduction from its composite index.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.audit.service import record
from cityloop.cases.domain import CaseAction
from cityloop.cases.models import Case, CaseEvent
from cityloop.cityconfig.service import load as load_setting
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from cityloop.evaluation import domain
from cityloop.evaluation.config import SETTINGS_KEY, EvaluationSettings
from cityloop.evaluation.domain import fmt_pct, ratio
from cityloop.evaluation.models import AuditDraw, AuditItem
from cityloop.evaluation.schemas import (
    AuditDepartmentSummary,
    AuditDrawPublic,
    AuditItemPublic,
)
from cityloop.org.domain import Actor, DepartmentKind, Role
from cityloop.org.models import Department, User
from cityloop.org.service import require_role

DRAW_ROLES = (Role.ADMIN, Role.LEADER)


def involved_users(session: Session, case_id: int) -> set[int]:
    """Everyone who acted on the case: any event's actor, the reporter, the assigned inspector."""
    users = {
        u
        for u in session.scalars(
            select(CaseEvent.actor_user_id).where(CaseEvent.case_id == case_id)
        )
        if u is not None
    }
    case = session.get(Case, case_id)
    if case is not None:
        users |= {u for u in (case.reporter_user_id, case.inspector_id) if u is not None}
    return users


def _closed_in(session: Session, start: dt.datetime, end: dt.datetime) -> dict[int, list[int]]:
    """Handling department id → ids of cases whose close event falls in [start, end)."""
    handling = set(
        session.scalars(
            select(Department.id).where(Department.kind == DepartmentKind.HANDLING.value)
        )
    )
    rows = session.execute(
        select(CaseEvent.case_id, CaseEvent.department_id).where(
            CaseEvent.action == CaseAction.CLOSE.value,
            CaseEvent.at >= start,
            CaseEvent.at < end,
        )
    ).all()
    by_dept: dict[int, list[int]] = defaultdict(list)
    for case_id, dept in rows:
        if dept is not None and dept in handling:
            by_dept[int(dept)].append(int(case_id))
    return dict(by_dept)


def draw(
    uow: UnitOfWork,
    actor: Actor,
    month: str,
    *,
    seed: int | None = None,
    now: dt.datetime | None = None,
) -> AuditDrawPublic:
    """Draw the month's audit sample; a missing seed is taken from the OS's secure random."""
    require_role(actor, *DRAW_ROLES)
    now = now or utcnow()
    if seed is None:
        seed = secrets.randbits(62)
    if seed < 0:
        raise InvalidInput("the seed must not be negative", field="seed")
    month = domain.parse_month_label(month)
    with uow:
        session = uow.session
        settings = load_setting(session, SETTINGS_KEY, EvaluationSettings)
        period = domain.month_period(month, settings.timezone)
        if period.end > now:
            raise InvalidInput(
                f"month {month} has not ended yet; draw its audits after {period.end:%Y-%m-%d}",
                field="month",
            )
        k = settings.audit.cases_per_department
        roles = [r.value for r in settings.audit.auditor_roles]
        eligible = sorted(
            session.scalars(select(User.id).where(User.active.is_(True), User.role.in_(roles)))
        )
        pools = _closed_in(session, period.start, period.end)
        draw_row = AuditDraw(
            month=period.label,
            seed=seed,
            drawn_at=now,
            drawn_by_user_id=actor.user_id,
            cases_per_department=k,
            detail={
                "auditor_roles": roles,
                "eligible_user_ids": eligible,
                "pool_sizes": {str(d): len(ids) for d, ids in sorted(pools.items())},
                "method": "sha256(seed:case:dept:case_id) smallest k; "
                "sha256(seed:auditor:case_id:user_id) smallest among uninvolved",
            },
        )
        session.add(draw_row)
        session.flush()
        for dept_id in sorted(pools):
            for case_id in domain.draw_cases(seed, dept_id, pools[dept_id], k):
                auditor = domain.pick_auditor(
                    seed, case_id, eligible, involved_users(session, case_id)
                )
                session.add(
                    AuditItem(
                        draw_id=draw_row.id,
                        case_id=case_id,
                        department_id=dept_id,
                        auditor_user_id=auditor,
                    )
                )
        session.flush()
        record(
            session,
            actor,
            action="evaluation.audit_draw",
            entity="evaluation_audit_draw",
            entity_id=draw_row.id,
            detail={"month": period.label, "seed": seed, "k": k},
        )
        result = _draw_public(session, draw_row)
        uow.commit()
        return result


def decide(
    uow: UnitOfWork,
    actor: Actor,
    item_id: int,
    outcome: str,
    reason: str | None,
    *,
    now: dt.datetime | None = None,
) -> AuditItemPublic:
    """Record pass/fail for one drawn case. Only its assigned auditor may, once; fail needs why."""
    now = now or utcnow()
    if outcome not in ("pass", "fail"):
        raise InvalidInput("the outcome is 'pass' or 'fail'", field="outcome")
    reason = (reason or "").strip() or None
    if outcome == "fail" and reason is None:
        raise InvalidInput("a failed audit needs a reason", field="reason")
    with uow:
        session = uow.session
        item = session.get(AuditItem, item_id)
        if item is None:
            raise NotFound(f"no audit item {item_id}", field="item_id")
        if item.auditor_user_id is None or item.auditor_user_id != actor.user_id:
            raise PermissionDenied(
                f"audit item {item_id} is assigned to another auditor", field="auditor"
            )
        if item.outcome is not None:
            raise Conflict(f"audit item {item_id} was already decided ({item.outcome})")
        if actor.user_id in involved_users(session, item.case_id):
            raise PermissionDenied(
                f"you acted on case {item.case_id} since the draw, so you may not audit it",
                field="case",
            )
        item.outcome = outcome
        item.reason = reason
        item.decided_at = now
        record(
            session,
            actor,
            action="evaluation.audit_decide",
            entity="evaluation_audit_item",
            entity_id=item.id,
            detail={"outcome": outcome, "reason": reason},
        )
        session.flush()
        result = _item_public(session, item)
        uow.commit()
        return result


def _names(
    session: Session, case_ids: list[int]
) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    depts = {d.id: d.name for d in session.scalars(select(Department))}
    users = {u.id: u.display_name for u in session.scalars(select(User))}
    codes = {
        int(i): str(c)
        for i, c in session.execute(select(Case.id, Case.code).where(Case.id.in_(case_ids)))
    }
    return depts, users, codes


def _item_public(
    session: Session,
    item: AuditItem,
    names: tuple[dict[int, str], dict[int, str], dict[int, str]] | None = None,
) -> AuditItemPublic:
    if names is None:
        case = session.get(Case, item.case_id)
        dept = session.get(Department, item.department_id)
        user = session.get(User, item.auditor_user_id) if item.auditor_user_id else None
        code = case.code if case else str(item.case_id)
        dept_name = dept.name if dept else str(item.department_id)
        auditor_name = user.display_name if user else None
    else:
        depts, users, codes = names
        code = codes.get(item.case_id, str(item.case_id))
        dept_name = depts.get(item.department_id, str(item.department_id))
        auditor_name = users.get(item.auditor_user_id) if item.auditor_user_id else None
    return AuditItemPublic(
        id=item.id,
        draw_id=item.draw_id,
        case_id=item.case_id,
        case_code=code,
        department_id=item.department_id,
        department_name=dept_name,
        auditor_user_id=item.auditor_user_id,
        auditor_name=auditor_name,
        outcome=item.outcome,
        reason=item.reason,
        decided_at=item.decided_at,
    )


def _draw_public(session: Session, row: AuditDraw) -> AuditDrawPublic:
    items = session.scalars(
        select(AuditItem).where(AuditItem.draw_id == row.id).order_by(AuditItem.id)
    ).all()
    drawer = session.get(User, row.drawn_by_user_id) if row.drawn_by_user_id else None
    return AuditDrawPublic(
        id=row.id,
        month=row.month,
        seed=row.seed,
        drawn_at=row.drawn_at,
        drawn_by_user_id=row.drawn_by_user_id,
        drawn_by_name=drawer.display_name if drawer else None,
        cases_per_department=row.cases_per_department,
        items=[_item_public(session, i) for i in items],
    )


def draws_of(session: Session, month: str) -> list[AuditDrawPublic]:
    rows = session.scalars(
        select(AuditDraw).where(AuditDraw.month == month).order_by(AuditDraw.id)
    ).all()
    return [_draw_public(session, r) for r in rows]


def items_of(session: Session, month: str) -> list[AuditItemPublic]:
    """Every drawn item of the month's draws, by department then case code."""
    rows = session.scalars(
        select(AuditItem)
        .join(AuditDraw, AuditDraw.id == AuditItem.draw_id)
        .where(AuditDraw.month == month)
        .order_by(AuditItem.department_id, AuditItem.id)
    ).all()
    names = _names(session, [i.case_id for i in rows])
    items = [_item_public(session, i, names) for i in rows]
    return sorted(items, key=lambda i: (i.department_name, i.case_code, i.id))


def list_draws(uow: UnitOfWork, actor: Actor, month: str) -> list[AuditDrawPublic]:
    """A month's draws with their items (centre roles: the results are published)."""
    require_reader(actor)
    with uow.read():
        return draws_of(uow.session, domain.parse_month_label(month))


def my_items(uow: UnitOfWork, actor: Actor) -> list[AuditItemPublic]:
    """The audits assigned to ``actor`` that still wait for an outcome, with where to check
    them on site (address, cell, description): the auditor may have no access to the case."""
    with uow.read():
        session = uow.session
        rows = session.scalars(
            select(AuditItem)
            .where(AuditItem.auditor_user_id == actor.user_id, AuditItem.outcome.is_(None))
            .order_by(AuditItem.id)
        ).all()
        out: list[AuditItemPublic] = []
        for item in rows:
            public = _item_public(session, item)
            case = session.get(Case, item.case_id)
            if case is not None:  # where to check on site
                public.address = case.address
                public.cell_code = case.cell_code
                public.description = case.description
            out.append(public)
        return out


def require_reader(actor: Actor) -> None:
    """Evaluation results (KPIs, reports, audit draws) are for the citywide roles."""
    if not actor.is_citywide:
        raise PermissionDenied("evaluation results are for the centre's staff and leaders")


def summary(items: list[AuditItemPublic]) -> list[AuditDepartmentSummary]:
    """Per department: drawn, passed, failed, pending and 抽查通过率 = passed / decided."""
    groups: dict[int, list[AuditItemPublic]] = defaultdict(list)
    for item in items:
        groups[item.department_id].append(item)
    out: list[AuditDepartmentSummary] = []
    for dept_id, group in groups.items():
        passed = sum(1 for i in group if i.outcome == "pass")
        failed = sum(1 for i in group if i.outcome == "fail")
        rate = ratio(passed, passed + failed)
        out.append(
            AuditDepartmentSummary(
                department_id=dept_id,
                department_name=group[0].department_name,
                drawn=len(group),
                passed=passed,
                failed=failed,
                pending=len(group) - passed - failed,
                pass_rate=rate,
                pass_rate_display=fmt_pct(rate),
            )
        )
    return sorted(out, key=lambda s: (s.department_name, s.department_id))


__all__ = [
    "DRAW_ROLES",
    "decide",
    "draw",
    "draws_of",
    "involved_users",
    "items_of",
    "list_draws",
    "my_items",
    "require_reader",
    "summary",
]
