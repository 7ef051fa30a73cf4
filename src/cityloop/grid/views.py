"""HTTP routes of the grid under /api/v1/grid (thin: the service decides).

Reads are open to every logged-in user (maps and locating are everyone's work); changes to the
grid go through the CLI (``cityloop grid ...``), run by an administrator on the server.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cityloop.grid import service
from cityloop.grid.coords import CoordSystem
from cityloop.grid.schemas import (
    ComponentPublic,
    GridStats,
    LocateRequest,
    LocateResponse,
    ResponsibilityPublic,
    RulePublic,
)
from cityloop.web.deps import CurrentActor, UowDep

router = APIRouter(prefix="/api/v1/grid", tags=["grid"])

BBox = Annotated[str, Query(description="minlon,minlat,maxlon,maxlat in `system`")]
System = Annotated[
    CoordSystem, Query(description="Coordinate system of bbox and of the returned geometry.")
]
Simplify = Annotated[
    float | None,
    Query(ge=0, le=1000, description="Simplification in metres; default 1/2000 of the box."),
]


@router.get("", response_model=list[GridStats])
def grids(uow: UowDep, _actor: CurrentActor, adcode: str | None = None) -> list[GridStats]:
    """The stored grids with their counts."""
    return service.stats(uow, adcode=adcode)


@router.post("/locate", response_model=LocateResponse)
def locate(uow: UowDep, _actor: CurrentActor, request: LocateRequest) -> LocateResponse:
    """Cell, community, subdistrict and inspector of one point or a batch (up to 10,000).
    With ``family``/``minor_code``/``component_code`` the suggested department too."""
    return service.locate(uow, request)


@router.get("/cells")
def cells(
    uow: UowDep,
    _actor: CurrentActor,
    bbox: BBox,
    system: System = CoordSystem.WGS84,
    simplify: Simplify = None,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 5000,
) -> dict[str, Any]:
    """GeoJSON of the cells meeting a box (``truncated`` when more than ``limit``)."""
    return service.cells_geojson(uow, bbox=bbox, system=system, simplify_m=simplify, limit=limit)


@router.get("/areas")
def areas(
    uow: UowDep,
    _actor: CurrentActor,
    level: Annotated[str, Query(pattern="^(district|subdistrict|community)$")] = "subdistrict",
    bbox: Annotated[str | None, Query()] = None,
    system: System = CoordSystem.WGS84,
    simplify: Simplify = None,
) -> dict[str, Any]:
    """GeoJSON of district boundaries, subdistricts or communities."""
    return service.areas_geojson(uow, level=level, bbox=bbox, system=system, simplify_m=simplify)


@router.get("/components")
def components(
    uow: UowDep,
    _actor: CurrentActor,
    bbox: BBox,
    system: System = CoordSystem.WGS84,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 5000,
) -> dict[str, Any]:
    """GeoJSON points of the components in a box."""
    return service.components_geojson(uow, bbox=bbox, system=system, limit=limit)


@router.get("/components/near", response_model=list[ComponentPublic])
def components_near(
    uow: UowDep,
    _actor: CurrentActor,
    lon: float,
    lat: float,
    system: CoordSystem,
    radius: Annotated[float, Query(gt=0, le=5000)] = 50.0,
    minor_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ComponentPublic]:
    """Components within ``radius`` metres of a point, nearest first (to link a case)."""
    return service.components_near(
        uow,
        lon=lon,
        lat=lat,
        system=system,
        radius_m=radius,
        minor_code=minor_code,
        limit=limit,
    )


@router.get("/components/{code}", response_model=ComponentPublic)
def component(uow: UowDep, _actor: CurrentActor, code: str) -> ComponentPublic:
    return service.get_component(uow, code)


@router.get("/responsibilities", response_model=list[ResponsibilityPublic])
def responsibilities(uow: UowDep, _actor: CurrentActor) -> list[ResponsibilityPublic]:
    return service.list_responsibilities(uow)


@router.get("/rules", response_model=list[RulePublic])
def rules(uow: UowDep, _actor: CurrentActor) -> list[RulePublic]:
    return service.list_rules(uow)
