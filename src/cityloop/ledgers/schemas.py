"""Request and response shapes of the ledgers API (``XCreate / XUpdate / XPublic``)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cityloop.ledgers.domain import (
    ItemStatus,
    LedgerKind,
    SignoffAction,
    SignoffState,
    check_stages,
)


class TextBlockSchema(BaseModel):
    """A bulletin paragraph with its lead-in heading ("统一思想认识" + text)."""

    heading: str = Field(default="", max_length=100)
    text: str = Field(default="", max_length=4000)


class LedgerFields(BaseModel):
    """Header fields shared by create and update. Dates are local calendar dates."""

    subject: str = Field(
        default="", max_length=200, description="被巡察单位, e.g. 区城市管理委党组"
    )
    authority: str = Field(default="", max_length=200, description="统一部署: e.g. 海淀区委")
    inspection_group: str = Field(default="", max_length=200, description="e.g. 区委第四巡察组")
    onsite_start: dt.date | None = None
    onsite_end: dt.date | None = None
    feedback_on: dt.date | None = None
    bulletin_title: str = Field(default="", max_length=300)
    organisation: list[TextBlockSchema] = Field(default_factory=list, max_length=30)
    next_steps: list[TextBlockSchema] = Field(default_factory=list, max_length=30)
    as_of: dt.date | None = Field(default=None, description="截至: the date the counts are for")
    issuer: str = Field(default="", max_length=200, description="落款")
    issued_on: dt.date | None = None
    contact_phone: str = Field(default="", max_length=64)
    contact_mailbox: str = Field(default="", max_length=300, description="邮政信箱 (address)")
    contact_postcode: str = Field(default="", max_length=16)
    contact_email: str = Field(default="", max_length=128)


class LedgerCreate(LedgerFields):
    kind: LedgerKind
    title: str = Field(min_length=1, max_length=200)
    stages: list[str] | None = Field(
        default=None, description="Stage names; default 前期准备, 全面推进, 总结评估."
    )

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(check_stages(value))


class LedgerUpdate(BaseModel):
    """Only the fields sent are changed (``model_dump(exclude_unset=True)``)."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    subject: str | None = Field(default=None, max_length=200)
    authority: str | None = Field(default=None, max_length=200)
    inspection_group: str | None = Field(default=None, max_length=200)
    onsite_start: dt.date | None = None
    onsite_end: dt.date | None = None
    feedback_on: dt.date | None = None
    stages: list[str] | None = None
    bulletin_title: str | None = Field(default=None, max_length=300)
    organisation: list[TextBlockSchema] | None = Field(default=None, max_length=30)
    next_steps: list[TextBlockSchema] | None = Field(default=None, max_length=30)
    as_of: dt.date | None = None
    issuer: str | None = Field(default=None, max_length=200)
    issued_on: dt.date | None = None
    contact_phone: str | None = Field(default=None, max_length=64)
    contact_mailbox: str | None = Field(default=None, max_length=300)
    contact_postcode: str | None = Field(default=None, max_length=16)
    contact_email: str | None = Field(default=None, max_length=128)
    expected_version: int | None = Field(
        default=None, description="Refuse with 409 if the ledger changed since this version."
    )

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(check_stages(value))


class LedgerPublic(LedgerFields):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: LedgerKind
    title: str
    stages: list[str]
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class LedgerSummary(BaseModel):
    id: int
    kind: LedgerKind
    title: str
    items: int
    signed_off: int
    overdue: int


class GroupCreate(BaseModel):
    """A 方面 (no parent), a 问题 (parent = its 方面), an inspection or a section."""

    title: str = Field(min_length=1, max_length=1000)
    parent_id: int | None = None
    held_on: dt.date | None = Field(default=None, description="Hazard inspection: date held.")
    place: str = Field(default="", max_length=200, description="Place or enterprise inspected.")
    inspector: str = Field(default="", max_length=64)
    note: str = Field(default="", max_length=4000)


class GroupPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ledger_id: int
    parent_id: int | None
    level: int
    position: int
    title: str
    held_on: dt.date | None
    place: str
    inspector: str
    note: str


class ItemFieldsMixin(BaseModel):
    responsible_leader: str = Field(default="", max_length=64)
    unit_id: int | None = Field(default=None, description="Responsible unit (department id).")
    co_units: str = Field(default="", max_length=200, description="配合单位, free text.")
    responsible_person: str = Field(default="", max_length=64)
    deadline: str = Field(
        default="", max_length=64, description="整改时限: 2023年6月30日, 30个工作日, 长期坚持…"
    )
    stage: str = Field(default="", max_length=32)
    completion: str = Field(default="", max_length=8000, description="完成情况")
    hazard_class: str = Field(default="", max_length=64)
    hazard_level: str = Field(default="", max_length=16)
    location: str = Field(default="", max_length=200)


class ItemCreate(ItemFieldsMixin):
    group_id: int
    content: str = Field(min_length=1, max_length=4000)
    status: ItemStatus | None = Field(
        default=None, description="Default: long_term for a 长期 deadline, else not_started."
    )


class ItemUpdate(BaseModel):
    """Only the fields sent are changed. Operators of the unit may send only ``completion``
    and ``status``."""

    content: str | None = Field(default=None, min_length=1, max_length=4000)
    responsible_leader: str | None = Field(default=None, max_length=64)
    unit_id: int | None = None
    co_units: str | None = Field(default=None, max_length=200)
    responsible_person: str | None = Field(default=None, max_length=64)
    deadline: str | None = Field(default=None, max_length=64)
    stage: str | None = Field(default=None, max_length=32)
    status: ItemStatus | None = None
    completion: str | None = Field(default=None, max_length=8000)
    hazard_class: str | None = Field(default=None, max_length=64)
    hazard_level: str | None = Field(default=None, max_length=16)
    location: str | None = Field(default=None, max_length=200)
    expected_version: int | None = None


class ItemPublic(BaseModel):
    id: int
    ledger_id: int
    group_id: int
    position: int
    content: str
    responsible_leader: str
    unit_id: int | None
    unit_name: str
    co_units: str
    responsible_person: str
    deadline_text: str
    due_on: dt.date | None
    due_at: dt.datetime | None
    stage: str
    status: ItemStatus
    status_label: str
    signoff_state: SignoffState
    state_label: str
    completion: str
    hazard_class: str
    hazard_level: str
    location: str
    relapse_count: int
    last_reason: str
    signed_off_at: dt.datetime | None
    overdue: bool
    version: int


class EvidencePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item_id: int
    progress_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: dt.datetime
    uploaded_by: str


class ProgressPublic(BaseModel):
    id: int
    item_id: int
    at: dt.datetime
    actor_username: str
    text: str
    status_after: ItemStatus | None
    evidence: list[EvidencePublic]


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item_id: int
    at: dt.datetime
    actor_username: str
    actor_role: str
    action: str
    from_state: str | None
    to_state: str
    from_status: str | None
    to_status: str
    reason: str


class ItemDetail(BaseModel):
    item: ItemPublic
    events: list[EventPublic]
    progress: list[ProgressPublic]
    allowed_actions: list[SignoffAction]


class GroupNode(BaseModel):
    group: GroupPublic
    number: str  # 一、 / （一） as the documents number it
    children: list[GroupNode]
    items: list[ItemPublic]


class LedgerDetail(BaseModel):
    ledger: LedgerPublic
    groups: list[GroupNode]


class ActionRequest(BaseModel):
    reason: str = Field(default="", max_length=1000)
    expected_version: int | None = None


class ProgressRowPublic(BaseModel):
    key: str
    label: str
    items: int
    signed_off: int
    remaining: int
    pending: int
    overdue: int
    relapsed_now: int
    relapses: int
    groups: int
    groups_done: int
    signoff_rate: str


class TotalsPublic(BaseModel):
    groups_top: int
    groups_leaf: int
    groups_done: int
    groups_remaining: int
    items: int
    signed_off: int
    pending: int
    overdue: int
    relapsed_now: int
    relapses: int
    items_relapsed: int
    signoff_rate: str
    relapse_rate: str
    by_status: dict[str, int]
    by_state: dict[str, int]


class HazardStatsPublic(BaseModel):
    since: dt.date | None
    inspections: int
    found: int
    rectified: int
    rate: str
    by_level: dict[str, int]
    sentence: str


class StatsPublic(BaseModel):
    ledger_id: int
    kind: LedgerKind
    totals: TotalsPublic
    by_group: list[ProgressRowPublic]
    by_unit: list[ProgressRowPublic]
    by_stage: list[ProgressRowPublic]
    counts_sentence: str
    hazard: HazardStatsPublic | None = None


class TimelinePointPublic(BaseModel):
    day: dt.date
    signed_off: int
    groups_done: int


class ImportReport(BaseModel):
    ledger_id: int
    rows: int
    groups_created: int
    items_created: int
