"""The receiving end of the upward exchange (a province-level instance).

Deduplication is done by the database, not by a read-then-write: each delivered event is an
``INSERT ... ON CONFLICT DO NOTHING`` on (city, case code, seq), and the case picture is an
upsert whose UPDATE only fires when the incoming ``seq`` is newer. Two deliveries of the same
batch racing each other (a pusher that timed out and retried while the first request was still
being applied) therefore still leave exactly one event row and the newest picture.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityloop.errors import CityloopError, InvalidInput, PermissionDenied
from cityloop.exchange.models import Partner, ReceivedCase, ReceivedEvent
from cityloop.exchange.schemas import (
    CaseEventDocument,
    InboundBatch,
    InboundReport,
    InboundResult,
    Outcome,
)


class PayloadTooLarge(CityloopError):
    """The body is over the receiver's limit; the sender should send smaller batches."""

    status_code = 413


def check_size(size: int, limit: int) -> None:
    if size > limit:
        raise PayloadTooLarge(
            f"the body has {size} bytes, over the limit of {limit}; send smaller batches",
            field="body",
        )


def parse_batch(body: bytes, *, max_documents: int) -> InboundBatch:
    """A batch ``{"documents": [...]}`` or one bare document, validated; errors name the
    first bad field (with the document's index)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", field="body") from None
    if isinstance(data, dict) and "documents" not in data and "case" in data:
        data = {"documents": [data]}
    documents = data.get("documents") if isinstance(data, dict) else None
    if isinstance(documents, list) and len(documents) > max_documents:
        raise PayloadTooLarge(
            f"{len(documents)} documents in one batch, over the limit of {max_documents}",
            field="documents",
        )
    try:
        return InboundBatch.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}", field=where) from None


def _values(doc: CaseEventDocument, now: dt.datetime) -> dict[str, Any]:
    case = doc.case
    return {
        "city_code": doc.city.code,
        "case_code": case.code,
        "seq": case.seq,
        "event": case.event.value,
        "event_at": case.event_at,
        "state": case.state.value,
        "channel": case.channel.value,
        "family": case.family,
        "minor_code": case.minor_code,
        "department_code": case.department_code,
        "reported_at": case.reported_at,
        "filed_at": case.filed_at,
        "dispatched_at": case.dispatched_at,
        "disposal_deadline": case.disposal_deadline,
        "disposed_at": case.disposed_at,
        "closed_at": case.closed_at,
        "lon": case.location.lon if case.location else None,
        "lat": case.location.lat if case.location else None,
        "cell_code": case.location.cell_code if case.location else None,
        "document": doc.model_dump(mode="json", by_alias=True),
        "received_at": now,
    }


def apply(
    session: Session, partner: Partner, batch: InboundBatch, *, now: dt.datetime
) -> InboundReport:
    """Store the batch for ``partner``. Every document must be of the partner's own city: a
    city reports for itself only (403 otherwise, and nothing of the batch is kept)."""
    for i, doc in enumerate(batch.documents):
        if doc.city.code != partner.city_code:
            raise PermissionDenied(
                f"documents.{i}: city {doc.city.code} is not the city of this token "
                f"({partner.city_code})",
                field=f"documents.{i}.city.code",
            )
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    report = InboundReport()
    for doc in batch.documents:
        case = doc.case
        new_event = session.execute(
            insert(ReceivedEvent)
            .values(
                city_code=doc.city.code,
                case_code=case.code,
                seq=case.seq,
                event=case.event.value,
                event_at=case.event_at,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["city_code", "case_code", "seq"])
            .returning(ReceivedEvent.id)
        ).scalar_one_or_none()
        if new_event is None:
            report.duplicates += 1
            report.results.append(
                InboundResult(case_code=case.code, seq=case.seq, outcome="duplicate")
            )
            continue
        values = _values(doc, now)
        stmt = insert(ReceivedCase).values(**values)
        changed = session.execute(
            stmt.on_conflict_do_update(
                index_elements=["city_code", "case_code"],
                set_={k: stmt.excluded[k] for k in values if k not in ("city_code", "case_code")},
                where=ReceivedCase.seq < stmt.excluded.seq,
            ).returning(ReceivedCase.id)
        ).scalar_one_or_none()
        # RETURNING, not rowcount: drivers disagree on the rowcount of an upsert that did nothing.
        outcome: Outcome = "accepted" if changed is not None else "stale"
        if changed is not None:
            report.accepted += 1
        else:
            report.stale += 1
        report.results.append(InboundResult(case_code=case.code, seq=case.seq, outcome=outcome))
    return report
