"""Admin pages: users, departments, the catalog workbook, calendar overrides.

Every change goes through the owning capability's service (which checks the admin role again
and writes the audit row); these handlers only read forms and show results.

Grid import is not here yet: it belongs to the grid storage layer, still being built. When it
lands, its page registers the route name ``grid_import`` and the admin index links to it.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import ValidationError
from starlette.responses import Response

from cityloop.catalog import service as catalog
from cityloop.catalog.domain import Family
from cityloop.catalog.workbook import WorkbookRejected
from cityloop.errors import CityloopError, InvalidInput
from cityloop.org import service as org
from cityloop.org.domain import DepartmentKind, Role
from cityloop.org.schemas import DepartmentCreate, UserCreate
from cityloop.web.deps import UowDep
from cityloop.web.i18n import Translator
from cityloop.web.render import (
    PageRoute,
    StaffActor,
    TranslatorDep,
    redirect,
    render,
    require_roles,
)
from cityloop.web.security import CsrfChecked
from cityloop.workcal import service as workcal
from cityloop.workcal.schedule import DayKind

router = APIRouter(route_class=PageRoute, include_in_schema=False, prefix="/staff/admin")

MAX_WORKBOOK = 20 * 1024 * 1024


def _problem(t: Translator, exc: CityloopError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ()))
        return t.gettext("Check the field “%(field)s”: %(message)s") % {
            "field": field,
            "message": err.get("msg", ""),
        }
    return t.gettext("Not saved: %(message)s") % {"message": exc.message}


@router.get("", name="admin_index")
def admin_index(request: Request, actor: StaffActor) -> Response:
    require_roles(actor, Role.ADMIN)
    return render(request, "admin/index.html")


# --- users ---------------------------------------------------------------------------------


def users_page(
    request: Request,
    uow: Any,
    problem: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    departments = org.list_departments(uow)
    return render(
        request,
        "admin/users.html",
        status_code=status,
        users=org.list_users(uow),
        departments=departments,
        departments_by_id={d.id: d for d in departments},
        roles=list(Role),
        problem=problem,
        form=form or {},
        saved=request.query_params.get("saved", ""),
    )


@router.get("/users", name="admin_users")
def admin_users(request: Request, uow: UowDep, actor: StaffActor) -> Response:
    require_roles(actor, Role.ADMIN)
    return users_page(request, uow)


@router.post("/users", name="admin_users_add")
def admin_users_add(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    username: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    department_code: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
) -> Response:
    require_roles(actor, Role.ADMIN)
    form = {
        "username": username,
        "display_name": display_name,
        "role": role,
        "department_code": department_code,
        "phone": phone,
    }
    try:
        data = UserCreate(
            username=username.strip(),
            display_name=display_name.strip(),
            password=password,
            role=Role(role),
            department_code=department_code,
            phone=phone.strip() or None,
        )
        org.add_user(uow, actor, data)
    except ValueError as exc:  # ValidationError is a ValueError; so is a bad Role
        problem = (
            _problem(t, exc) if isinstance(exc, ValidationError) else t.gettext("Choose a role.")
        )
        return users_page(request, uow, problem, 422, form)
    except CityloopError as exc:
        return users_page(request, uow, _problem(t, exc), exc.status_code, form)
    return redirect(f"/staff/admin/users?saved={data.username}")


@router.post("/users/{username}/active", name="admin_users_active")
def admin_users_active(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    _csrf: CsrfChecked,
    username: str,
    active: Annotated[str, Form()] = "0",
) -> Response:
    require_roles(actor, Role.ADMIN)
    if username == actor.username and active != "1":
        raise InvalidInput("you cannot disable your own account", field="active")
    org.set_active(uow, actor, username=username, active=active == "1")
    return redirect(f"/staff/admin/users?saved={username}")


@router.post("/users/{username}/password", name="admin_users_password")
def admin_users_password(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    username: str,
    password: Annotated[str, Form()] = "",
) -> Response:
    require_roles(actor, Role.ADMIN)
    try:
        org.set_password(uow, actor, username=username, password=password)
    except CityloopError as exc:
        return users_page(request, uow, _problem(t, exc), exc.status_code)
    return redirect(f"/staff/admin/users?saved={username}")


# --- departments ---------------------------------------------------------------------------


def departments_page(
    request: Request,
    uow: Any,
    problem: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    departments = org.list_departments(uow)
    by_id = {d.id: d for d in departments}
    # Tree order: each department after its parent, indented by depth.
    children: dict[int | None, list[Any]] = {}
    for d in departments:
        children.setdefault(d.parent_id if d.parent_id in by_id else None, []).append(d)
    ordered: list[tuple[Any, int]] = []

    def walk(parent: int | None, depth: int) -> None:
        for d in children.get(parent, []):
            ordered.append((d, depth))
            walk(d.id, depth + 1)

    walk(None, 0)
    return render(
        request,
        "admin/departments.html",
        status_code=status,
        departments=ordered,
        kinds=list(DepartmentKind),
        parents=departments,
        problem=problem,
        form=form or {},
        saved=request.query_params.get("saved", ""),
    )


@router.get("/departments", name="admin_departments")
def admin_departments(request: Request, uow: UowDep, actor: StaffActor) -> Response:
    require_roles(actor, Role.ADMIN)
    return departments_page(request, uow)


@router.post("/departments", name="admin_departments_add")
def admin_departments_add(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    code: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    parent_code: Annotated[str, Form()] = "",
    grid_code: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
) -> Response:
    require_roles(actor, Role.ADMIN)
    form = {
        "code": code,
        "name": name,
        "kind": kind,
        "parent_code": parent_code,
        "grid_code": grid_code,
        "phone": phone,
    }
    try:
        data = DepartmentCreate(
            code=code.strip(),
            name=name.strip(),
            kind=DepartmentKind(kind),
            parent_code=parent_code or None,
            grid_code=grid_code.strip() or None,
            phone=phone.strip() or None,
        )
        org.create_department(uow, actor, data)
    except ValueError as exc:
        problem = (
            _problem(t, exc) if isinstance(exc, ValidationError) else t.gettext("Choose a kind.")
        )
        return departments_page(request, uow, problem, 422, form)
    except CityloopError as exc:
        return departments_page(request, uow, _problem(t, exc), exc.status_code, form)
    return redirect(f"/staff/admin/departments?saved={data.code}")


# --- catalog -------------------------------------------------------------------------------


def catalog_page(request: Request, uow: Any, **extra: Any) -> Response:
    status = int(extra.pop("status_code", 200))
    return render(
        request,
        "admin/catalog.html",
        status_code=status,
        counts=catalog.catalog_counts(uow),
        **extra,
    )


@router.get("/catalog", name="admin_catalog")
def admin_catalog(request: Request, uow: UowDep, actor: StaffActor) -> Response:
    require_roles(actor, Role.ADMIN)
    return catalog_page(request, uow)


@router.post("/catalog/import", name="admin_catalog_import")
def admin_catalog_import(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    workbook: Annotated[UploadFile, File()],
    dry_run: Annotated[str, Form()] = "",
) -> Response:
    require_roles(actor, Role.ADMIN)
    content = workbook.file.read(MAX_WORKBOOK + 1)
    if not content or len(content) > MAX_WORKBOOK:
        return catalog_page(
            request,
            uow,
            status_code=422,
            problem=t.gettext("Choose an .xlsx workbook of at most 20 MB."),
        )
    name = Path(workbook.filename or "catalog.xlsx").name
    with tempfile.TemporaryDirectory(prefix="cityloop-import-") as tmp:
        path = Path(tmp) / (name if name.lower().endswith(".xlsx") else f"{name}.xlsx")
        path.write_bytes(content)
        try:
            report = catalog.import_workbook(uow, actor, path=path, dry_run=bool(dry_run))
        except WorkbookRejected as exc:
            return catalog_page(
                request,
                uow,
                status_code=422,
                problem=t.gettext("The workbook was not imported; nothing was changed."),
                problems=[str(p) for p in exc.problems],
            )
        except CityloopError as exc:
            return catalog_page(request, uow, status_code=exc.status_code, problem=_problem(t, exc))
    return catalog_page(request, uow, report=report)


@router.get("/catalog/export.xlsx", name="admin_catalog_export")
def admin_catalog_export(
    request: Request, uow: UowDep, actor: StaffActor, family: str = ""
) -> Response:
    require_roles(actor, Role.ADMIN)
    chosen = Family(family) if family in {f.value for f in Family} else None
    with tempfile.TemporaryDirectory(prefix="cityloop-export-") as tmp:
        path = Path(tmp) / "catalog.xlsx"
        catalog.export_workbook(uow, path=path, family=chosen)
        content = path.read_bytes()
    stamp = dt.date.today().strftime("%Y%m%d")
    return Response(
        content,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="cityloop-catalog-{stamp}.xlsx"'},
    )


# --- calendar overrides --------------------------------------------------------------------


def calendar_page(
    request: Request, uow: Any, year: int | None, problem: str | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "admin/calendar.html",
        status_code=status,
        overrides=workcal.list_overrides(uow, year=year),
        covered=workcal.list_covered_years(uow),
        year=year,
        kinds=list(DayKind),
        problem=problem,
        saved=request.query_params.get("saved", ""),
    )


def _year(value: str) -> int | None:
    return int(value) if value.isdigit() and 2000 <= int(value) <= 2100 else None


@router.get("/calendar", name="admin_calendar")
def admin_calendar(request: Request, uow: UowDep, actor: StaffActor, year: str = "") -> Response:
    require_roles(actor, Role.ADMIN)
    return calendar_page(request, uow, _year(year))


@router.post("/calendar", name="admin_calendar_add")
def admin_calendar_add(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    day: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    require_roles(actor, Role.ADMIN)
    try:
        parsed = dt.date.fromisoformat(day.strip())
    except ValueError:
        return calendar_page(request, uow, None, t.gettext("Dates are written YYYY-MM-DD."), 422)
    try:
        workcal.add_override(uow, actor, day=parsed, kind=kind, note=note)
    except CityloopError as exc:
        return calendar_page(request, uow, None, _problem(t, exc), exc.status_code)
    return redirect(f"/staff/admin/calendar?year={parsed.year}&saved={parsed.isoformat()}")


@router.post("/calendar/{day}/remove", name="admin_calendar_remove")
def admin_calendar_remove(
    request: Request, uow: UowDep, actor: StaffActor, _csrf: CsrfChecked, day: dt.date
) -> Response:
    require_roles(actor, Role.ADMIN)
    workcal.remove_override(uow, actor, day=day)
    return redirect(f"/staff/admin/calendar?year={day.year}")
