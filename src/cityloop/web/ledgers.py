"""Ledger pages (整改台账, issue 7 section 7): the list, a ledger with its progress by aspect,
unit and stage, overdue items, the progress chart (挂图作战) and its tree of items, an item with
its history, progress with evidence, and the sign-off actions (销号: submit, review, approve,
reject; look-back: confirm, relapse). Excel in and out and the bulletin (通报) download.

Scope is the service's: every read and every action goes through ``cityloop.ledgers.service``,
which answers "not found" for what the user may not see (an operator of another unit) and
refuses what the role may not do. The pages only hide buttons the service would refuse.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from markupsafe import Markup
from pydantic import ValidationError
from starlette.responses import Response

from cityloop.db.uow import UnitOfWork
from cityloop.errors import CityloopError, Conflict, InvalidInput, NotFound
from cityloop.ledgers import service as ledgers
from cityloop.ledgers.domain import (
    REASON_REQUIRED,
    WORKING_STATES,
    ItemStatus,
    LedgerKind,
    SignoffAction,
    SignoffFacts,
    SignoffState,
    allowed_actions,
)
from cityloop.ledgers.evidence import MAX_EVIDENCE_BYTES, MAX_FILES_PER_ENTRY
from cityloop.ledgers.schemas import GroupNode, ItemDetail, ItemPublic, LedgerCreate
from cityloop.ledgers.service import HAZARD_RECORDERS, MANAGERS
from cityloop.ledgers.workbook import MAX_WORKBOOK_BYTES, WorkbookRejected
from cityloop.org.domain import Actor, Role
from cityloop.web.deps import UowDep
from cityloop.web.i18n import Translator
from cityloop.web.labels import NP_
from cityloop.web.render import PageRoute, StaffActor, TranslatorDep, redirect, render
from cityloop.web.security import CsrfChecked

router = APIRouter(route_class=PageRoute, include_in_schema=False, prefix="/staff/ledgers")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# What the levels and items of each kind are called (the domain's SHAPES, in the user's language).
NOUNS: dict[LedgerKind, dict[str, tuple[str, str]]] = {
    LedgerKind.RECTIFICATION: {
        "top": NP_("ledger", "Aspect"),
        "item": NP_("ledger", "Measure"),
        "by_top": NP_("ledger", "By aspect"),
        "leaf_done": NP_("ledger", "Problems done"),
        "items_signed": NP_("ledger", "Measures signed off"),
    },
    LedgerKind.HAZARD: {
        "top": NP_("ledger", "Inspection"),
        "item": NP_("ledger", "Hazard"),
        "by_top": NP_("ledger", "By inspection"),
        "leaf_done": NP_("ledger", "Inspections done"),
        "items_signed": NP_("ledger", "Hazards signed off"),
    },
    LedgerKind.CHECKLIST: {
        "top": NP_("ledger", "Section"),
        "item": NP_("ledger", "Item"),
        "by_top": NP_("ledger", "By section"),
        "leaf_done": NP_("ledger", "Sections done"),
        "items_signed": NP_("ledger", "Items signed off"),
    },
}

# The step forward comes first; refusals are red.
DANGER = frozenset({SignoffAction.REJECT, SignoffAction.RELAPSE})
EVIDENCE_ACTIONS = frozenset({SignoffAction.SUBMIT})


def nouns(t: Translator, kind: LedgerKind) -> dict[str, str]:
    return {k: t.pgettext(*v) for k, v in NOUNS[kind].items()}


def can_manage(actor: Actor, kind: LedgerKind) -> bool:
    """Who may change a ledger's contents and import (the service decides again)."""
    return actor.role in (HAZARD_RECORDERS if kind is LedgerKind.HAZARD else MANAGERS)


def can_read_whole(actor: Actor) -> bool:
    """Export and bulletin: the citywide roles (``service._require_whole_reader``)."""
    return actor.is_citywide


def can_report_progress(actor: Actor, kind: LedgerKind, state: SignoffState) -> bool:
    """``service.add_progress``'s rule: managers, the unit's operators, inspectors on hazards;
    only while the item is worked on."""
    if state not in WORKING_STATES:
        return False
    return (
        actor.role in MANAGERS
        or actor.role is Role.DEPARTMENT_OPERATOR
        or (actor.role is Role.INSPECTOR and kind is LedgerKind.HAZARD)
    )


def _date(value: str, field: str, t: Translator) -> dt.date | None:
    if not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(t.gettext("Dates are written YYYY-MM-DD."), field=field) from None


def _download(data: bytes, media_type: str, filename: str, fallback: str) -> Response:
    """A file whose Chinese name survives every browser (RFC 6266 ``filename*``)."""
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
            ),
        },
    )


async def _read_files(uploads: list[UploadFile] | None, t: Translator) -> list[tuple[str, bytes]]:
    files = [u for u in (uploads or []) if u.filename]
    if len(files) > MAX_FILES_PER_ENTRY:
        raise InvalidInput(
            t.gettext("At most %(n)d files at a time.") % {"n": MAX_FILES_PER_ENTRY}, field="files"
        )
    out = []
    for upload in files:
        data = await upload.read(MAX_EVIDENCE_BYTES + 1)
        if len(data) > MAX_EVIDENCE_BYTES:
            raise InvalidInput(
                t.gettext("%(name)s is larger than %(mb)d MB.")
                % {"name": upload.filename, "mb": MAX_EVIDENCE_BYTES // (1024 * 1024)},
                field="files",
            )
        out.append((upload.filename or "evidence", data))
    return out


# --- the list ------------------------------------------------------------------------------


def list_page(request: Request, uow: UnitOfWork, actor: Actor, **extra: Any) -> Response:
    status = int(extra.pop("status_code", 200))
    return render(
        request,
        "ledgers.html",
        status_code=status,
        ledgers=ledgers.list_ledgers(uow, actor),
        kinds=list(LedgerKind),
        may_create=actor.role in MANAGERS,
        form=extra.pop("form", {}),
        **extra,
    )


@router.get("", name="ledgers")
def ledger_list(request: Request, uow: UowDep, actor: StaffActor) -> Response:
    return list_page(request, uow, actor)


@router.post("", name="ledger_create")
def ledger_create(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    kind: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    authority: Annotated[str, Form()] = "",
    inspection_group: Annotated[str, Form()] = "",
    onsite_start: Annotated[str, Form()] = "",
    onsite_end: Annotated[str, Form()] = "",
    feedback_on: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "kind": kind,
        "title": title,
        "subject": subject,
        "authority": authority,
        "inspection_group": inspection_group,
        "onsite_start": onsite_start,
        "onsite_end": onsite_end,
        "feedback_on": feedback_on,
    }
    try:
        if kind not in {k.value for k in LedgerKind}:
            raise InvalidInput(t.gettext("Choose the kind of ledger."), field="kind")
        data = LedgerCreate(
            kind=LedgerKind(kind),
            title=title.strip(),
            subject=subject.strip(),
            authority=authority.strip(),
            inspection_group=inspection_group.strip(),
            onsite_start=_date(onsite_start, "onsite_start", t),
            onsite_end=_date(onsite_end, "onsite_end", t),
            feedback_on=_date(feedback_on, "feedback_on", t),
        )
        created = ledgers.create_ledger(uow, actor, data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ()))
        return list_page(
            request,
            uow,
            actor,
            status_code=422,
            form=form,
            problem=t.gettext("Check the field “%(field)s”: %(message)s")
            % {"field": field, "message": err.get("msg", "")},
        )
    except CityloopError as exc:
        if exc.status_code == 403:
            raise
        return list_page(
            request,
            uow,
            actor,
            status_code=exc.status_code,
            form=form,
            problem=t.gettext("Not saved: %(message)s") % {"message": exc.message},
        )
    return redirect(request.app.url_path_for("ledger_page", ledger_id=str(created.id)))


# --- a ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A group of the tree as the page draws it: number, title, and its items (leaf groups)."""

    group: GroupNode
    depth: int


def _flatten(nodes: list[GroupNode], depth: int = 0) -> list[Section]:
    out: list[Section] = []
    for node in nodes:
        out.append(Section(node, depth))
        out.extend(_flatten(node.children, depth + 1))
    return out


def ledger_view(
    request: Request,
    uow: UnitOfWork,
    actor: Actor,
    t: Translator,
    ledger_id: int,
    **extra: Any,
) -> Response:
    status = int(extra.pop("status_code", 200))
    detail = ledgers.get_ledger(uow, actor, ledger_id)
    stats = ledgers.ledger_stats(uow, actor, ledger_id)
    overdue = ledgers.list_overdue(uow, actor, ledger_id)
    chart = ledgers.chart_svg(uow, actor, ledger_id)
    kind = detail.ledger.kind
    return render(
        request,
        "ledger.html",
        status_code=status,
        ledger=detail.ledger,
        sections=_flatten(detail.groups),
        stats=stats,
        overdue=overdue,
        # The service builds the chart from escaped text and numbers only (ledgers/chart.py).
        chart=Markup(chart),
        noun=nouns(t, kind),
        two_levels=kind is LedgerKind.RECTIFICATION,
        may_manage=can_manage(actor, kind),
        may_read_whole=can_read_whole(actor),
        notice=_notice(request, t),
        **extra,
    )


def _notice(request: Request, t: Translator) -> str | None:
    params = request.query_params
    did = params.get("did", "")
    if did in {a.value for a in SignoffAction}:
        return t.gettext("Done: %(action)s.") % {
            "action": t.pgettext(*_action_label(SignoffAction(did)))
        }
    if params.get("imported"):
        return t.gettext("Workbook imported: %(rows)s rows.") % {"rows": params["imported"][:8]}
    if params.get("progress"):
        return t.gettext("Progress recorded.")
    return None


def _action_label(action: SignoffAction) -> tuple[str, str]:
    from cityloop.web.labels import LEDGER_ACTION

    return LEDGER_ACTION[action]


@router.get("/{ledger_id:int}", name="ledger_page")
def ledger_page(
    request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep, ledger_id: int
) -> Response:
    return ledger_view(request, uow, actor, t, ledger_id)


@router.get("/{ledger_id:int}/export.xlsx", name="ledger_export")
def ledger_export(uow: UowDep, actor: StaffActor, ledger_id: int) -> Response:
    data = ledgers.export_xlsx(uow, actor, ledger_id)
    return _download(data, XLSX, f"台账-{ledger_id}.xlsx", f"ledger-{ledger_id}.xlsx")


@router.get("/{ledger_id:int}/bulletin.{fmt}", name="ledger_bulletin")
def ledger_bulletin(uow: UowDep, actor: StaffActor, ledger_id: int, fmt: str) -> Response:
    if fmt not in ("md", "docx"):
        raise NotFound(f"no bulletin format {fmt!r}", field="fmt")
    data, media = ledgers.render_bulletin(uow, actor, ledger_id, fmt)
    return _download(data, media, f"通报-{ledger_id}.{fmt}", f"bulletin-{ledger_id}.{fmt}")


@router.post("/{ledger_id:int}/import", name="ledger_import")
async def ledger_import(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    ledger_id: int,
    workbook: Annotated[UploadFile | None, File()] = None,
) -> Response:
    page = request.app.url_path_for("ledger_page", ledger_id=str(ledger_id))
    data = await workbook.read(MAX_WORKBOOK_BYTES + 1) if workbook is not None else b""
    if not data or len(data) > MAX_WORKBOOK_BYTES:
        return ledger_view(
            request,
            uow,
            actor,
            t,
            ledger_id,
            status_code=422,
            problem=t.gettext("Choose an .xlsx workbook of at most 10 MB."),
        )
    try:
        report = ledgers.import_xlsx(uow, actor, ledger_id, data)
    except CityloopError as exc:
        if exc.status_code in (403, 404):
            raise
        lines = exc.message.splitlines()
        return ledger_view(
            request,
            uow,
            actor,
            t,
            ledger_id,
            status_code=exc.status_code,
            problem=t.gettext("The workbook was not imported; nothing was changed."),
            problems=_import_errors(exc) or lines,
        )
    return redirect(f"{page}?{urlencode({'imported': report.rows})}")


def _import_errors(exc: CityloopError) -> list[str]:
    """Row-numbered errors of a refused workbook ("row 7 责任单位: ...")."""
    if isinstance(exc, WorkbookRejected):
        return [str(e) for e in exc.errors[:200]]
    return []


# --- an item -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionForm:
    action: SignoffAction
    reason_required: bool
    evidence: bool
    danger: bool


def _path_of(nodes: list[GroupNode], group_id: int) -> list[GroupNode]:
    for node in nodes:
        if node.group.id == group_id:
            return [node]
        below = _path_of(node.children, group_id)
        if below:
            return [node, *below]
    return []


def _fresh_evidence(detail: ItemDetail) -> int:
    """Evidence since the last return or relapse (what a submission and approval need)."""
    reopened = max(
        (e.at for e in detail.events if e.action in ("reject", "relapse")),
        default=None,
    )
    return sum(
        1
        for p in detail.progress
        for ev in p.evidence
        if reopened is None or ev.uploaded_at > reopened
    )


def _may_submit_with_evidence(actor: Actor, kind: LedgerKind, item: ItemPublic) -> bool:
    """Whether submitting is refused only for want of evidence (the submit form uploads it)."""
    if actor.role is Role.DEPARTMENT_OPERATOR and not actor.covers_department(item.unit_id):
        return False
    facts = SignoffFacts(kind=kind, state=item.signoff_state, status=item.status, fresh_evidence=1)
    return SignoffAction.SUBMIT in allowed_actions(facts, actor)


def item_view(
    request: Request,
    uow: UnitOfWork,
    actor: Actor,
    t: Translator,
    item_id: int,
    **extra: Any,
) -> Response:
    status = int(extra.pop("status_code", 200))
    detail = ledgers.get_item(uow, actor, item_id)
    item: ItemPublic = detail.item
    tree = ledgers.get_ledger(uow, actor, item.ledger_id)
    kind = tree.ledger.kind
    fresh = _fresh_evidence(detail)
    actions = list(detail.allowed_actions)
    if SignoffAction.SUBMIT not in actions and _may_submit_with_evidence(actor, kind, item):
        actions.insert(0, SignoffAction.SUBMIT)  # its form uploads the evidence it needs
    forms = [
        ActionForm(
            action=a,
            reason_required=a in REASON_REQUIRED,
            evidence=a in EVIDENCE_ACTIONS,
            danger=a in DANGER,
        )
        for a in sorted(actions, key=lambda a: a in DANGER)
    ]
    return render(
        request,
        "ledger_item.html",
        status_code=status,
        ledger=tree.ledger,
        path=_path_of(tree.groups, item.group_id),
        detail=detail,
        item=item,
        forms=forms,
        fresh_evidence=fresh,
        may_progress=can_report_progress(actor, kind, item.signoff_state),
        statuses=[s for s in ItemStatus],
        noun=nouns(t, kind),
        hazard=kind is LedgerKind.HAZARD,
        stale=request.query_params.get("notice") == "stale",
        notice=_notice(request, t),
        **extra,
    )


@router.get("/items/{item_id:int}", name="ledger_item")
def ledger_item(
    request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep, item_id: int
) -> Response:
    return item_view(request, uow, actor, t, item_id)


def _problem_page(
    request: Request, uow: UnitOfWork, actor: Actor, t: Translator, item_id: int, exc: Exception
) -> Response:
    """The item page again with what went wrong (a 404 stays a 404: scope is never revealed)."""
    if isinstance(exc, CityloopError):
        if isinstance(exc, NotFound) and exc.field in ("item_id", "ledger_id"):
            raise exc
        messages = {
            "reason": t.gettext("Please give a reason."),
            "files": t.gettext("Check the evidence files."),
            "file": t.gettext("Check the evidence files."),
            "evidence": t.gettext("Add evidence first: upload at least one file."),
            "action": t.gettext("This action is not possible now; someone may have acted first."),
        }
        message = messages.get(exc.field or "", t.gettext("The action could not be completed."))
        return item_view(
            request,
            uow,
            actor,
            t,
            item_id,
            status_code=exc.status_code,
            error=message,
            error_detail=exc.message,
        )
    return item_view(
        request,
        uow,
        actor,
        t,
        item_id,
        status_code=422,
        error=t.gettext("Some fields are missing or invalid"),
    )


@router.post("/items/{item_id:int}/progress", name="ledger_progress")
async def ledger_progress(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    item_id: int,
    text: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    completion: Annotated[str, Form()] = "",
    completion_was: Annotated[str, Form()] = "",
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    page = request.app.url_path_for("ledger_item", item_id=str(item_id))
    try:
        chosen = ItemStatus(status) if status else None
        read = await _read_files(files, t)
        changed = completion.replace("\r\n", "\n")
        ledgers.add_progress(
            uow,
            actor,
            item_id,
            text=text,
            status=chosen,
            # Only a changed 完成情况 is sent: an untouched box changes nothing.
            completion=changed if changed != completion_was.replace("\r\n", "\n") else None,
            files=read,
        )
    except (CityloopError, ValueError) as exc:
        return _problem_page(request, uow, actor, t, item_id, exc)
    return redirect(f"{page}?progress=1")


@router.post("/items/{item_id:int}/act", name="ledger_act")
async def ledger_act(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    item_id: int,
    action: Annotated[str, Form()],
    version: Annotated[int, Form()],
    reason: Annotated[str, Form()] = "",
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    page = request.app.url_path_for("ledger_item", item_id=str(item_id))
    try:
        chosen = SignoffAction(action)
        read = await _read_files(files, t) if chosen in EVIDENCE_ACTIONS else []
        expected: int | None = version
        if read:
            # Evidence first (its own entry), then the submission. The version the user saw is
            # checked before anything is written; the evidence then moves the item on by one.
            current = ledgers.get_item(uow, actor, item_id).item.version
            if current != version:
                raise Conflict("the item changed since the page was loaded")
            ledgers.add_progress(uow, actor, item_id, text=reason.strip(), files=read)
            expected = None
        ledgers.act(uow, actor, item_id, chosen, reason=reason, expected_version=expected)
    except Conflict:
        return redirect(f"{page}?notice=stale")
    except (CityloopError, ValueError) as exc:
        return _problem_page(request, uow, actor, t, item_id, exc)
    return redirect(f"{page}?{urlencode({'did': chosen.value})}")


@router.get("/evidence/{evidence_id:int}", name="ledger_evidence")
def ledger_evidence(uow: UowDep, actor: StaffActor, evidence_id: int) -> Response:
    public, data = ledgers.evidence_file(uow, actor, evidence_id)
    inline = public.content_type.startswith("image/") or public.content_type == "application/pdf"
    disposition = "inline" if inline else "attachment"
    return Response(
        content=data,
        media_type=public.content_type,
        headers={
            "Content-Disposition": (
                f'{disposition}; filename="evidence-{public.id}"; '
                f"filename*=UTF-8''{quote(public.filename)}"
            ),
            "Cache-Control": "private, max-age=3600",
        },
    )
