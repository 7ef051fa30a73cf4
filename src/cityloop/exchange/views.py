"""HTTP routes of the exchange under /api/v1/exchange (thin: the service decides).

- ``GET /export``: filtered cases as a file (staff; the case list's scope applies).
- ``POST /inbound``: a city pushes case events (partner token, not a staff login).
- ``GET /cities`` and ``GET /cases``: the province's read-only view of what cities sent.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from cityloop.cases.domain import CaseState, Channel
from cityloop.cases.schemas import CaseFilters
from cityloop.errors import InvalidInput, Unauthenticated
from cityloop.exchange import service
from cityloop.exchange.receiver import check_size
from cityloop.exchange.schemas import (
    CitySummary,
    ExportFormat,
    InboundReport,
    ReceivedCasePage,
)
from cityloop.web.deps import CurrentActor, UowDep

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])


@router.get("/export", response_class=FileResponse)
def export_cases(
    uow: UowDep,
    actor: CurrentActor,
    format: ExportFormat,
    status: Annotated[list[CaseState] | None, Query()] = None,
    department: str | None = None,
    family: str | None = None,
    minor_code: str | None = None,
    channel: Channel | None = None,
    overdue: bool | None = None,
    reported_from: dt.datetime | None = None,
    reported_to: dt.datetime | None = None,
    q: str | None = None,
) -> FileResponse:
    """The cases you may see that match the filters (those of GET /api/v1/cases), as csv,
    xlsx, geojson or parquet. Never contains reporter contact details."""
    for name, value in (("reported_from", reported_from), ("reported_to", reported_to)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a timezone (e.g. +08:00 or Z)", field=name)
    filters = CaseFilters(
        status=status,
        department_code=department,
        family=family,
        minor_code=minor_code,
        channel=channel,
        overdue=overdue,
        reported_from=reported_from,
        reported_to=reported_to,
        q=q,
    )
    workdir = Path(tempfile.mkdtemp(prefix="cityloop-export-"))
    out = workdir / f"cases.{format.value}"
    try:
        service.export_cases(uow, actor, filters, format, out)
    except BaseException:
        _cleanup(workdir)
        raise
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return FileResponse(
        out,
        media_type=format.media_type,
        filename=f"cases-{stamp}.{format.value}",
        background=BackgroundTask(_cleanup, workdir),
    )


def _cleanup(workdir: Path) -> None:
    for child in workdir.iterdir():
        child.unlink(missing_ok=True)
    workdir.rmdir()


@router.post("/inbound", response_model=InboundReport)
async def inbound(
    request: Request,
    uow: UowDep,
    authorization: Annotated[str | None, Header()] = None,
) -> InboundReport:
    """Case events from a partner city (``Authorization: Bearer <partner token>``).

    Idempotent: a replayed event answers 200 and changes nothing; an event older than the
    stored one is recorded but does not overwrite the newer picture.
    """
    token = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        raise Unauthenticated("send 'Authorization: Bearer <partner token>'")
    # The database work runs in the thread pool: this handler is async only to read the
    # body in chunks and stop at the limit instead of buffering whatever a client sends.
    limit = await run_in_threadpool(service.inbound_limit, uow)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_size(int(declared), limit)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        check_size(len(body), limit)
    return await run_in_threadpool(service.receive, uow, token, bytes(body))


@router.get("/cities", response_model=list[CitySummary])
def cities(uow: UowDep, actor: CurrentActor) -> list[CitySummary]:
    """Every sending city: cases by state, events received, last report."""
    return service.cities(uow, actor)


@router.get("/cases", response_model=ReceivedCasePage)
def received_cases(
    uow: UowDep,
    actor: CurrentActor,
    city: str | None = None,
    state: CaseState | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReceivedCasePage:
    """The cities' cases as last reported (read-only), by city code."""
    return service.received_cases(
        uow, actor, city=city, state=state, page=page, page_size=page_size
    )
