"""Tables of the ledgers capability (all prefixed ``ledger_``).

One set of tables serves every kind of ledger (rectification, hazard survey, checklist): a
ledger has groups in one or two levels (方面 → 问题, or 检查, or 分类) and items under the
deepest level (整改措施, 隐患, 事项). Kind-specific columns are few and nullable (a hazard's
class, level and location; an inspection's date, place and inspector), which keeps the sign-off
flow, statistics, workbook and bulletin code single.

``LedgerItemEvent`` rows are append-only: every sign-off transition is one row, so the progress
chart and relapse statistics read history instead of rebuilding it. Each transition also writes
an ``audit_entry`` row (the platform-wide log).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow
from cityloop.org.models import Department


class Ledger(Base):
    """A ledger (台账) and, for a rectification ledger, its inspection and bulletin fields.

    ``organisation`` and ``next_steps`` are lists of ``{"heading": ..., "text": ...}`` that
    the rectification office writes for the bulletin; ``stages`` is the ledger's stage list
    (default 前期准备 / 全面推进 / 总结评估). ``version`` guards concurrent edits.
    """

    __tablename__ = "ledger_ledger"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # LedgerKind value
    title: Mapped[str] = mapped_column(String(200))
    # The inspection (巡察): who was inspected, on whose arrangement, by which group, when.
    subject: Mapped[str] = mapped_column(String(200), default="")
    authority: Mapped[str] = mapped_column(String(200), default="")
    inspection_group: Mapped[str] = mapped_column(String(200), default="")
    onsite_start: Mapped[dt.date | None] = mapped_column(Date)
    onsite_end: Mapped[dt.date | None] = mapped_column(Date)
    feedback_on: Mapped[dt.date | None] = mapped_column(Date)
    stages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The bulletin (通报).
    bulletin_title: Mapped[str] = mapped_column(String(300), default="")
    organisation: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    next_steps: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    as_of: Mapped[dt.date | None] = mapped_column(Date)
    issuer: Mapped[str] = mapped_column(String(200), default="")
    issued_on: Mapped[dt.date | None] = mapped_column(Date)
    contact_phone: Mapped[str] = mapped_column(String(64), default="")
    contact_mailbox: Mapped[str] = mapped_column(String(300), default="")
    contact_postcode: Mapped[str] = mapped_column(String(16), default="")
    contact_email: Mapped[str] = mapped_column(String(128), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it once)


class LedgerGroup(Base):
    """A group: 方面 (level 1) or 问题 (level 2) of a rectification ledger, an inspection (检查)
    of a hazard survey, or a section of a checklist. Titles are stored without their numbering
    (一、（一）1.), which outputs generate."""

    __tablename__ = "ledger_group"
    __table_args__ = (Index("ix_ledger_group_ledger_level", "ledger_id", "level", "position"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledger_ledger.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_group.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    # Hazard-survey inspections: when, where (a place or an enterprise), by whom.
    held_on: Mapped[dt.date | None] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(200), default="")
    inspector: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerItem(Base):
    """An item: a measure (整改措施), a hazard (隐患) or a checklist item.

    ``due_at`` is the stored, indexed deadline instant, recomputed whenever the deadline or the
    ledger's feedback date changes, so "overdue" is one indexed comparison. ``relapse_count``
    counts look-back relapses (反弹) over the item's life; the events hold the detail.
    """

    __tablename__ = "ledger_item"
    __table_args__ = (
        Index("ix_ledger_item_ledger_state", "ledger_id", "signoff_state"),
        Index("ix_ledger_item_group", "group_id", "position"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledger_ledger.id"))
    group_id: Mapped[int] = mapped_column(ForeignKey("ledger_group.id"))
    position: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    responsible_leader: Mapped[str] = mapped_column(String(64), default="")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    co_units: Mapped[str] = mapped_column(String(200), default="")  # 配合单位, free text
    responsible_person: Mapped[str] = mapped_column(String(64), default="")
    deadline_text: Mapped[str] = mapped_column(String(64), default="")  # as written
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    stage: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16))  # ItemStatus value
    signoff_state: Mapped[str] = mapped_column(String(16))  # SignoffState value
    completion: Mapped[str] = mapped_column(Text, default="")  # 完成情况
    hazard_class: Mapped[str] = mapped_column(String(64), default="")
    hazard_level: Mapped[str] = mapped_column(String(16), default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    relapse_count: Mapped[int] = mapped_column(Integer, default=0)
    # The current sign-off round: who submitted and who reviewed (separation of duties), and
    # when evidence counts from (the last return or relapse).
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    reopened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_reason: Mapped[str] = mapped_column(Text, default="")
    signed_off_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    unit: Mapped[Department | None] = relationship()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it once)


class LedgerItemEvent(Base):
    """One sign-off transition (or the item's creation). Append-only."""

    __tablename__ = "ledger_item_event"
    __table_args__ = (Index("ix_ledger_item_event_ledger_at", "ledger_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledger_ledger.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("ledger_item.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    actor_username: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # SignoffAction value, or "create"
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LedgerProgress(Base):
    """A progress entry (进展): what the unit did, optionally a new status, and evidence."""

    __tablename__ = "ledger_progress"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("ledger_item.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    actor_username: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    status_after: Mapped[str | None] = mapped_column(String(16))


class LedgerEvidence(Base):
    """An evidence file of a progress entry. The bytes live in the evidence store under
    ``storage_key`` (content-addressed by SHA-256); ``content_type`` is what sniffing found,
    not what the uploader claimed."""

    __tablename__ = "ledger_evidence"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("ledger_item.id"), index=True)
    progress_id: Mapped[int] = mapped_column(ForeignKey("ledger_progress.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(64))
