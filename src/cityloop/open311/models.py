"""Tables of the Open311 server: registered clients, what a POST carried beyond the case,
queued submissions (tokens) and updates posted by clients.

The case itself lives in ``case_file``; these tables hold only what the case loop has no column
for. Columns marked private are never rendered by any Open311 response.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow


class Open311Client(Base):
    """A registered client (FixMyStreet, a city app) and its api_key.

    Only the key's SHA-256 is stored: keys are 32 random bytes, so a fast hash is enough (no
    dictionary to guess from) and a leaked database does not leak working keys. ``key_hint``
    (the first characters) lets an admin tell keys apart without being able to use them.
    """

    __tablename__ = "open311_client"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_hint: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Open311Request(Base):
    """What a POSTed request carried that the case row has no place for, one row per case."""

    __tablename__ = "open311_request"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("open311_client.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(16))  # as submitted, e.g. C0101
    # Validated answers to the service definition: [{code, datatype, values, names}]. Public.
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Attributes the definition does not have (FixMyStreet's report_url...). Private.
    extra_attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    media_url: Mapped[str | None] = mapped_column(String(1024))
    account_id: Mapped[str | None] = mapped_column(String(128))  # private
    device_id: Mapped[str | None] = mapped_column(String(128))  # private
    token: Mapped[str | None] = mapped_column(String(64))  # set when it came through the queue
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Open311Token(Base):
    """A submission accepted in queued mode, waiting to become a case.

    ``payload`` holds the validated submission, contact details included, only until it is
    processed: it is emptied then, so the queue never becomes a second copy of private data.
    """

    __tablename__ = "open311_token"
    __table_args__ = (Index("ix_open311_token_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("open311_client.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # pending | created | rejected
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id"))
    error: Mapped[str | None] = mapped_column(Text)  # why a rejected submission was refused
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Open311Update(Base):
    """An update a client POSTed to servicerequestupdates (a FixMyStreet comment).

    Recorded here, not as a case event: a citizen's "it's fixed" is information for the
    centre, not a step of the loop, and only staff move a case. Idempotent per client and
    ``external_id`` (the client's own update id), so a client's retry is not a second note.
    """

    __tablename__ = "open311_update"
    __table_args__ = (UniqueConstraint("client_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("open311_client.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))  # as the client stated it, lower case
    description: Mapped[str] = mapped_column(Text, default="")
    media_url: Mapped[str | None] = mapped_column(String(1024))
    stated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the client's updated_datetime
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    author_name: Mapped[str | None] = mapped_column(String(64))  # private
    author_email: Mapped[str | None] = mapped_column(String(128))  # private
    author_phone: Mapped[str | None] = mapped_column(String(32))  # private
