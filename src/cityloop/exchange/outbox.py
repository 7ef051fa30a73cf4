"""The outbox: case events waiting to be reported upward, written in the case's transaction.

``record`` is the hook the case loop calls right after it appended a case event. It adds one
row when the action is one a higher-level platform counts (file, dispatch, close) and nothing
otherwise, inside the caller's transaction: a committed case change always has its outbox row,
a refused or rolled-back one never has. The pusher sends the rows later and independently, so a
province that is down never slows or blocks the city's own loop.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case, CaseEvent
from cityloop.catalog.models import MinorClass
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.exchange.domain import OutboxKind, outbox_kind
from cityloop.exchange.models import OutboxEntry
from cityloop.org.models import Department


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def case_part(session: Session, case: Case, kind: OutboxKind, at: dt.datetime) -> dict[str, Any]:
    """The ``case`` object of the upward document (schemas.CaseDoc), as JSON values.

    Built from the row as it stands inside the transaction, so the document is the case exactly
    as this event left it. Reporter, description and address are never included.
    """
    minor_code = (
        session.scalar(select(MinorClass.code).where(MinorClass.id == case.minor_id))
        if case.minor_id is not None
        else None
    )
    dept_code = (
        session.scalar(select(Department.code).where(Department.id == case.department_id))
        if case.department_id is not None
        else None
    )
    location = (
        {"lon": case.lon, "lat": case.lat, "system": "wgs84", "cell_code": case.cell_code}
        if case.lon is not None and case.lat is not None
        else None
    )
    return {
        "code": case.code,
        "seq": case.version,
        "event": kind.value,
        "event_at": _iso(at),
        "state": case.state,
        "channel": case.channel,
        "family": case.family,
        "minor_code": minor_code,
        "department_code": dept_code,
        "reported_at": _iso(case.reported_at),
        "filed_at": _iso(case.filed_at),
        "dispatched_at": _iso(case.dispatched_at),
        "disposal_deadline": _iso(case.disposal_deadline),
        "disposed_at": _iso(case.disposed_at),
        "closed_at": _iso(case.closed_at),
        "location": location,
    }


def record(session: Session, case: Case, event: CaseEvent) -> OutboxEntry | None:
    """Queue ``event`` for the higher-level platform when it is a filing, a dispatch or a
    closing; do nothing otherwise. Never commits (the caller's transaction decides).

    Call it after the event row was added (the event needs its id, so this flushes) and after
    the case row carries its new state and version.
    """
    kind = outbox_kind(event.action)
    if kind is None:
        return None
    if event.id is None:
        session.flush()
    created = utcnow()
    # The case's version after this change: the ORM bumps it at flush, so read it flushed.
    entry = OutboxEntry(
        case_id=case.id,
        event_id=event.id,
        case_code=case.code,
        kind=kind.value,
        seq=case.version,
        payload=case_part(session, case, kind, event.at),
        state="pending",
        attempts=0,
        # Due at once (an event stamped in the future, as tests do, must not wait for it).
        next_attempt_at=min(event.at, created) if event.at is not None else created,
        created_at=created,
    )
    session.add(entry)
    session.flush()
    return entry


def pending_count(uow: UnitOfWork) -> int:
    with uow.read():
        return int(
            uow.session.scalar(
                select(func.count()).select_from(OutboxEntry).where(OutboxEntry.state == "pending")
            )
            or 0
        )
