"""Imported cells of any shape: point assignment, tiling checks and generated codes. Pure.

A city that already has its unit grid (单元网格) drew the cells along streets and walls, not as
squares, so :class:`~cityloop.grid.domain.Grid`'s lattice arithmetic cannot index them.
:class:`PolygonGrid` answers the same questions (``locate``, ``locate_many``, ``cell``) with an
STRtree over the polygons: slower than the lattice (tens of microseconds a point instead of a
few), which is plenty for intake and the API.

**Which cell holds a point.** The cell whose polygon contains it. A point on an outline shared
by several cells belongs to the one that a step of about a millimetre towards north-north-east
(+1e-8° east, +2e-8° north) lands in: on a north-south edge that is the eastern cell, on an
east-west edge the northern one, at a corner the north-eastern one, which is the lattice grid's
half-open rule, so both kinds of grid agree. When that step lands in none of them (an edge
running exactly along the step, or the district's outer edge) the smallest code wins.

**Tiling checks** (:func:`check_tiling`) run in the district's metric projection (the CGCS2000
Gauss-Krüger zone, as for the lattice), so the report gives areas in m²: pairs of cells whose
interiors overlap by more than a tolerance, cells reaching outside the district by more than a
tolerance, invalid or non-polygonal geometry, malformed or repeated codes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

from cityloop.errors import InvalidInput
from cityloop.grid.domain import CODE_LENGTH, Area, Cell, Polygonal, _assign_codes, _transformers

GeomArray = npt.NDArray[np.object_]
IntArray = npt.NDArray[np.int64]

_NUDGE_LON = 1e-8  # degrees: ~0.9 mm east at 40°N
_NUDGE_LAT = 2e-8  # degrees: ~2.2 mm north
_CODE_RE = re.compile(r"^\d{15}$")
DEFAULT_OVERLAP_TOLERANCE_M2 = 1.0  # a 1 m² sliver in a 10,000 m² cell: digitising noise
DEFAULT_OUTSIDE_TOLERANCE_M2 = 1.0
MAX_LISTED = 200  # problems listed per kind in a report (the counts are always complete)


class CellIndex(Protocol):
    """What the service needs from a district's in-memory cells, lattice or polygons."""

    adcode: str
    codes: npt.NDArray[np.str_]
    polygons: GeomArray
    cut: npt.NDArray[np.bool_]

    def __len__(self) -> int: ...

    def locate(self, lon: float, lat: float) -> int | None: ...

    def locate_many(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> IntArray: ...

    def index_of(self, code: str) -> int | None: ...

    def cell(self, index: int) -> Cell: ...


class PolygonGrid:
    """Cells of any shape, indexed by an STRtree (see the module docstring for the rules)."""

    def __init__(
        self,
        adcode: str,
        codes: Sequence[str] | npt.NDArray[np.str_],
        polygons: Sequence[Polygonal] | GeomArray,
    ) -> None:
        self.adcode = adcode
        self.codes: npt.NDArray[np.str_] = np.asarray(codes, dtype=f"<U{CODE_LENGTH}")
        self.polygons: GeomArray = np.asarray(polygons, dtype=object)
        if len(self.codes) != len(self.polygons):
            raise InvalidInput("Cell codes and polygons differ in length.")
        self.cut = np.zeros(len(self.codes), dtype=bool)
        self._tree = shapely.STRtree(self.polygons)
        shapely.prepare(self.polygons)
        self._code_to_index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.codes)

    def __repr__(self) -> str:
        return f"PolygonGrid(adcode={self.adcode!r}, cells={len(self)})"

    def cell(self, index: int) -> Cell:
        return Cell(
            index=index,
            code=str(self.codes[index]),
            row=-1,
            col=-1,
            cut=False,
            polygon=self.polygons[index],
        )

    def index_of(self, code: str) -> int | None:
        if self._code_to_index is None:
            self._code_to_index = {c: i for i, c in enumerate(self.codes.tolist())}
        return self._code_to_index.get(code)

    def locate(self, lon: float, lat: float) -> int | None:
        """Index of the cell holding a WGS-84 point, or None."""
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        candidates = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        if len(candidates) == 0:
            return None
        if len(candidates) == 1:
            return int(candidates[0])
        return self._tie(candidates.tolist(), lon, lat)

    def _tie(self, candidates: list[int], lon: float, lat: float) -> int:
        """Several closed polygons hold the point: interior first, then the nudge rule."""
        for i in candidates:
            if shapely.contains_xy(self.polygons[i], lon, lat):
                return i
        for i in candidates:
            if shapely.contains_xy(self.polygons[i], lon + _NUDGE_LON, lat + _NUDGE_LAT):
                return i
        return min(candidates, key=lambda i: str(self.codes[i]))

    def locate_many(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> IntArray:
        """Cell index of each WGS-84 point (-1 outside), the same answers as :meth:`locate`."""
        lon = np.ascontiguousarray(lons, dtype=np.float64).ravel()
        lat = np.ascontiguousarray(lats, dtype=np.float64).ravel()
        if lon.shape != lat.shape:
            raise InvalidInput("Longitudes and latitudes differ in length.", field="lats")
        out = np.full(lon.shape[0], -1, dtype=np.int64)
        if lon.size == 0 or len(self) == 0:
            return out
        point_idx, cell_idx = self._tree.query(shapely.points(lon, lat), predicate="intersects")
        hits = np.bincount(point_idx, minlength=lon.shape[0])
        single = hits[point_idx] == 1
        out[point_idx[single]] = cell_idx[single]
        for k in np.flatnonzero(hits > 1).tolist():
            found = cell_idx[point_idx == k].tolist()
            out[k] = self._tie(found, float(lon[k]), float(lat[k]))
        return out


# --------------------------------------------------------------------------------------------
# Tiling checks


@dataclass(frozen=True, slots=True)
class Overlap:
    code_a: str
    code_b: str
    area_m2: float


@dataclass(frozen=True, slots=True)
class Outside:
    code: str
    area_m2: float  # the part of the cell outside the district


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # the cell's code, or "#n" (1-based feature number) when it has none
    message: str


@dataclass(slots=True)
class TilingReport:
    """What an import found. ``ok`` only when every list is empty; counts are complete even
    when a list is capped at :data:`MAX_LISTED` entries."""

    cells: int = 0
    overlaps: list[Overlap] = field(default_factory=list)
    overlap_count: int = 0
    outside: list[Outside] = field(default_factory=list)
    outside_count: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    total_area_m2: float = 0.0
    district_area_m2: float = 0.0

    @property
    def ok(self) -> bool:
        return self.overlap_count == 0 and self.outside_count == 0 and self.problem_count == 0

    def add_problem(self, code: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(code, message))

    def lines(self) -> list[str]:
        """The report as sentences, one per finding, for the CLI and error messages."""
        out = [f"{p.code}: {p.message}" for p in self.problems]
        out += [f"{o.code_a} and {o.code_b} overlap by {o.area_m2:.2f} m²" for o in self.overlaps]
        out += [f"{o.code} reaches {o.area_m2:.2f} m² outside the district" for o in self.outside]
        listed = len(self.problems) + len(self.overlaps) + len(self.outside)
        total = self.problem_count + self.overlap_count + self.outside_count
        if total > listed:
            out.append(f"... and {total - listed} more")
        return out

    def summary(self) -> str:
        return (
            f"{self.cells} cells: {self.overlap_count} overlapping pairs, {self.outside_count} "
            f"outside the district, {self.problem_count} other problems"
        )


def project(polygons: GeomArray, forward: Transformer) -> GeomArray:
    """WGS-84 geometries into a metric CRS, all vertices in one pyproj call."""

    def _fwd(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = forward.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([np.asarray(x), np.asarray(y)])

    return np.asarray(shapely.transform(polygons, _fwd), dtype=object)


def metric_areas(polygons: GeomArray, crs: str) -> npt.NDArray[np.float64]:
    """Each geometry's area in m², measured in ``crs`` (a Gauss-Krüger zone: < 0.01 % off)."""
    forward, _inverse = _transformers(crs)
    return np.asarray(shapely.area(project(polygons, forward)), dtype=np.float64)


def check_tiling(
    codes: Sequence[str],
    polygons: GeomArray,
    boundary: Polygonal,
    crs: str,
    *,
    adcode: str,
    overlap_tolerance_m2: float = DEFAULT_OVERLAP_TOLERANCE_M2,
    outside_tolerance_m2: float = DEFAULT_OUTSIDE_TOLERANCE_M2,
    check_codes: bool = True,
) -> TilingReport:
    """Check imported cells (WGS-84) against each other and against the district boundary.

    Overlap means the interiors meet (shared edges and corners are fine) over more than
    ``overlap_tolerance_m2``; outside means more than ``outside_tolerance_m2`` of the cell lies
    beyond the boundary. The tolerances absorb the digitising noise of a file written with a
    few decimals (a strict check still needs ~0.01 m²: projecting two collinear edges with
    different vertices leaves slivers of 1e-9 m²). ``check_codes`` False skips the code checks
    (the codes are labels, to be generated once the geometry is sound).
    """
    report = TilingReport(cells=len(codes))
    n = len(codes)
    seen: dict[str, int] = {}
    for i, code in enumerate(codes if check_codes else ()):
        label = code or f"#{i + 1}"
        if not _CODE_RE.match(code):
            report.add_problem(label, "the code is not 15 digits")
        elif not code.startswith(adcode):
            report.add_problem(code, f"the code does not start with the district's {adcode}")
        elif code[12:] == "000":
            report.add_problem(code, "the serial 000 is not a cell")
        if code in seen:
            report.add_problem(label, f"the code repeats feature #{seen[code] + 1}")
        else:
            seen[code] = i
    usable = np.zeros(n, dtype=bool)
    for i, geom in enumerate(polygons):
        label = codes[i] or f"#{i + 1}"
        if not isinstance(geom, Polygon | MultiPolygon) or geom.is_empty:
            report.add_problem(label, "the geometry is not a polygon")
        elif not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            report.add_problem(label, f"the polygon is invalid ({reason})")
        else:
            usable[i] = True
    if not usable.any():
        return report

    forward, _inverse = _transformers(crs)
    idx = np.flatnonzero(usable)
    metric = project(polygons[idx], forward)
    district = project(np.asarray([boundary], dtype=object), forward)[0]
    report.total_area_m2 = float(np.sum(shapely.area(metric)))
    report.district_area_m2 = float(shapely.area(district))

    tree = shapely.STRtree(metric)
    left, right = tree.query(metric, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if left.size:
        interiors = shapely.relate_pattern(metric[left], metric[right], "T********")
        left, right = left[interiors], right[interiors]
        areas = shapely.area(shapely.intersection(metric[left], metric[right]))
        big = areas > overlap_tolerance_m2
        order = np.argsort(-areas[big], kind="stable")
        pairs = list(zip(left[big][order].tolist(), right[big][order].tolist(), strict=True))
        report.overlap_count = len(pairs)
        for (a, b), area in zip(pairs[:MAX_LISTED], areas[big][order].tolist(), strict=False):
            report.overlaps.append(Overlap(codes[idx[a]], codes[idx[b]], float(area)))

    shapely.prepare(district)
    inside = shapely.contains(district, metric)
    loose = np.flatnonzero(~inside)
    if loose.size:
        beyond = shapely.area(shapely.difference(metric[loose], district))
        big = beyond > outside_tolerance_m2
        order = np.argsort(-beyond[big], kind="stable")
        report.outside_count = int(big.sum())
        for k, area in zip(
            loose[big][order][:MAX_LISTED].tolist(), beyond[big][order].tolist(), strict=False
        ):
            report.outside.append(Outside(codes[idx[k]], float(area)))
    return report


# --------------------------------------------------------------------------------------------
# Generated codes


def generate_codes(
    adcode: str,
    polygons: GeomArray,
    crs: str,
    *,
    subdistricts: Sequence[Area] = (),
    communities: Sequence[Area] = (),
) -> npt.NDArray[np.str_]:
    """15-digit codes for imported cells that have none, by the lattice grid's rules.

    Cells are placed in subdistricts and communities as :func:`~cityloop.grid.domain.build_grid`
    places squares (centroid, else largest overlap), and numbered west to east, north to south
    within a community, by the position of a point inside each cell on a virtual lattice whose
    side is the median cell's (so a row is a band of cells of about one cell's height). Without
    community polygons the lattice grid's synthetic blocks apply.
    """
    if len(polygons) == 0:
        return np.asarray([], dtype=f"<U{CODE_LENGTH}")
    forward, _inverse = _transformers(crs)
    metric = project(polygons, forward)
    side = max(float(np.median(np.sqrt(shapely.area(metric)))), 1.0)
    anchor = shapely.get_coordinates(shapely.point_on_surface(metric))
    x, y = anchor[:, 0], anchor[:, 1]
    cols = np.floor((x - x.min()) / side).astype(np.int64)
    rows = np.floor((y.max() - y) / side).astype(np.int64)
    # Stable order inside a virtual square: north first, then west (ties are rare).
    order = np.lexsort((x, -y, cols, rows))
    codes_sorted = _assign_codes(
        adcode, rows[order], cols[order], polygons[order], subdistricts, communities
    )
    codes = np.empty(len(polygons), dtype=f"<U{CODE_LENGTH}")
    codes[order] = codes_sorted
    return codes
