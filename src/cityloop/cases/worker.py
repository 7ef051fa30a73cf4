"""The overdue worker: marks yellow and red steps, escalates, notifies.

Each due row is claimed with a conditional UPDATE (``... WHERE step_overdue = false``) inside the
transaction that also writes its event, so two workers running at once never act twice on the
same step: the loser's UPDATE matches no row. Claims do not bump the case version: a worker
marking a light must not make a person's pending action fail with 409.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import select, update

from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.notify import LogNotifier, Notification, Notifier
from cityloop.cases.settings import SETTINGS_KEY, CaseSettings
from cityloop.cityconfig.service import load as load_setting
from cityloop.db.base import utcnow
from cityloop.db.engine import Database
from cityloop.exchange import pusher as exchange_pusher

log = logging.getLogger("cityloop.worker")


@dataclass
class RunReport:
    warned: list[str] = field(default_factory=list)  # case codes turned yellow
    overdue: list[str] = field(default_factory=list)  # case codes turned red
    urged: list[str] = field(default_factory=list)


def _system_event(case: Case, action: str, now: dt.datetime, reason: str) -> CaseEvent:
    return CaseEvent(
        case_id=case.id,
        at=now,
        actor_user_id=None,
        actor_name="system",
        actor_role=None,
        action=action,
        from_state=case.state,
        to_state=case.state,
        reason=reason,
        department_id=case.department_id,
        step=case.step,
        deadline=case.step_deadline,
        detail={"step": case.step},
    )


def run_once(
    database: Database,
    notifier: Notifier | None = None,
    *,
    now: dt.datetime | None = None,
    batch: int = 500,
) -> RunReport:
    """One pass over due rows. Safe to run from several processes at once."""
    notifier = notifier or LogNotifier()
    now = now or utcnow()
    report = RunReport()
    uow = database.uow()
    with uow.read():
        settings = load_setting(uow.session, SETTINGS_KEY, CaseSettings)
        red_ids = list(
            uow.session.scalars(
                select(Case.id)
                .where(Case.step_overdue.is_(False), Case.step_deadline <= now)
                .order_by(Case.step_deadline)
                .limit(batch)
            )
        )
        yellow_ids = list(
            uow.session.scalars(
                select(Case.id)
                .where(
                    Case.step_warned.is_(False),
                    Case.step_overdue.is_(False),
                    Case.step_warn_at <= now,
                )
                .order_by(Case.step_warn_at)
                .limit(batch)
            )
        )
    for case_id in red_ids:
        uow = database.uow()
        with uow:
            session = uow.session
            result = session.execute(
                update(Case)
                .where(
                    Case.id == case_id,
                    Case.step_overdue.is_(False),
                    Case.step_deadline.is_not(None),
                    Case.step_deadline <= now,
                )
                .values(step_overdue=True, step_warned=True),
                execution_options={"synchronize_session": False},
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another worker claimed it, or the case moved on
            case = session.get(Case, case_id)
            assert case is not None
            session.add(_system_event(case, "mark_overdue", now, f"step {case.step} overdue"))
            urged = False
            if settings.auto_urge_at_red:
                session.execute(
                    update(Case)
                    .where(Case.id == case_id)
                    .values(urge_count=Case.urge_count + 1, priority=Case.priority + 1),
                    execution_options={"synchronize_session": False},
                )
                session.add(_system_event(case, "urge", now, "automatic urge: step overdue"))
                urged = True
            note = _note(case, "overdue")
            uow.commit()
        report.overdue.append(note.case_code)
        notifier.notify(note)
        if urged:
            report.urged.append(note.case_code)
            notifier.notify(_note(case, "urge"))
    for case_id in yellow_ids:
        uow = database.uow()
        with uow:
            session = uow.session
            result = session.execute(
                update(Case)
                .where(
                    Case.id == case_id,
                    Case.step_warned.is_(False),
                    Case.step_warn_at.is_not(None),
                    Case.step_warn_at <= now,
                )
                .values(step_warned=True),
                execution_options={"synchronize_session": False},
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue
            case = session.get(Case, case_id)
            assert case is not None
            session.add(_system_event(case, "mark_warning", now, f"step {case.step} at 80 %"))
            note = _note(case, "warning")
            uow.commit()
        report.warned.append(note.case_code)
        notifier.notify(note)
    return report


def _note(case: Case, kind: str) -> Notification:
    return Notification(
        kind=kind,
        case_id=case.id,
        case_code=case.code,
        state=case.state,
        step=case.step,
        deadline=case.step_deadline,
        department_id=case.department_id,
    )


def run_forever(database: Database, notifier: Notifier, *, interval: float = 30.0) -> None:
    while True:
        report = run_once(database, notifier)
        if report.overdue or report.warned:
            log.info("worker: %d overdue, %d warned", len(report.overdue), len(report.warned))
        # Upward exchange: never raises, and does nothing while no endpoint is configured.
        exchange_pusher.push_due(database)
        time.sleep(interval)
