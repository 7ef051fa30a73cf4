"""Staff pages: login, the workbench per role, the case page with its action forms, search,
the dispatcher board, the department view and the staff report page (inspectors on a phone)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.responses import Response

from cityloop.cases import attachments
from cityloop.cases import service as cases
from cityloop.cases.domain import (
    REPORT_ROLES,
    TERMINAL_STATES,
    CaseAction,
    CaseState,
    Channel,
    Satisfaction,
)
from cityloop.cases.schemas import CaseActionRequest, CaseFilters, CasePublic, InboxItem
from cityloop.catalog import service as catalog
from cityloop.catalog.domain import Family
from cityloop.catalog.schemas import FilingStandardPublic
from cityloop.db.uow import UnitOfWork
from cityloop.errors import (
    CityloopError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from cityloop.evaluation import audit as evaluation_audit
from cityloop.org import service as org
from cityloop.org.domain import CITYWIDE_ROLES, Actor, DepartmentKind, Role
from cityloop.org.schemas import DepartmentPublic
from cityloop.web.deps import SESSION_COOKIE, UowDep
from cityloop.web.forms import FormProblem, class_groups, read_photos
from cityloop.web.i18n import N_, Translator
from cityloop.web.public import ReportFields, build_case, report_page, submit_report
from cityloop.web.render import (
    BOARD_ROLES,
    OptionalActor,
    PageRoute,
    StaffActor,
    TranslatorDep,
    local_zone,
    redirect,
    render,
    require_roles,
    safe_next,
)
from cityloop.web.security import (
    CsrfChecked,
    RateLimited,
    SlidingWindowLimiter,
    client_ip,
    rotate_csrf,
    set_cookie,
)
from cityloop.web.settings import get_web_settings

router = APIRouter(route_class=PageRoute, include_in_schema=False)

SESSION_MAX_AGE = int(org.TOKEN_LIFETIME["session"].total_seconds())

# Which extra field each action's form carries (the reason box is on every form).
DEPARTMENT_ACTIONS = frozenset({CaseAction.DISPATCH})
INSPECTOR_ACTIONS = frozenset({CaseAction.SEND_VERIFY, CaseAction.SEND_CHECK})
STANDARD_ACTIONS = frozenset({CaseAction.FILE})
SATISFACTION_ACTIONS = frozenset({CaseAction.CALLBACK})
# Negative outcomes get a red button: they end or reverse work someone did.
DANGER_ACTIONS = frozenset(
    {
        CaseAction.DECLINE,
        CaseAction.NOT_ACCEPT,
        CaseAction.VERIFY_NOT_FOUND,
        CaseAction.CHECK_FAIL,
        CaseAction.APPROVE_VOID,
        CaseAction.REQUEST_VOID,
        CaseAction.REJECT_RETURN,
        CaseAction.REJECT_EXTENSION,
        CaseAction.REJECT_SUSPEND,
    }
)
OPEN_STATES = [s for s in CaseState if s not in TERMINAL_STATES]
# The step forward along the loop comes first on the case page (and opens by itself); requests
# and refusals follow.
MAIN_PATH = frozenset(
    {
        CaseAction.SEND_VERIFY,
        CaseAction.VERIFY_FOUND,
        CaseAction.FILE,
        CaseAction.DISPATCH,
        CaseAction.DISPOSE,
        CaseAction.SEND_CHECK,
        CaseAction.CHECK_PASS,
        CaseAction.CLOSE,
        CaseAction.CALLBACK,
        CaseAction.RESUME,
        CaseAction.APPROVE_RETURN,
        CaseAction.APPROVE_EXTENSION,
        CaseAction.APPROVE_SUSPEND,
    }
)


def action_order(action: CaseAction) -> int:
    if action in MAIN_PATH:
        return 0
    return 2 if action in DANGER_ACTIONS else 1


@dataclass(frozen=True)
class ActionForm:
    """What the case page needs to draw one action's form."""

    action: CaseAction
    reason_required: bool
    needs_department: bool
    needs_inspector: bool
    needs_standard: bool
    needs_satisfaction: bool
    photo_stage: str | None
    photo_required: bool
    danger: bool


def action_form(action: CaseAction, evidence_required: bool) -> ActionForm:
    stage = cases.ATTACHMENT_STAGE.get(action)
    return ActionForm(
        action=action,
        reason_required=action in cases.REASON_REQUIRED,
        needs_department=action in DEPARTMENT_ACTIONS,
        needs_inspector=action in INSPECTOR_ACTIONS,
        needs_standard=action in STANDARD_ACTIONS,
        needs_satisfaction=action in SATISFACTION_ACTIONS,
        photo_stage=stage,
        photo_required=action is CaseAction.DISPOSE and evidence_required,
        danger=action in DANGER_ACTIONS,
    )


# --- login and logout ----------------------------------------------------------------------


def login_limiter(request: Request) -> SlidingWindowLimiter:
    limiter: SlidingWindowLimiter | None = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        web = get_web_settings()
        limiter = SlidingWindowLimiter(web.login_rate_limit, web.login_rate_window_seconds)
        request.app.state.login_limiter = limiter
    return limiter


@router.get("/login", name="login_form")
def login_form(request: Request, actor: OptionalActor, next: str = "") -> Response:
    if actor is not None:
        return redirect(safe_next(next))
    return render(request, "login.html", next=safe_next(next), username="", failed=False)


@router.post("/login", name="login_submit")
def login_submit(
    request: Request,
    uow: UowDep,
    _csrf: CsrfChecked,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    retry = login_limiter(request).hit(client_ip(request))
    if retry is not None:
        raise RateLimited("too many login attempts", retry_after=retry)
    try:
        actor = org.authenticate(uow, username=username.strip(), password=password)
    except Unauthenticated:
        return render(
            request,
            "login.html",
            status_code=401,
            next=safe_next(next),
            username=username.strip(),
            failed=True,
        )
    token = org.issue_token(uow, actor, kind="session")
    response = redirect(safe_next(next))
    set_cookie(response, SESSION_COOKIE, token, max_age=SESSION_MAX_AGE)
    rotate_csrf(request)  # a value an attacker planted before login is worthless after it
    request.state.clear_session = False
    return response


@router.post("/logout", name="logout")
def logout(request: Request, uow: UowDep, _csrf: CsrfChecked) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        org.revoke_token(uow, token)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    rotate_csrf(request)
    return response


# --- the workbench -------------------------------------------------------------------------


def _notice(request: Request, t: Translator) -> str | None:
    """A one-line confirmation from the query (after a redirect), built from known parts."""
    params = request.query_params
    code = params.get("done", "")
    action = params.get("did", "")
    if code and action in {a.value for a in CaseAction}:
        from cityloop.web.labels import Labels

        return t.gettext("Case %(code)s: %(action)s done.") % {
            "code": code[:32],
            "action": Labels(t)("action", action),
        }
    if params.get("reported"):
        return t.gettext("Reported. The case code is %(code)s.") % {"code": params["reported"][:32]}
    return None


def _inbox(uow: UnitOfWork, actor: Actor) -> list[InboxItem]:
    return cases.inbox(uow, actor)


def _callbacks_due(uow: UnitOfWork, actor: Actor) -> list[CasePublic]:
    """Recently closed public cases that still owe the citizen a callback (回访)."""
    page = cases.list_cases(uow, actor, CaseFilters(status=[CaseState.CLOSED], page_size=200))
    return [c for c in page.items if CaseAction.CALLBACK in c.allowed_actions][:50]


@router.get("/staff", name="workbench")
def workbench(request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep) -> Response:
    extra: dict[str, Any] = {}
    # 双随机 audits may be assigned to any role (evaluation settings): point the auditor to them.
    extra["audits_due"] = len(evaluation_audit.my_items(uow, actor))
    if actor.role is Role.INTAKE_OPERATOR:
        extra["callbacks"] = _callbacks_due(uow, actor)
    if actor.role in (Role.LEADER, Role.ADMIN):
        extra["overdue"] = cases.list_cases(
            uow, actor, CaseFilters(status=OPEN_STATES, overdue=True, page_size=50)
        )
    return render(
        request,
        "workbench.html",
        items=_inbox(uow, actor),
        notice=_notice(request, t),
        **extra,
    )


@router.get("/staff/inbox", name="inbox_partial")
def inbox_partial(request: Request, uow: UowDep, actor: StaffActor) -> Response:
    """The to-do table alone: the workbench refreshes it every minute (htmx)."""
    return render(request, "_inbox.html", items=_inbox(uow, actor))


# --- the case page -------------------------------------------------------------------------


def _departments(uow: UnitOfWork) -> list[DepartmentPublic]:
    return org.list_departments(uow)


def _dispatch_targets(departments: list[DepartmentPublic]) -> list[DepartmentPublic]:
    return [d for d in departments if d.active and d.kind is not DepartmentKind.CENTRE]


def _standards(
    uow: UnitOfWork, case: CasePublic, file_class: str
) -> tuple[str, list[FilingStandardPublic]]:
    """The class whose filing-standard rows the file form offers, and those rows."""
    chosen = file_class
    if not chosen and case.family and case.minor_code:
        chosen = f"{case.family}:{case.minor_code}"
    family, _, code = chosen.partition(":")
    if family not in ("component", "event") or not code:
        return "", []
    try:
        detail = catalog.get_minor(uow, family=Family(family), code=code)
    except (NotFound, InvalidInput):
        return "", []
    return chosen, detail.standards


def case_page(
    request: Request,
    uow: UnitOfWork,
    actor: Actor,
    case_id: int,
    t: Translator,
    *,
    error: str | None = None,
    error_detail: str | None = None,
    status_code: int = 200,
) -> Response:
    case = cases.get_case(uow, actor, case_id)
    timeline = cases.events(uow, actor, case_id)
    departments = _departments(uow)
    by_id = {d.id: d for d in departments}
    from cityloop.cases.settings import SETTINGS_KEY, CaseSettings
    from cityloop.cityconfig.service import get as get_setting

    evidence = get_setting(uow, SETTINGS_KEY, CaseSettings).feedback_requires_evidence
    ordered = sorted(case.allowed_actions, key=action_order)  # stable: table order within a rank
    forms = [action_form(a, evidence) for a in ordered]
    needs = {f.action for f in forms}
    context: dict[str, Any] = {
        "case": case,
        "timeline": timeline,
        "departments_by_id": by_id,
        "departments_by_code": {d.code: d for d in departments},
        "forms": forms,
        "photos": [pid for e in timeline for pid in e.attachment_ids],
        "error": error,
        "error_detail": error_detail,
        "stale": request.query_params.get("notice") == "stale",
    }
    if needs & DEPARTMENT_ACTIONS:
        context["dispatch_targets"] = _dispatch_targets(departments)
    if needs & INSPECTOR_ACTIONS:
        context["inspectors"] = [u for u in org.list_users(uow, roles=[Role.INSPECTOR]) if u.active]
    if needs & STANDARD_ACTIONS:
        chosen, rows = _standards(uow, case, request.query_params.get("file_class", ""))
        context["file_class"] = chosen
        context["standards"] = rows
        context["groups"] = class_groups(uow)
    return render(request, "case.html", status_code=status_code, **context)


@router.get("/staff/cases/{case_id}", name="case_page")
def case_view(
    request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep, case_id: int
) -> Response:
    return case_page(request, uow, actor, case_id, t)


@router.get("/staff/catalog/rows", name="standard_rows")
def standard_rows(
    request: Request, uow: UowDep, actor: StaffActor, file_class: str = ""
) -> Response:
    """The <option>s of one class's filing-standard rows (the file form swaps them in)."""
    family, _, code = file_class.partition(":")
    rows: list[FilingStandardPublic] = []
    if family in ("component", "event") and code:
        try:
            rows = catalog.get_minor(uow, family=Family(family), code=code).standards
        except (NotFound, InvalidInput):
            rows = []
    return render(request, "_standard_options.html", standards=rows, selected=None)


_ERROR_MESSAGES = {
    "reason": N_("Please give a reason."),
    "attachment_ids": N_("Add at least one photo as evidence."),
    "standard_id": N_("Choose the filing-standard row the case meets."),
    "department_code": N_("Choose the handling department."),
    "satisfaction": N_("Choose the citizen's satisfaction."),
    "inspector": N_("Choose an active inspector."),
    "action": N_("This action is not possible now; someone may have acted first."),
}


@router.post("/staff/cases/{case_id}/act", name="case_act")
def case_act(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    case_id: int,
    action: Annotated[str, Form()],
    version: Annotated[int, Form()],
    reason: Annotated[str, Form()] = "",
    department_code: Annotated[str, Form()] = "",
    inspector: Annotated[str, Form()] = "",
    standard_id: Annotated[str, Form()] = "",
    satisfaction: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    page = request.app.url_path_for("case_page", case_id=str(case_id))
    try:
        chosen = CaseAction(action)
        stage = cases.ATTACHMENT_STAGE.get(chosen)
        checked = read_photos(uow, photos or [], max_photos=3, t=t) if stage else []
        ids = [
            attachments.upload(
                uow, actor, filename=name, content=content, stage=stage or "other"
            ).id
            for name, content in checked
        ]
        req = CaseActionRequest(
            action=chosen,
            version=version,
            reason=reason.strip() or None,
            department_code=department_code.strip() or None,
            inspector=inspector.strip() or None,
            standard_id=int(standard_id) if standard_id.strip().isdigit() else None,
            satisfaction=Satisfaction(satisfaction) if satisfaction else None,
            attachment_ids=ids,
        )
        view = cases.act(uow, actor, case_id, req)
    except Conflict:
        return redirect(f"{page}?notice=stale")
    except FormProblem as problem:
        return case_page(request, uow, actor, case_id, t, error=problem.message, status_code=422)
    except (ValueError, ValidationError):
        return case_page(
            request,
            uow,
            actor,
            case_id,
            t,
            error=t.gettext("Some fields are missing or invalid"),
            status_code=422,
        )
    except CityloopError as exc:
        if isinstance(exc, NotFound) and exc.field == "case_id":
            raise
        message = _ERROR_MESSAGES.get(exc.field or "", N_("The action could not be completed."))
        return case_page(
            request,
            uow,
            actor,
            case_id,
            t,
            error=t.gettext(message),
            error_detail=exc.message,
            status_code=exc.status_code,
        )
    target = safe_next(next, default="/staff")
    return redirect(f"{target}?{urlencode({'done': view.code, 'did': chosen.value})}")


@router.get("/staff/photos/{attachment_id}", name="photo")
def photo(uow: UowDep, actor: StaffActor, attachment_id: int) -> Response:
    meta, path = attachments.open_attachment(uow, actor, attachment_id)
    return FileResponse(
        path,
        media_type=meta.content_type,
        headers={"Cache-Control": "private, max-age=3600"},
        content_disposition_type="inline",
        filename=meta.filename,
    )


# --- search --------------------------------------------------------------------------------


def _local_day(value: str, field: str, t: Translator) -> dt.date | None:
    if not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise FormProblem(field, t.gettext("Dates are written YYYY-MM-DD.")) from None


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=local_zone())


@router.get("/staff/cases", name="case_search")
def case_search(request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep) -> Response:
    params = request.query_params
    statuses = [s for s in params.getlist("status") if s in {c.value for c in CaseState}]
    channel = params.get("channel", "")
    overdue = params.get("overdue", "")
    department = params.get("department", "")
    q = params.get("q", "").strip()[:100]
    page = int(params["page"]) if params.get("page", "").isdigit() else 1
    problem: FormProblem | None = None
    result = None
    try:
        day_from = _local_day(params.get("from", ""), "from", t)
        day_to = _local_day(params.get("to", ""), "to", t)
        if day_from and day_to and day_to < day_from:
            raise FormProblem("to", t.gettext("The end date is before the start date."))
        filters = CaseFilters(
            status=[CaseState(s) for s in statuses] or None,
            department_code=department or None,
            channel=Channel(channel) if channel in {c.value for c in Channel} else None,
            overdue={"yes": True, "no": False}.get(overdue),
            reported_from=_day_start(day_from) if day_from else None,
            reported_to=_day_start(day_to + dt.timedelta(days=1)) if day_to else None,
            q=q or None,
            page=max(1, page),
            page_size=50,
        )
        result = cases.list_cases(uow, actor, filters)
    except FormProblem as exc:
        problem = exc
    except InvalidInput as exc:
        problem = FormProblem(exc.field or "form", t.gettext("Some fields are missing or invalid"))
    query = [(k, v) for k, v in params.multi_items() if k not in ("page", "lang")]
    return render(
        request,
        "search.html",
        status_code=422 if problem else 200,
        result=result,
        problem=problem,
        selected_status=set(statuses),
        channel=channel,
        overdue=overdue,
        department=department,
        q=q,
        day_from=params.get("from", ""),
        day_to=params.get("to", ""),
        departments=_dispatch_targets(_departments(uow)),
        page_query=urlencode(query),
    )


# --- the dispatcher board and the department view ------------------------------------------


def _by_deadline(items: list[CasePublic]) -> list[CasePublic]:
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(items, key=lambda c: (-c.priority, c.step_deadline or far, c.id))


REQUEST_STATES = [
    CaseState.RETURN_REQUESTED,
    CaseState.EXTENSION_REQUESTED,
    CaseState.SUSPEND_REQUESTED,
]
IN_DISPOSAL = [CaseState.DISPATCHED, *REQUEST_STATES, CaseState.SUSPENDED]


@dataclass
class DepartmentLoad:
    name: str
    cases: list[CasePublic]

    @property
    def red(self) -> int:
        return sum(1 for c in self.cases if c.light and c.light.value == "red")

    @property
    def yellow(self) -> int:
        return sum(1 for c in self.cases if c.light and c.light.value == "yellow")


@router.get("/staff/board", name="board")
def board(request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep) -> Response:
    require_roles(actor, *BOARD_ROLES)
    limit = 500
    waiting = cases.list_cases(uow, actor, CaseFilters(status=[CaseState.FILED], page_size=limit))
    requests = cases.list_cases(uow, actor, CaseFilters(status=REQUEST_STATES, page_size=limit))
    disposal = cases.list_cases(
        uow, actor, CaseFilters(status=[CaseState.DISPATCHED, CaseState.SUSPENDED], page_size=limit)
    )
    loads: dict[str, DepartmentLoad] = {}
    for c in _by_deadline(disposal.items):
        name = c.department_name or t.gettext("No department")
        loads.setdefault(name, DepartmentLoad(name, [])).cases.append(c)
    return render(
        request,
        "board.html",
        waiting=_by_deadline(waiting.items),
        waiting_total=waiting.total,
        requests=_by_deadline(requests.items),
        loads=sorted(loads.values(), key=lambda d: (-d.red, -len(d.cases), d.name)),
        disposal_total=disposal.total,
        limit=limit,
        targets=_dispatch_targets(_departments(uow)),
        notice=_notice(request, t),
    )


@router.get("/staff/department", name="department_view")
def department_view(
    request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep, department: str = ""
) -> Response:
    departments = _departments(uow)
    targets = _dispatch_targets(departments)
    if actor.role is Role.DEPARTMENT_OPERATOR:
        own = next((d for d in departments if d.id == actor.department_id), None)
        code = None  # the service scopes a department operator to its own subtree
        title = own.name if own else ""
    elif actor.role in CITYWIDE_ROLES:
        chosen = next((d for d in targets if d.code == department), None) or (
            targets[0] if targets else None
        )
        code = chosen.code if chosen else None
        title = chosen.name if chosen else ""
        if chosen is None:
            return render(
                request, "department.html", title="", sections=[], targets=targets, department=""
            )
    else:
        # Inspectors work from their inbox; a department view is not theirs.
        raise PermissionDenied(f"role '{actor.role.value}' has no department view")
    sections: list[tuple[str, list[CasePublic], int]] = []
    for label, states in (
        (t.gettext("To dispose"), [CaseState.DISPATCHED]),
        (t.gettext("Waiting for the dispatcher"), REQUEST_STATES),
        (t.gettext("Suspended"), [CaseState.SUSPENDED]),
        (
            t.gettext("Disposed, being checked"),
            [CaseState.DISPOSED, CaseState.CHECKING, CaseState.CHECKED],
        ),
        (t.gettext("Recently closed"), [CaseState.CLOSED]),
    ):
        page = cases.list_cases(
            uow,
            actor,
            CaseFilters(status=states, department_code=code, page_size=100),
        )
        items = page.items if states == [CaseState.CLOSED] else _by_deadline(page.items)
        sections.append((label, items, page.total))
    return render(
        request,
        "department.html",
        title=title,
        sections=sections,
        targets=targets if actor.role in CITYWIDE_ROLES else [],
        department=code or "",
        notice=_notice(request, t),
    )


# --- the staff report page (inspectors on a phone, hotline operators at a desk) -------------


def staff_channels(actor: Actor) -> list[Channel]:
    return [ch for ch, roles in REPORT_ROLES.items() if actor.role in roles]


@router.get("/staff/report", name="staff_report_form")
def staff_report_form(request: Request, uow: UowDep, actor: StaffActor) -> Response:
    channels = staff_channels(actor)
    if not channels:
        require_roles(actor)  # raises: this role reports on no channel
    return report_page(
        request,
        uow,
        ReportFields(channel=channels[0].value),
        template="staff_report.html",
        channels=channels,
    )


@router.post("/staff/report", name="staff_report_submit")
def staff_report_submit(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    channel: Annotated[str, Form()] = "",
    klass: Annotated[str, Form(alias="class")] = "",
    description: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    lon: Annotated[str, Form()] = "",
    lat: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form()] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    channels = staff_channels(actor)
    fields = ReportFields(
        klass=klass,
        description=description,
        address=address,
        lon=lon,
        lat=lat,
        name=name,
        phone=phone,
        email=email,
        channel=channel,
        idempotency_key=idempotency_key,
    )
    try:
        chosen = Channel(channel) if channel in {c.value for c in channels} else None
        if chosen is None:
            raise FormProblem("channel", t.gettext("Choose the channel."))
        data = build_case(fields, chosen, t)
        checked = read_photos(uow, photos or [], max_photos=get_web_settings().max_photos, t=t)
        from cityloop.web.forms import checked_idempotency_key

        reported = submit_report(
            request, uow, actor, data, checked, checked_idempotency_key(idempotency_key), t
        )
    except FormProblem as problem:
        return report_page(
            request,
            uow,
            fields,
            template="staff_report.html",
            problem=problem,
            channels=channels,
        )
    return redirect(f"/staff?{urlencode({'reported': reported.code})}")
