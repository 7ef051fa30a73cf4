"""Admin page of the unit grid (单元网格): build from a boundary, import cells, import areas.

Every change goes through ``cityloop.grid.service`` (which checks the admin role again and
writes the audit row). Imports are all or nothing; a refused cell import shows its report: the
overlapping pairs and the cells outside the district with their areas in m², and the other
problems, each with its code.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import Response

from cityloop.db.uow import UnitOfWork
from cityloop.errors import CityloopError, InvalidInput
from cityloop.grid import service as grid
from cityloop.grid.boundaries import Boundary
from cityloop.grid.coords import CoordSystem
from cityloop.grid.domain import DEFAULT_CELL_SIZE
from cityloop.grid.irregular import DEFAULT_OUTSIDE_TOLERANCE_M2, DEFAULT_OVERLAP_TOLERANCE_M2
from cityloop.grid.schemas import GridSummary
from cityloop.org.domain import Role
from cityloop.web.deps import UowDep
from cityloop.web.i18n import N_, Translator
from cityloop.web.render import PageRoute, StaffActor, TranslatorDep, render, require_roles
from cityloop.web.security import CsrfChecked
from cityloop.web.settings import get_web_settings

router = APIRouter(route_class=PageRoute, include_in_schema=False, prefix="/staff/admin/grid")

MAX_GRID_FILE = 200 * 1024 * 1024  # a district's cells as GeoJSON: tens of MB
GEO_SUFFIXES = (".geojson", ".json", ".gpkg")
MIN_CELL, MAX_CELL = 10.0, 5000.0

SYSTEMS: list[tuple[str, str]] = [
    (CoordSystem.WGS84.value, N_("WGS-84 (GPS, OpenStreetMap, Tianditu)")),
    (CoordSystem.CGCS2000.value, N_("CGCS2000 (national surveying)")),
    (CoordSystem.GCJ02.value, N_("GCJ-02 (AMap, Tencent)")),
    (CoordSystem.BD09.value, N_("BD-09 (Baidu)")),
]


class UploadProblem(InvalidInput):
    """A file that cannot be read as a GeoJSON or GeoPackage upload."""


def _save(upload: UploadFile | None, folder: Path, t: Translator, *, required: bool) -> Path | None:
    """Copy an upload into its own folder under its own name (the readers go by the suffix,
    and the grid records the file name as its source)."""
    if upload is None or not upload.filename:
        if required:
            raise UploadProblem(t.gettext("Choose a file."), field="file")
        return None
    name = Path(upload.filename.replace("\\", "/")).name
    if Path(name).suffix.lower() not in GEO_SUFFIXES or name.startswith("."):
        raise UploadProblem(
            t.gettext("Give a GeoJSON (.geojson, .json) or GeoPackage (.gpkg) file."),
            field="file",
        )
    own = folder / str(len(list(folder.iterdir())))
    own.mkdir()
    target = own / name
    written = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            written += len(chunk)
            if written > MAX_GRID_FILE:
                raise UploadProblem(t.gettext("The file is larger than 200 MB."), field="file")
            out.write(chunk)
    if written == 0:
        raise UploadProblem(t.gettext("The file is empty."), field="file")
    return target


def _system(value: str, t: Translator) -> CoordSystem:
    try:
        return CoordSystem(value)
    except ValueError:
        raise InvalidInput(t.gettext("Choose the coordinate system."), field="system") from None


def _number(value: str, field: str, t: Translator, low: float, high: float) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        number = float("nan")
    if not (low <= number <= high):
        raise InvalidInput(
            t.gettext("Give a number between %(low)s and %(high)s.")
            % {"low": f"{low:g}", "high": f"{high:g}"},
            field=field,
        )
    return number


def _boundary(
    upload: UploadFile | None, system: str, adcode: str, folder: Path, t: Translator
) -> Boundary | None:
    path = _save(upload, folder, t, required=False)
    if path is None:
        return None
    return grid.boundary_from_file(path, adcode=adcode, system=_system(system, t))


def grid_page(request: Request, uow: UnitOfWork, **extra: Any) -> Response:
    status = int(extra.pop("status_code", 200))
    web = get_web_settings()
    return render(
        request,
        "admin/grid.html",
        status_code=status,
        grids=grid.stats(uow),
        systems=SYSTEMS,
        default_adcode=web.district_adcode,
        default_cell=DEFAULT_CELL_SIZE,
        overlap_tolerance=DEFAULT_OVERLAP_TOLERANCE_M2,
        outside_tolerance=DEFAULT_OUTSIDE_TOLERANCE_M2,
        form=extra.pop("form", {}),
        **extra,
    )


def _failed(
    request: Request, uow: UnitOfWork, t: Translator, exc: CityloopError, **extra: Any
) -> Response:
    if isinstance(exc, grid.ImportRejected):
        return grid_page(
            request,
            uow,
            status_code=422,
            problem=t.gettext("The cells were not imported; nothing was changed."),
            rejected=grid.report_public(exc.report),
            **extra,
        )
    lines = exc.message.splitlines()
    return grid_page(
        request,
        uow,
        status_code=exc.status_code,
        problem=t.gettext("Not saved: %(message)s") % {"message": lines[0] if lines else ""},
        problems=lines[1:],
        **extra,
    )


@router.get("", name="grid_import")
def grid_admin(request: Request, uow: UowDep, actor: StaffActor) -> Response:
    require_roles(actor, Role.ADMIN)
    return grid_page(request, uow)


@router.post("/build", name="grid_build")
def grid_build(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    adcode: Annotated[str, Form()] = "",
    cell_size: Annotated[str, Form()] = "",
    crs: Annotated[str, Form()] = "",
    boundary: Annotated[UploadFile | None, File()] = None,
    boundary_system: Annotated[str, Form()] = "",
) -> Response:
    require_roles(actor, Role.ADMIN)
    form = {"form": "build", "adcode": adcode, "cell_size": cell_size, "crs": crs}
    try:
        size = _number(cell_size, "cell_size", t, MIN_CELL, MAX_CELL)
        with tempfile.TemporaryDirectory(prefix="cityloop-grid-") as tmp:
            district = _boundary(boundary, boundary_system, adcode.strip(), Path(tmp), t)
            summary = grid.build(
                uow,
                actor,
                adcode=adcode.strip(),
                cell_size=size,
                crs=crs.strip() or None,
                boundary=district,
            )
    except CityloopError as exc:
        return _failed(request, uow, t, exc, form=form)
    return grid_page(request, uow, summary=summary, done=N_("Grid built"))


@router.post("/import", name="grid_import_cells")
def grid_import_cells(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    file: Annotated[UploadFile | None, File()] = None,
    adcode: Annotated[str, Form()] = "",
    system: Annotated[str, Form()] = "",
    code_field: Annotated[str, Form()] = "code",
    layer: Annotated[str, Form()] = "",
    overlap_tolerance: Annotated[str, Form()] = "",
    outside_tolerance: Annotated[str, Form()] = "",
    dry_run: Annotated[str, Form()] = "",
    boundary: Annotated[UploadFile | None, File()] = None,
    boundary_system: Annotated[str, Form()] = "",
) -> Response:
    require_roles(actor, Role.ADMIN)
    form = {
        "form": "import",
        "adcode": adcode,
        "system": system,
        "code_field": code_field,
        "layer": layer,
        "overlap_tolerance": overlap_tolerance,
        "outside_tolerance": outside_tolerance,
        "dry_run": dry_run,
    }
    try:
        chosen = _system(system, t)
        overlap = _number(
            overlap_tolerance or str(DEFAULT_OVERLAP_TOLERANCE_M2), "overlap_tolerance", t, 0, 1e6
        )
        outside = _number(
            outside_tolerance or str(DEFAULT_OUTSIDE_TOLERANCE_M2), "outside_tolerance", t, 0, 1e6
        )
        with tempfile.TemporaryDirectory(prefix="cityloop-grid-") as tmp:
            folder = Path(tmp)
            path = _save(file, folder, t, required=True)
            assert path is not None
            district = _boundary(boundary, boundary_system, adcode.strip(), folder, t)
            summary = grid.import_cells(
                uow,
                actor,
                path,
                adcode=adcode.strip(),
                system=chosen,
                code_field=code_field.strip() or "code",
                layer=layer.strip() or None,
                boundary=district,
                overlap_tolerance_m2=overlap,
                outside_tolerance_m2=outside,
                dry_run=bool(dry_run),
            )
    except CityloopError as exc:
        return _failed(request, uow, t, exc, form=form)
    done = N_("Checked (dry run): the cells can be imported") if dry_run else N_("Cells imported")
    return grid_page(request, uow, summary=summary, done=done)


@router.post("/areas", name="grid_import_areas")
def grid_import_areas(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    file: Annotated[UploadFile | None, File()] = None,
    level: Annotated[str, Form()] = "",
    system: Annotated[str, Form()] = "",
    adcode: Annotated[str, Form()] = "",
    code_field: Annotated[str, Form()] = "code",
    name_field: Annotated[str, Form()] = "name",
    parent_field: Annotated[str, Form()] = "parent",
    layer: Annotated[str, Form()] = "",
    rebuild: Annotated[str, Form()] = "",
) -> Response:
    require_roles(actor, Role.ADMIN)
    form = {
        "form": "areas",
        "level": level,
        "system": system,
        "adcode": adcode,
        "code_field": code_field,
        "name_field": name_field,
        "parent_field": parent_field,
        "layer": layer,
        "rebuild": rebuild,
    }
    try:
        if level not in ("subdistrict", "community"):
            raise InvalidInput(t.gettext("Choose the level of the areas."), field="level")
        chosen = _system(system, t)
        with tempfile.TemporaryDirectory(prefix="cityloop-grid-") as tmp:
            path = _save(file, Path(tmp), t, required=True)
            assert path is not None
            areas = grid.import_areas(
                uow,
                actor,
                path,
                level=level,
                system=chosen,
                adcode=adcode.strip() or None,
                code_field=code_field.strip() or "code",
                name_field=name_field.strip() or "name",
                parent_field=parent_field.strip() or "parent",
                layer=layer.strip() or None,
            )
    except CityloopError as exc:
        return _failed(request, uow, t, exc, form=form)
    summary: GridSummary | None = None
    if rebuild:
        current = grid.stats(uow, adcode=areas.adcode)[0]
        if current.kind != "lattice" or current.cell_size is None:
            return grid_page(
                request,
                uow,
                areas=areas,
                status_code=422,
                problem=t.gettext(
                    "The areas were imported, but only a built grid can be rebuilt: import "
                    "the cells again so their codes follow the areas."
                ),
            )
        try:
            summary = grid.build(
                uow, actor, adcode=areas.adcode, cell_size=current.cell_size, crs=current.crs
            )
        except CityloopError as exc:
            return _failed(request, uow, t, exc, areas=areas)
    return grid_page(request, uow, areas=areas, summary=summary, done=N_("Areas imported"))


@router.post("/bind", name="grid_bind")
def grid_bind(
    request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep, _csrf: CsrfChecked
) -> Response:
    require_roles(actor, Role.ADMIN)
    try:
        bound = grid.bind_departments(uow, actor)
    except CityloopError as exc:
        return _failed(request, uow, t, exc)
    return grid_page(request, uow, bound=bound, done=N_("Cells bound to departments"))
