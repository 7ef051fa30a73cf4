"""A small synthetic district with subdistricts, communities and their departments.

District 110199 (not a real adcode) is a 2.6 km x 2.8 km rectangle in Haidian. Subdistrict 001
is its western half, 002 its eastern half; 001 has communities 001 (north) and 002 (south), 002
has community 001. The departments carry those grid codes, so built cells bind to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shapely.geometry import box, mapping
from tests.world import PASSWORD, World

from cityloop.catalog import service as catalog
from cityloop.db.engine import Database
from cityloop.grid import service
from cityloop.grid.boundaries import Boundary
from cityloop.grid.schemas import GridSummary
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, Actor, DepartmentKind, Role
from cityloop.org.schemas import DepartmentCreate, UserCreate

ADCODE = "110199"
WEST, SOUTH, EAST, NORTH = 116.300, 39.950, 116.330, 39.975
MID_LON, MID_LAT = 116.315, 39.9625
DISTRICT = Boundary(adcode=ADCODE, name="测试区", geometry=box(WEST, SOUTH, EAST, NORTH))

# Points well inside each community (WGS-84).
P_A1 = (116.3052, 39.9703)  # subdistrict 001, community 001 (north-west)
P_A2 = (116.3052, 39.9551)  # subdistrict 001, community 002 (south-west)
P_B1 = (116.3251, 39.9553)  # subdistrict 002, community 001 (east)
OUTSIDE = (116.40, 39.90)


@dataclass(frozen=True)
class Territory:
    sd_a: int
    sd_b: int
    comm_a1: int
    comm_a2: int
    comm_b1: int
    inspector2: Actor


def write_geojson(path: Path, features: list[dict[str, object]]) -> Path:
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    return path


def area_files(tmp_path: Path) -> tuple[Path, Path]:
    pad = 0.01  # areas reach beyond the district: only the part inside matters
    subs = [
        {
            "properties": {"code": "001", "name": "甲街道"},
            "geometry": mapping(box(WEST - pad, SOUTH - pad, MID_LON, NORTH + pad)),
        },
        {
            "properties": {"code": "002", "name": "乙街道"},
            "geometry": mapping(box(MID_LON, SOUTH - pad, EAST + pad, NORTH + pad)),
        },
    ]
    comms = [
        {
            "properties": {"code": "001", "parent": "001", "name": "甲一社区"},
            "geometry": mapping(box(WEST - pad, MID_LAT, MID_LON, NORTH + pad)),
        },
        {
            "properties": {"code": "002", "parent": "001", "name": "甲二社区"},
            "geometry": mapping(box(WEST - pad, SOUTH - pad, MID_LON, MID_LAT)),
        },
        {
            "properties": {"code": "110199002001", "name": "乙一社区"},
            "geometry": mapping(box(MID_LON, SOUTH - pad, EAST + pad, NORTH + pad)),
        },
    ]
    for f in subs + comms:
        f["type"] = "Feature"
    return (
        write_geojson(tmp_path / "subdistricts.geojson", subs),
        write_geojson(tmp_path / "communities.geojson", comms),
    )


def make_departments(db: Database) -> Territory:
    def dept(code: str, kind: DepartmentKind, grid_code: str, parent: str | None = None) -> int:
        data = DepartmentCreate(
            code=code, name=code, kind=kind, grid_code=grid_code, parent_code=parent
        )
        return org.create_department(db.uow(), SYSTEM_ACTOR, data).id

    sd_a = dept("sd-a", DepartmentKind.SUBDISTRICT, "001")
    sd_b = dept("sd-b", DepartmentKind.SUBDISTRICT, "002")
    comm_a1 = dept("comm-a1", DepartmentKind.COMMUNITY, "001", "sd-a")
    comm_a2 = dept("comm-a2", DepartmentKind.COMMUNITY, "002", "sd-a")
    comm_b1 = dept("comm-b1", DepartmentKind.COMMUNITY, "001", "sd-b")
    user = org.add_user(
        db.uow(),
        SYSTEM_ACTOR,
        UserCreate(
            username="inspector2",
            display_name="Inspector Two",
            password=PASSWORD,
            role=Role.INSPECTOR,
            department_code="centre",
        ),
    )
    inspector2 = org.load_actor(db.uow(), user_id=user.id)
    return Territory(sd_a, sd_b, comm_a1, comm_a2, comm_b1, inspector2)


def build_district(
    db: Database, world: World, tmp_path: Path, *, cell: float = 100.0
) -> tuple[Territory, GridSummary]:
    """Departments, areas and a built grid of 110199; the default catalog loaded."""
    del world  # the named world must exist (centre, drainage, users)
    territory = make_departments(db)
    subs, comms = area_files(tmp_path)
    service.import_areas(
        db.uow(), SYSTEM_ACTOR, subs, level="subdistrict", system="wgs84", adcode=ADCODE
    )
    service.import_areas(
        db.uow(), SYSTEM_ACTOR, comms, level="community", system="wgs84", adcode=ADCODE
    )
    summary = service.build(
        db.uow(), SYSTEM_ACTOR, adcode=ADCODE, cell_size=cell, boundary=DISTRICT
    )
    catalog.load_defaults(db.uow(), SYSTEM_ACTOR)
    return territory, summary
