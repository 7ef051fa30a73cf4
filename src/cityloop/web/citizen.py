"""What a citizen may see of a case: built here, inside one read transaction, from the rows.

Case codes are a date and a serial, so anyone can guess them: the public view must be safe
for a stranger. It shows the class, the coarse status and the dated milestones, and nothing a
person wrote or is: no description, address, photos, reporter, staff names, reasons or
departments. The public map shows recent cases with their class and status only, at a
rounded position (three decimals, about 100 m) so a report made at home does not pin the home.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select

from cityloop.cases.domain import CaseAction, CaseState
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import case_by_code
from cityloop.catalog.models import MinorClass
from cityloop.db.uow import UnitOfWork
from cityloop.errors import NotFound
from cityloop.web.labels import PUBLIC_MILESTONE

_CODE_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
PUBLIC_DECIMALS = 3  # ~100 m


@dataclass(frozen=True)
class Milestone:
    at: dt.datetime
    action: CaseAction


@dataclass(frozen=True)
class CitizenCase:
    code: str
    state: CaseState
    family: str | None
    class_name: str | None
    reported_at: dt.datetime
    closed_at: dt.datetime | None
    milestones: list[Milestone]


@dataclass(frozen=True)
class PublicPoint:
    lon: float
    lat: float
    state: CaseState
    family: str | None
    class_name: str | None
    reported_on: dt.date


def normalise_code(code: str) -> str:
    code = code.strip().upper()
    if not _CODE_RE.match(code):
        raise NotFound("no case with this code", field="code")
    return code


def citizen_case(uow: UnitOfWork, code: str) -> CitizenCase:
    code = normalise_code(code)
    with uow.read():
        session = uow.session
        case = case_by_code(session, code)
        minor = session.get(MinorClass, case.minor_id) if case.minor_id else None
        rows = session.execute(
            select(CaseEvent.at, CaseEvent.action)
            .where(CaseEvent.case_id == case.id)
            .order_by(CaseEvent.id)
        ).all()
        milestones = [
            Milestone(at=at, action=CaseAction(action))
            for at, action in rows
            if action in PUBLIC_MILESTONE
        ]
        return CitizenCase(
            code=case.code,
            state=CaseState(case.state),
            family=case.family,
            class_name=minor.name if minor else None,
            reported_at=case.reported_at,
            closed_at=case.closed_at,
            milestones=milestones,
        )


def recent_points(
    uow: UnitOfWork, *, since: dt.datetime, limit: int, local_zone: dt.tzinfo
) -> list[PublicPoint]:
    """Recent located cases, newest first, for the public map."""
    with uow.read():
        stmt = (
            select(Case.lon, Case.lat, Case.state, Case.family, MinorClass.name, Case.reported_at)
            .outerjoin(MinorClass, MinorClass.id == Case.minor_id)
            .where(Case.reported_at >= since, Case.lon.is_not(None), Case.lat.is_not(None))
            .order_by(Case.reported_at.desc())
            .limit(limit)
        )
        return [
            PublicPoint(
                lon=round(lon, PUBLIC_DECIMALS),
                lat=round(lat, PUBLIC_DECIMALS),
                state=CaseState(state),
                family=family,
                class_name=name,
                reported_on=reported_at.astimezone(local_zone).date(),
            )
            for lon, lat, state, family, name, reported_at in uow.session.execute(stmt)
            if lon is not None and lat is not None
        ]
