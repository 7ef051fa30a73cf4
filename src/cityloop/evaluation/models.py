"""Tables of the evaluation: the 双随机 audit draws and their items.

KPIs themselves are not stored: they are recomputed from the immutable case events whenever they
are asked for, so a changed configuration or a late correction never leaves stale numbers behind.
What must be stored is what cannot be recomputed: which cases a random draw picked, with the
seed and time that make the draw checkable, who audits each one and what they found.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow


class AuditDraw(Base):
    """One 双随机 draw: a month's closed cases, K per department, with seeded random auditors."""

    __tablename__ = "evaluation_audit_draw"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)  # the month whose closures are drawn
    seed: Mapped[int] = mapped_column(BigInteger)  # publish it: the draw is recomputable from it
    drawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    drawn_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    cases_per_department: Mapped[int] = mapped_column(Integer)
    # The rules in force (auditor roles, eligible user ids, pool sizes) for the record.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditItem(Base):
    """One drawn case, its auditor and the outcome (pass / fail with a reason)."""

    __tablename__ = "evaluation_audit_item"
    __table_args__ = (
        UniqueConstraint("draw_id", "case_id"),
        Index("ix_evaluation_audit_item_department", "department_id", "draw_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("evaluation_audit_draw.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    # NULL when no eligible user was uninvolved in the case: shown as unassigned, never forced.
    auditor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    outcome: Mapped[str | None] = mapped_column(String(8))  # pass | fail; NULL while pending
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
