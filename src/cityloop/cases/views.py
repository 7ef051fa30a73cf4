"""HTTP routes of the case loop under /api/v1 (thin: the service decides)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from cityloop.cases import attachments, service
from cityloop.cases.domain import CaseState, Channel
from cityloop.cases.intake import IntakeQueue
from cityloop.cases.schemas import (
    AttachmentPublic,
    CaseActionRequest,
    CaseCreate,
    CaseFilters,
    CasePage,
    CasePublic,
    EventPublic,
    InboxItem,
)
from cityloop.errors import InvalidInput
from cityloop.web.deps import CurrentActor, UowDep

router = APIRouter(prefix="/api/v1", tags=["cases"])

MAX_UPLOAD = 20 * 1024 * 1024


def intake_queue(request: Request) -> IntakeQueue:
    """The app's group-commit queue for API intake (cases/intake.py), made on first use."""
    state = request.app.state
    found = getattr(state, "intake_queue", None)
    if found is None:
        found = state.intake_queue = IntakeQueue(state.database)
    assert isinstance(found, IntakeQueue)
    return found


@router.post("/cases", response_model=CasePublic, status_code=201)
async def create_case(
    request: Request,
    actor: CurrentActor,
    data: CaseCreate,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> Response:
    """Report a case. Repeating a request with the same Idempotency-Key returns the same case.

    The 201 comes after the COMMIT that holds the case; reports arriving together share
    that commit (group commit, ``cases/intake.py``).
    """
    reported = await intake_queue(request).report(actor, data, idempotency_key)
    assert reported.view is not None
    # The view is already a validated CasePublic: serialise it once instead of letting the
    # framework validate it again (intake is the hottest path of the API).
    return Response(
        content=reported.view.model_dump_json(),
        media_type="application/json",
        status_code=201 if reported.created else 200,
    )


@router.get("/cases", response_model=CasePage)
def list_cases(
    uow: UowDep,
    actor: CurrentActor,
    status: Annotated[list[CaseState] | None, Query()] = None,
    department: str | None = None,
    family: str | None = None,
    minor_code: str | None = None,
    channel: Channel | None = None,
    overdue: bool | None = None,
    reported_from: dt.datetime | None = None,
    reported_to: dt.datetime | None = None,
    q: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CasePage:
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
        page=page,
        page_size=page_size,
    )
    return service.list_cases(uow, actor, filters)


@router.get("/cases/{case_id}", response_model=CasePublic)
def get_case(uow: UowDep, actor: CurrentActor, case_id: int) -> CasePublic:
    return service.get_case(uow, actor, case_id)


@router.get("/cases/{case_id}/events", response_model=list[EventPublic])
def case_events(uow: UowDep, actor: CurrentActor, case_id: int) -> list[EventPublic]:
    return service.events(uow, actor, case_id)


@router.post("/cases/{case_id}/actions", response_model=CasePublic)
def act(uow: UowDep, actor: CurrentActor, case_id: int, req: CaseActionRequest) -> CasePublic:
    """Take an action. 403: role or scope; 409: stale version; 422: not allowed in the state."""
    return service.act(uow, actor, case_id, req)


@router.get("/inbox", response_model=list[InboxItem])
def inbox(uow: UowDep, actor: CurrentActor) -> list[InboxItem]:
    """The current user's to-do list (待办), nearest deadline first, with lights."""
    return service.inbox(uow, actor)


@router.post("/attachments", response_model=AttachmentPublic, status_code=201)
async def upload_attachment(
    uow: UowDep,
    actor: CurrentActor,
    file: Annotated[UploadFile, File()],
    stage: Annotated[str, Form()] = "other",
) -> AttachmentPublic:
    content = await file.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise InvalidInput(f"the file is larger than {MAX_UPLOAD} bytes", field="file")
    return attachments.upload(
        uow, actor, filename=file.filename or "photo", content=content, stage=stage
    )


@router.get("/attachments/{attachment_id}")
def download_attachment(uow: UowDep, actor: CurrentActor, attachment_id: int) -> FileResponse:
    meta, path = attachments.open_attachment(uow, actor, attachment_id)
    return FileResponse(path, media_type=meta.content_type, filename=meta.filename)
