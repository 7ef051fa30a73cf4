"""Tables of the case loop: the case, its immutable events, its attachments, code serials.

The case row is the current picture, kept for fast inboxes, maps and workers: state, version,
the running step's deadline (a stored, indexed column recomputed at every change), counters.
The event rows are the history the timeline and every KPI read; they are append-only
(database triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow


class Case(Base):
    __tablename__ = "case_file"
    __table_args__ = (
        Index("ix_case_file_state_deadline", "state", "step_deadline"),
        Index("ix_case_file_step_deadline", "step_deadline"),
        Index("ix_case_file_department_state", "department_id", "state"),
        Index("ix_case_file_reported_at", "reported_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # 案卷号, e.g. 20261122-00042
    # Optimistic concurrency: every change bumps it; a stale version is refused with 409.
    version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(128))  # id in the source system

    # What: class and filing-standard row (chosen at filing, may be suggested at intake).
    family: Mapped[str | None] = mapped_column(String(16))  # component | event
    minor_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_minor_class.id"), index=True)
    standard_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_filing_standard.id"))
    description: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # raised by urges (督办)

    # Where: stored in WGS-84; the system the reporter used is kept for the record.
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    coord_system: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(255))
    cell_code: Mapped[str | None] = mapped_column(String(15), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    subdistrict_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    component_code: Mapped[str | None] = mapped_column(String(16))
    outside_jurisdiction: Mapped[bool] = mapped_column(Boolean, default=False)

    # Who: reporter contact is private (never shown to departments or the public).
    reporter_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    reporter_name: Mapped[str | None] = mapped_column(String(64))
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    reporter_email: Mapped[str | None] = mapped_column(String(128))
    inspector_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    suggested_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))

    # The running step's clock. step is None while paused or after the loop ended.
    step: Mapped[str | None] = mapped_column(String(16))
    step_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    step_limit: Mapped[str | None] = mapped_column(String(64))  # written form, e.g. "2工作日"
    step_pauses: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    step_extensions: Mapped[int] = mapped_column(Integer, default=0)
    step_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the light turns yellow (80 % used): stored so the worker finds due rows by index.
    step_warn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    paused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paused_step: Mapped[str | None] = mapped_column(String(16))
    step_warned: Mapped[bool] = mapped_column(Boolean, default=False)  # yellow handled
    step_overdue: Mapped[bool] = mapped_column(Boolean, default=False)  # red handled

    # Counters the guards and KPIs use.
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    suspend_count: Mapped[int] = mapped_column(Integer, default=0)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    urge_count: Mapped[int] = mapped_column(Integer, default=0)
    callback_count: Mapped[int] = mapped_column(Integer, default=0)
    state_before_void: Mapped[str | None] = mapped_column(String(32))
    satisfaction: Mapped[str | None] = mapped_column(String(32))

    # Milestones (denormalised from events for lists and KPIs).
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    filed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disposal_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disposal_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CaseEvent(Base):
    """One immutable row per action on a case: who, as what, when, from, to, why."""

    __tablename__ = "case_event"
    __table_args__ = (
        Index("ix_case_event_case_id_id", "case_id", "id"),
        Index("ix_case_event_action_at", "action", "at"),  # daily trends on the dashboard
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    actor_name: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(32))  # None: a citizen or a machine
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    step: Mapped[str | None] = mapped_column(String(16))  # the step clock running afterwards
    deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # its deadline afterwards
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CaseAttachment(Base):
    """A photo or document. Stored under the data directory by content hash; served only to
    users who may see the case."""

    __tablename__ = "case_attachment"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # NULL until the upload is claimed by a report or an action (uploads come first).
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_event.id"))
    stage: Mapped[str] = mapped_column(String(16))  # report | feedback | check | other
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseCodeSerial(Base):
    """The last serial handed out per local day, for human case codes (案卷号)."""

    __tablename__ = "case_code_serial"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
