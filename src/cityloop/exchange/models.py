"""Tables of the exchange: import runs and their re-run keys, the outbox, and what a
province-level instance receives from its cities.

Received data lives in tables of its own, keyed by (city, case code), never in ``case_file``:
the province reads the cities' cases, it does not run their loops.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow


class ImportRun(Base):
    """One committed import: which file, from which source, by whom, and what it did.

    Only committed runs are recorded (an all-or-nothing run that was refused leaves no row), so
    the table is the history of what entered the database by import, re-runs included.
    """

    __tablename__ = "exchange_import_run"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(64))
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    already_imported: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ImportedCase(Base):
    """The re-run key of an imported case: (source, external key) -> case.

    The primary key is what makes a re-run idempotent: a row whose key is already here is
    counted as "already imported" and never written twice, whichever file it comes from.
    """

    __tablename__ = "exchange_imported_case"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), unique=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("exchange_import_run.id"), index=True)


class OutboxEntry(Base):
    """A case event waiting to be reported upward (filed, dispatched, closed).

    Written in the same transaction as the case change, so a committed change always has its
    row and a rolled-back one never has. ``payload`` is the case as it was at that moment (a
    snapshot: later changes do not rewrite what this event reported). A pusher claims rows with
    a conditional UPDATE on ``claim_token``/``claimed_until`` and marks them sent only after the
    receiver answered 2xx.
    """

    __tablename__ = "exchange_outbox"
    __table_args__ = (Index("ix_exchange_outbox_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("case_event.id"), unique=True)
    case_code: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # filed | dispatched | closed
    seq: Mapped[int] = mapped_column(Integer)  # the case's version after the change
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)  # HTTP status of the last try
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Partner(Base):
    """A city allowed to push to this (province-level) instance, with its shared token.

    Only the token's SHA-256 is stored (32 random bytes: a fast hash suffices), so a leaked
    database does not let anyone push as a city.
    """

    __tablename__ = "exchange_partner"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_hint: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReceivedCase(Base):
    """The latest picture of one city's case, as that city reported it.

    ``seq`` is the sender's case version: an event with an older or equal ``seq`` never
    overwrites a newer picture, so replays and out-of-order deliveries are harmless.
    """

    __tablename__ = "exchange_received_case"
    __table_args__ = (
        UniqueConstraint("city_code", "case_code"),
        Index("ix_exchange_received_case_city_state", "city_code", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6))
    case_code: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(16))
    event_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    family: Mapped[str | None] = mapped_column(String(16))
    minor_code: Mapped[str | None] = mapped_column(String(4))
    department_code: Mapped[str | None] = mapped_column(String(32))
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    filed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disposal_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    cell_code: Mapped[str | None] = mapped_column(String(15))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the newest document as received
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReceivedEvent(Base):
    """One delivered event per (city, case, seq): a replay finds its row and changes nothing.

    Counting these rows is how a province checks that every event arrived exactly once.
    """

    __tablename__ = "exchange_received_event"
    __table_args__ = (UniqueConstraint("city_code", "case_code", "seq"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6))
    case_code: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(16))
    event_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
