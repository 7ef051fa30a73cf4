"""Read and write a capability's settings model. Reading joins the caller's session."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from cityloop.audit.service import record
from cityloop.cityconfig.models import CitySetting
from cityloop.db import cache
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import InvalidInput
from cityloop.org.domain import Actor, Role
from cityloop.org.service import require_role

M = TypeVar("M", bound=BaseModel)


def load(session: Session, key: str, model: type[M]) -> M:
    """The stored settings merged over the model's defaults."""
    row = session.get(CitySetting, key)
    return model.model_validate(row.value if row is not None else {})


def get(uow: UnitOfWork, key: str, model: type[M]) -> M:
    with uow.read():
        return load(uow.session, key, model)


def put(uow: UnitOfWork, actor: Actor, key: str, model: type[M], value: dict[str, Any]) -> M:
    """Validate and store settings (admin only). Unknown or bad fields are named."""
    require_role(actor, Role.ADMIN)
    try:
        validated = model.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or key
        raise InvalidInput(f"{key}.{field}: {err['msg']}", field=field) from None
    with uow:
        session = uow.session
        row = session.get(CitySetting, key)
        stored = validated.model_dump(mode="json")
        if row is None:
            session.add(CitySetting(key=key, value=stored, updated_at=utcnow()))
        else:
            row.value = stored
            row.updated_at = utcnow()
        record(
            session, actor, action="config.put", entity="city_setting", entity_id=key, detail=stored
        )
        uow.commit()
    cache.bump("case_context")  # settings cached in this process are stale now
    return validated
