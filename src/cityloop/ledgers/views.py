"""HTTP routes of the ledgers (thin: the service decides). Mounted at ``/api/v1/ledgers``.

What the web UI needs is here: the list, a ledger's tree, an item with its history and the
actions the user may take (``allowed_actions``), progress with evidence upload, the sign-off
actions, statistics by aspect / unit / stage, overdue items, the timeline and its SVG chart,
Excel in and out, and the bulletin. ``GET /meta`` gives the labels and shapes of every kind.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from cityloop.errors import InvalidInput
from cityloop.ledgers import bulletin, service
from cityloop.ledgers.domain import (
    ACTION_LABELS_ZH,
    DEFAULT_STAGES,
    HAZARD_LEVELS,
    SHAPES,
    STATE_LABELS_ZH,
    STATUS_LABELS_ZH,
    ItemStatus,
    LedgerKind,
    SignoffAction,
)
from cityloop.ledgers.evidence import MAX_EVIDENCE_BYTES, MAX_FILES_PER_ENTRY
from cityloop.ledgers.schemas import (
    ActionRequest,
    GroupCreate,
    GroupPublic,
    ImportReport,
    ItemCreate,
    ItemDetail,
    ItemPublic,
    ItemUpdate,
    LedgerCreate,
    LedgerDetail,
    LedgerPublic,
    LedgerSummary,
    LedgerUpdate,
    ProgressPublic,
    StatsPublic,
    TimelinePointPublic,
)
from cityloop.ledgers.workbook import MAX_WORKBOOK_BYTES
from cityloop.web.deps import CurrentActor, UowDep

router = APIRouter(prefix="/api/v1/ledgers", tags=["ledgers"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(data: bytes, media_type: str, filename: str, fallback: str) -> Response:
    """A file response whose Chinese name survives every browser (RFC 6266 filename*)."""
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
    return Response(
        content=data,
        media_type=media_type,
        headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
    )


async def _read_upload(upload: UploadFile, limit: int, what: str) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(
            f"{what} '{upload.filename}' is larger than {limit // (1024 * 1024)} MiB",
            field="file",
        )
    return data


@router.get("/meta")
def meta(_actor: CurrentActor) -> dict[str, Any]:
    """Kinds and their shapes, statuses, sign-off states and actions with their labels."""
    return {
        "kinds": {
            kind.value: {
                "label": shape.label,
                "group_levels": list(shape.group_levels),
                "item_noun": shape.item_noun,
                "requires_unit": shape.requires_unit,
            }
            for kind, shape in SHAPES.items()
        },
        "default_stages": list(DEFAULT_STAGES),
        "statuses": {s.value: label for s, label in STATUS_LABELS_ZH.items()},
        "states": {s.value: label for s, label in STATE_LABELS_ZH.items()},
        "actions": {a.value: label for a, label in ACTION_LABELS_ZH.items()},
        "hazard_levels": list(HAZARD_LEVELS),
    }


@router.get("", response_model=list[LedgerSummary])
def list_ledgers(
    uow: UowDep, actor: CurrentActor, kind: LedgerKind | None = None
) -> list[LedgerSummary]:
    return service.list_ledgers(uow, actor, kind=kind)


@router.post("", response_model=LedgerPublic, status_code=201)
def create_ledger(uow: UowDep, actor: CurrentActor, data: LedgerCreate) -> LedgerPublic:
    return service.create_ledger(uow, actor, data)


@router.get("/items/{item_id}", response_model=ItemDetail)
def get_item(uow: UowDep, actor: CurrentActor, item_id: int) -> ItemDetail:
    return service.get_item(uow, actor, item_id)


@router.patch("/items/{item_id}", response_model=ItemPublic)
def update_item(uow: UowDep, actor: CurrentActor, item_id: int, data: ItemUpdate) -> ItemPublic:
    return service.update_item(uow, actor, item_id, data)


@router.post("/items/{item_id}/progress", response_model=ProgressPublic, status_code=201)
async def add_progress(
    uow: UowDep,
    actor: CurrentActor,
    item_id: int,
    text: Annotated[str, Form()] = "",
    status: Annotated[ItemStatus | None, Form()] = None,
    completion: Annotated[str | None, Form()] = None,
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> ProgressPublic:
    uploads = files or []
    if len(uploads) > MAX_FILES_PER_ENTRY:
        raise InvalidInput(f"at most {MAX_FILES_PER_ENTRY} files per entry", field="files")
    read = [
        (u.filename or "evidence", await _read_upload(u, MAX_EVIDENCE_BYTES, "evidence file"))
        for u in uploads
    ]
    return service.add_progress(
        uow, actor, item_id, text=text, status=status, completion=completion, files=read
    )


@router.post("/items/{item_id}/actions/{action}", response_model=ItemPublic)
def act(
    uow: UowDep,
    actor: CurrentActor,
    item_id: int,
    action: SignoffAction,
    data: ActionRequest | None = None,
) -> ItemPublic:
    """submit | review | approve | reject (reason) | confirm | relapse (reason)."""
    body = data or ActionRequest()
    return service.act(
        uow, actor, item_id, action, reason=body.reason, expected_version=body.expected_version
    )


@router.get("/evidence/{evidence_id}")
def evidence(uow: UowDep, actor: CurrentActor, evidence_id: int) -> Response:
    public, data = service.evidence_file(uow, actor, evidence_id)
    return _download(data, public.content_type, public.filename, f"evidence-{public.id}")


@router.get("/templates/{kind}", response_class=Response)
def default_template(_actor: CurrentActor, kind: LedgerKind) -> Response:
    """The default bulletin template of a kind, to copy and edit."""
    text = bulletin.default_template_text(kind)
    return Response(content=text, media_type="text/markdown; charset=utf-8")


@router.get("/{ledger_id}", response_model=LedgerDetail)
def get_ledger(uow: UowDep, actor: CurrentActor, ledger_id: int) -> LedgerDetail:
    return service.get_ledger(uow, actor, ledger_id)


@router.patch("/{ledger_id}", response_model=LedgerPublic)
def update_ledger(
    uow: UowDep, actor: CurrentActor, ledger_id: int, data: LedgerUpdate
) -> LedgerPublic:
    return service.update_ledger(uow, actor, ledger_id, data)


@router.post("/{ledger_id}/groups", response_model=GroupPublic, status_code=201)
def add_group(uow: UowDep, actor: CurrentActor, ledger_id: int, data: GroupCreate) -> GroupPublic:
    return service.add_group(uow, actor, ledger_id, data)


@router.post("/{ledger_id}/items", response_model=ItemPublic, status_code=201)
def add_item(uow: UowDep, actor: CurrentActor, ledger_id: int, data: ItemCreate) -> ItemPublic:
    return service.add_item(uow, actor, ledger_id, data)


@router.get("/{ledger_id}/stats", response_model=StatsPublic)
def stats(
    uow: UowDep,
    actor: CurrentActor,
    ledger_id: int,
    since: Annotated[dt.date | None, Query(description="Hazard counts from this date.")] = None,
) -> StatsPublic:
    return service.ledger_stats(uow, actor, ledger_id, since=since)


@router.get("/{ledger_id}/overdue", response_model=list[ItemPublic])
def overdue(uow: UowDep, actor: CurrentActor, ledger_id: int) -> list[ItemPublic]:
    return service.list_overdue(uow, actor, ledger_id)


@router.get("/{ledger_id}/timeline", response_model=list[TimelinePointPublic])
def timeline(
    uow: UowDep, actor: CurrentActor, ledger_id: int, until: dt.date | None = None
) -> list[TimelinePointPublic]:
    return service.timeline(uow, actor, ledger_id, until=until)


@router.get("/{ledger_id}/chart.svg")
def chart(
    uow: UowDep, actor: CurrentActor, ledger_id: int, until: dt.date | None = None
) -> Response:
    svg = service.chart_svg(uow, actor, ledger_id, until=until)
    return Response(content=svg, media_type="image/svg+xml")


@router.get("/{ledger_id}/export.xlsx")
def export(uow: UowDep, actor: CurrentActor, ledger_id: int) -> Response:
    data = service.export_xlsx(uow, actor, ledger_id)
    return _download(data, XLSX, f"台账-{ledger_id}.xlsx", f"ledger-{ledger_id}.xlsx")


@router.post("/{ledger_id}/import", response_model=ImportReport)
async def import_workbook(
    uow: UowDep, actor: CurrentActor, ledger_id: int, file: Annotated[UploadFile, File()]
) -> ImportReport:
    """All or nothing; a rejected workbook answers 422 with ``errors`` (row, column, message)."""
    data = await _read_upload(file, MAX_WORKBOOK_BYTES, "workbook")
    return service.import_xlsx(uow, actor, ledger_id, data)


def _bulletin_response(data: bytes, media: str, ledger_id: int, fmt: str) -> Response:
    return _download(data, media, f"通报-{ledger_id}.{fmt}", f"bulletin-{ledger_id}.{fmt}")


@router.get("/{ledger_id}/bulletin")
def get_bulletin(
    uow: UowDep,
    actor: CurrentActor,
    ledger_id: int,
    format: Annotated[str, Query(pattern="^(md|docx)$")] = "docx",
) -> Response:
    data, media = service.render_bulletin(uow, actor, ledger_id, format)
    return _bulletin_response(data, media, ledger_id, format)


@router.post("/{ledger_id}/bulletin")
async def post_bulletin(
    uow: UowDep,
    actor: CurrentActor,
    ledger_id: int,
    template: Annotated[UploadFile, File(description="An edited copy of the default template.")],
    format: Annotated[str, Form(pattern="^(md|docx)$")] = "docx",
) -> Response:
    """The bulletin from an uploaded template (UTF-8 text)."""
    raw = await _read_upload(template, 1024 * 1024, "template")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the template must be UTF-8 text", field="template") from None
    data, media = service.render_bulletin(uow, actor, ledger_id, format, template_text=text)
    return _bulletin_response(data, media, ledger_id, format)
