"""HTTP routes of the working calendar: deadlines for anyone logged in, overrides for admins."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from cityloop.cases.service import recompute_open_deadlines
from cityloop.errors import InvalidInput
from cityloop.web.deps import CurrentActor, UowDep
from cityloop.workcal import service
from cityloop.workcal.domain import parse_time_limit
from cityloop.workcal.schemas import (
    CoveredYearCreate,
    CoveredYearPublic,
    OverrideCreate,
    OverridePublic,
    SchedulePublic,
    ScheduleUpdate,
)

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"])

# A stored deadline is a cache of the calendar: every change to the calendar below is followed
# by recomputing the running deadlines (cases.service.recompute_open_deadlines).


class DeadlineAnswer(BaseModel):
    start: dt.datetime
    limit: str
    deadline: dt.datetime
    deadline_local: str


@router.get("/deadline", response_model=DeadlineAnswer)
def deadline(
    uow: UowDep,
    _actor: CurrentActor,
    start: Annotated[
        dt.datetime, Query(description="ISO 8601 with offset, e.g. 2026-09-30T17:00+08:00")
    ],
    limit: Annotated[str, Query(description="A written limit such as 2工作日 or 4小时")],
) -> DeadlineAnswer:
    if start.tzinfo is None:
        raise InvalidInput("start needs a timezone offset (e.g. +08:00)", field="start")
    calendar = service.load_calendar(uow)
    due = calendar.deadline(start, parse_time_limit(limit))
    return DeadlineAnswer(
        start=start,
        limit=limit,
        deadline=due,
        deadline_local=calendar.to_local(due).strftime("%Y-%m-%d %H:%M"),
    )


@router.get("/overrides", response_model=list[OverridePublic])
def list_overrides(
    uow: UowDep, _actor: CurrentActor, year: int | None = None
) -> list[OverridePublic]:
    return service.list_overrides(uow, year=year)


@router.post("/overrides", response_model=OverridePublic, status_code=201)
def add_override(uow: UowDep, actor: CurrentActor, data: OverrideCreate) -> OverridePublic:
    created = service.add_override(uow, actor, day=data.day, kind=data.kind, note=data.note)
    recompute_open_deadlines(uow, actor)
    return created


@router.delete("/overrides/{day}", response_model=OverridePublic)
def remove_override(uow: UowDep, actor: CurrentActor, day: dt.date) -> OverridePublic:
    removed = service.remove_override(uow, actor, day=day)
    recompute_open_deadlines(uow, actor)
    return removed


@router.get("/years", response_model=list[CoveredYearPublic])
def list_years(uow: UowDep, _actor: CurrentActor) -> list[CoveredYearPublic]:
    return service.list_covered_years(uow)


@router.post("/years", response_model=CoveredYearPublic, status_code=201)
def add_year(uow: UowDep, actor: CurrentActor, data: CoveredYearCreate) -> CoveredYearPublic:
    added = service.add_covered_year(uow, actor, year=data.year, note=data.note)
    recompute_open_deadlines(uow, actor)
    return added


@router.get("/schedule", response_model=SchedulePublic)
def get_schedule(uow: UowDep, _actor: CurrentActor) -> SchedulePublic:
    return service.get_schedule(uow)


@router.put("/schedule", response_model=SchedulePublic)
def set_schedule(uow: UowDep, actor: CurrentActor, data: ScheduleUpdate) -> SchedulePublic:
    schedule = service.set_schedule(
        uow, actor, timezone=data.timezone, periods=[(p.start, p.end) for p in data.periods]
    )
    recompute_open_deadlines(uow, actor)
    return schedule
