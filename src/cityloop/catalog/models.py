"""Tables of the catalog: major and minor classes of both families and the filing standard.

Rows are never deleted by the service layer. A class or filing-standard row that a new import
no longer contains is retired (``active = False``) instead, because cases filed against it keep
pointing at it and must still read what they were filed against.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow


class MajorClass(Base):
    """A major class (大类), e.g. 部件 01 公用设施. ``code`` is the 2-digit code as written."""

    __tablename__ = "catalog_major_class"
    __table_args__ = (UniqueConstraint("family", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    family: Mapped[str] = mapped_column(String(16))  # Family value: component | event
    code: Mapped[str] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(String(128))
    # City extension (扩展大类): codes counting down from 99.
    is_extension: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within the family
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MinorClass(Base):
    """A minor class (小类), e.g. 部件 0101 上水井盖.

    ``code`` is the full 4-digit code (2 major + 2 minor), the form every other capability and
    every city document uses; it is unique per family. ``family`` is repeated from the major
    class so that lookup by (family, code), the case loop's everyday query, needs no join.
    """

    __tablename__ = "catalog_minor_class"
    __table_args__ = (UniqueConstraint("family", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    family: Mapped[str] = mapped_column(String(16))
    major_id: Mapped[int] = mapped_column(ForeignKey("catalog_major_class.id"), index=True)
    code: Mapped[str] = mapped_column(String(4))
    name: Mapped[str] = mapped_column(String(128))
    # City extension (扩展小类): minor codes counting down from 99.
    is_extension: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within the major class
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    major: Mapped[MajorClass] = relationship()


class FilingStandard(Base):
    """One row of the filing standard (立结案标准) of a minor class.

    The texts are kept as the city wrote them. The time limit is stored both as written
    (``limit_text``, e.g. "1紧急工作时制止") and parsed (amount, unit, clock, remark) with the
    unit mapping in force at import; all five are NULL when the workbook leaves the limit empty.
    ``default_department_id`` is the handling department resolved from ``handling_units`` (or
    set by an admin); NULL means a dispatcher chooses.
    """

    __tablename__ = "catalog_filing_standard"
    __table_args__ = (Index("ix_catalog_filing_standard_minor_active", "minor_id", "active"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    minor_id: Mapped[int] = mapped_column(ForeignKey("catalog_minor_class.id"))
    position: Mapped[int] = mapped_column(Integer)  # 1-based order within the minor class
    filing_criterion: Mapped[str] = mapped_column(Text)  # 立案条件
    closing_criterion: Mapped[str] = mapped_column(Text, default="")  # 结案条件
    limit_text: Mapped[str | None] = mapped_column(String(64))  # 处置时限 as written
    limit_amount: Mapped[int | None] = mapped_column(Integer)
    limit_unit: Mapped[str | None] = mapped_column(String(16))  # workcal Unit value
    limit_clock: Mapped[str | None] = mapped_column(String(16))  # workcal Clock value
    limit_remark: Mapped[str | None] = mapped_column(String(64))
    handling_units: Mapped[str] = mapped_column(Text, default="")  # 处置单位 as written
    supervising_authority: Mapped[str] = mapped_column(Text, default="")  # 主管部门 as written
    default_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    minor: Mapped[MinorClass] = relationship()
