"""Request and response shapes of the case loop (CaseCreate / CaseAction / CasePublic ...)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityloop.cases.domain import CaseAction, CaseState, Channel, Satisfaction, Step
from cityloop.grid.coords import CoordSystem
from cityloop.workcal.domain import Light

MAX_DESCRIPTION = 2000


class Location(BaseModel):
    """A point as the reporter gave it. Every coordinate states its system; storage is WGS-84."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    system: CoordSystem = Field(description="WGS84, GCJ02, BD09 or CGCS2000")


class Reporter(BaseModel):
    """Private contact details: never shown to departments or in public output."""

    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+\- ]{3,32}$")
    email: str | None = Field(default=None, max_length=128, pattern=r"^[^@\s]+@[^@\s]+$")


class CaseCreate(BaseModel):
    channel: Channel
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    family: str | None = Field(default=None, pattern="^(component|event)$")
    minor_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    standard_id: int | None = None
    location: Location | None = None
    address: str | None = Field(default=None, max_length=255)
    reporter: Reporter | None = None
    external_id: str | None = Field(default=None, max_length=128)
    component_code: str | None = Field(default=None, pattern=r"^\d{16}$")
    attachment_ids: list[int] = Field(default_factory=list, max_length=3)

    @field_validator("description")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the description is empty")
        return value

    @model_validator(mode="after")
    def _where(self) -> CaseCreate:
        if self.location is None and not (self.address and self.address.strip()):
            raise ValueError("give a location (lon, lat, system) or an address")
        if self.minor_code is not None and self.family is None:
            raise ValueError("minor_code needs family (component or event)")
        return self


class CaseActionRequest(BaseModel):
    action: CaseAction
    version: int = Field(ge=1, description="The case version you read; stale versions get 409.")
    reason: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    department_code: str | None = None  # dispatch
    inspector: str | None = None  # send_verify / send_check: username of the inspector
    standard_id: int | None = None  # file: the filing-standard row
    satisfaction: Satisfaction | None = None  # callback
    attachment_ids: list[int] = Field(default_factory=list, max_length=20)


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    actor_name: str
    actor_role: str | None
    action: str
    from_state: str | None
    to_state: str
    reason: str | None
    department_id: int | None
    step: str | None
    deadline: dt.datetime | None
    detail: dict[str, Any]
    attachment_ids: list[int] = Field(default_factory=list)


class AttachmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int | None
    stage: str
    filename: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    created_at: dt.datetime


class CasePublic(BaseModel):
    """A case as staff see it. ``reporter`` is present only for centre roles."""

    id: int
    code: str
    version: int
    status: CaseState
    status_label: str
    channel: Channel
    family: str | None
    minor_code: str | None
    minor_name: str | None
    standard_id: int | None
    description: str
    address: str | None
    lon: float | None
    lat: float | None
    cell_code: str | None
    outside_jurisdiction: bool
    department_id: int | None
    department_name: str | None
    suggested_department_id: int | None
    inspector_id: int | None
    priority: int
    step: Step | None
    step_limit: str | None
    step_deadline: dt.datetime | None
    light: Light | None
    disposal_deadline: dt.datetime | None
    reported_at: dt.datetime
    filed_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    disposed_at: dt.datetime | None
    closed_at: dt.datetime | None
    extension_count: int
    suspend_count: int
    rework_count: int
    return_count: int
    urge_count: int
    satisfaction: Satisfaction | None
    allowed_actions: list[CaseAction]
    reporter: Reporter | None = None


class CasePage(BaseModel):
    items: list[CasePublic]
    total: int
    page: int
    page_size: int


class InboxItem(BaseModel):
    id: int
    code: str
    version: int
    status: CaseState
    status_label: str
    description: str
    step: Step | None
    step_deadline: dt.datetime | None
    light: Light | None
    priority: int
    allowed_actions: list[CaseAction]


class CaseFilters(BaseModel):
    status: list[CaseState] | None = None
    department_code: str | None = None
    family: str | None = None
    minor_code: str | None = None
    channel: Channel | None = None
    overdue: bool | None = None
    reported_from: dt.datetime | None = None
    reported_to: dt.datetime | None = None
    q: str | None = Field(default=None, max_length=100)
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=50, ge=1, le=500)
