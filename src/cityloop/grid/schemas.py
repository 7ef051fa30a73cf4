"""Request and response shapes of the grid, and the city's grid settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cityloop.grid.components import ComponentStatus
from cityloop.grid.coords import CoordSystem
from cityloop.grid.routing import Basis, Scope, TerritorialLevel

SETTINGS_KEY = "grid"
MAX_BATCH = 10_000  # points per locate request: ~50 ms of work, a bounded response


class GridSettings(BaseModel):
    """The city's grid settings (cityconfig key ``grid``).

    ``territorial_level``: which territorial department an event goes to first (属地) [L]:
    the subdistrict (街道, the usual practice) or the community (社区).
    """

    territorial_level: TerritorialLevel = TerritorialLevel.SUBDISTRICT


class Point(BaseModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class LocateRequest(BaseModel):
    """One or more points in one stated coordinate system; a class or component asks for the
    suggested department too."""

    points: list[Point] = Field(min_length=1, max_length=MAX_BATCH)
    system: CoordSystem = Field(description="wgs84, gcj02, bd09 or cgcs2000")
    family: str | None = Field(default=None, pattern="^(component|event)$")
    minor_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    component_code: str | None = Field(default=None, pattern=r"^\d{16}$")


class RoutePublic(BaseModel):
    department_id: int | None
    department_code: str | None
    department_name: str | None
    basis: Basis
    rule_id: int | None = None


class LocatedPoint(BaseModel):
    """Where a point falls. ``lon``/``lat`` are WGS-84 (converted from the request's system)."""

    lon: float
    lat: float
    inside: bool
    adcode: str | None = None
    cell_code: str | None = None
    subdistrict_code: str | None = None
    community_code: str | None = None
    subdistrict_id: int | None = None
    community_id: int | None = None
    responsibility_code: str | None = None
    inspector_id: int | None = None
    route: RoutePublic | None = None


class LocateResponse(BaseModel):
    results: list[LocatedPoint]


class GridSummary(BaseModel):
    """A stored grid, as build, import and stats report it."""

    adcode: str
    name: str
    kind: str
    cells: int
    cut_cells: int
    cell_size: float | None
    crs: str | None
    version: int
    subdistricts: int  # distinct subdistrict segments in the codes
    communities: int  # distinct community segments
    bound_subdistrict_cells: int  # cells bound to a subdistrict department
    bound_community_cells: int
    area_km2: float
    remapped: int = 0  # responsibility/rule cell references moved to new codes
    dropped: int = 0  # references whose place has no cell any more
    seconds: float | None = None


class GridStats(GridSummary):
    areas_subdistrict: int
    areas_community: int
    components: int
    responsibilities: int
    rules: int


class AreasResult(BaseModel):
    adcode: str
    level: str
    imported: int
    bound: int
    replaced: int


class BindResult(BaseModel):
    adcode: str
    subdistrict_cells: int
    community_cells: int
    areas: int
    unmatched_segments: list[str]


class ResponsibilityCreate(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    name: str = Field(min_length=1, max_length=128)
    inspector: str = Field(description="Username of an active inspector.")
    cells: list[str] = Field(
        min_length=1,
        description="Cell codes, or 6/9/12-digit prefixes (district/subdistrict/"
        "community) selecting every cell under them.",
    )


class ResponsibilityPublic(BaseModel):
    id: int
    code: str
    name: str
    inspector_id: int
    inspector_username: str
    cells: int
    active: bool


class RuleCreate(BaseModel):
    name: str = Field(default="", max_length=128)
    family: str = Field(pattern="^(component|event)$")
    minor_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    scope: Scope
    area: str | None = Field(
        default=None, description="Department code of the community or subdistrict (scope)."
    )
    adcode: str | None = Field(default=None, pattern=r"^\d{6}$")
    cells: list[str] = Field(default_factory=list, description="Codes or prefixes (scope cells).")
    department: str = Field(description="Code of the handling department.")
    priority: int = Field(default=0, ge=-1000, le=1000)
    note: str = ""

    @field_validator("cells")
    @classmethod
    def _digits(cls, value: list[str]) -> list[str]:
        return [v.strip() for v in value if v.strip()]


class RulePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    family: str
    minor_code: str | None
    scope: Scope
    area_department_code: str | None
    adcode: str | None
    cells: int
    department_code: str
    priority: int
    active: bool


class ComponentPublic(BaseModel):
    code: str
    minor_code: str
    minor_name: str
    name: str
    lon: float  # WGS-84
    lat: float
    coord_system: str
    address: str
    cell_code: str | None
    owner_department_id: int | None
    owner_department_code: str | None
    status: ComponentStatus
    distance_m: float | None = None


class ComponentImportResult(BaseModel):
    rows: int
    added: int
    updated: int
    unchanged: int
    outside_grid: int  # located in no stored cell (kept, with no cell code)


class ProblemPublic(BaseModel):
    code: str
    message: str


class OverlapPublic(BaseModel):
    code_a: str
    code_b: str
    area_m2: float


class OutsidePublic(BaseModel):
    code: str
    area_m2: float


class ImportReportPublic(BaseModel):
    """Why a cell import was refused: every listed code with its overlap or outside area."""

    cells: int
    overlap_count: int
    overlaps: list[OverlapPublic]
    outside_count: int
    outside: list[OutsidePublic]
    problem_count: int
    problems: list[ProblemPublic]
