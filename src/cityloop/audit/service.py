"""Write and read audit rows. ``record`` joins the caller's transaction; it never commits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.audit.models import AuditEntry
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.org.domain import Actor


def record(
    session: Session,
    actor: Actor,
    *,
    action: str,
    entity: str,
    entity_id: object,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=utcnow(),
        actor_user_id=actor.user_id,
        actor_username=actor.username,
        actor_role=actor.role.value,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        detail=detail or {},
    )
    session.add(entry)
    return entry


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    actor_username: str
    actor_role: str
    action: str
    entity: str
    entity_id: str
    detail: dict[str, Any]


def list_entries(
    uow: UnitOfWork, *, entity: str | None = None, entity_id: object | None = None, limit: int = 200
) -> list[AuditPublic]:
    with uow.read():
        stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if entity is not None:
            stmt = stmt.where(AuditEntry.entity == entity)
        if entity_id is not None:
            stmt = stmt.where(AuditEntry.entity_id == str(entity_id))
        return [AuditPublic.model_validate(row) for row in uow.session.scalars(stmt)]
