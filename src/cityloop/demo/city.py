"""Build the demo city: Haidian's grid, demo departments and staff, the default catalog and a
year of case history. Every name it makes up says 演示 (demo).

The subdistrict and community boundaries are synthetic (Voronoi regions inside Haidian's real
outline) and named as demo units: cityloop ships no real sub-district boundaries, and a demo
must not pass made-up lines off as real ones.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import insert, select

from cityloop.cases.clocks import Context
from cityloop.cases.settings import SETTINGS_KEY, CaseSettings
from cityloop.catalog import service as catalog
from cityloop.catalog.models import FilingStandard, MinorClass
from cityloop.cityconfig.models import CitySetting
from cityloop.cityconfig.service import load as load_setting
from cityloop.db.base import utcnow
from cityloop.db.engine import Database
from cityloop.demo import live, writer
from cityloop.demo.history import DemoCell, DemoClass, DemoStaff, HistorySimulator
from cityloop.grid import service as grid_service
from cityloop.grid.boundaries import geodesic_area_m2, load_boundary
from cityloop.grid.domain import Area
from cityloop.grid.irregular import CellIndex
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, DepartmentKind, Role
from cityloop.org.models import Department
from cityloop.org.schemas import DepartmentCreate, UserCreate
from cityloop.workcal.service import calendar_in

DEMO_KEY = "demo"
DEMO_PASSWORD = "cityloop-demo"
ADCODE = "110108"  # Haidian, Beijing: the district of seed report 004

# One login per role; the password is printed by `cityloop demo` and in the README.
DEMO_LOGINS: dict[Role, tuple[str, str]] = {
    Role.INSPECTOR: ("inspector", "centre"),
    Role.INTAKE_OPERATOR: ("intake", "centre"),
    Role.SHIFT_SUPERVISOR: ("supervisor", "centre"),
    Role.DISPATCHER: ("dispatcher", "centre"),
    Role.DEPARTMENT_OPERATOR: ("operator", "drainage"),
    Role.LEADER: ("leader", "centre"),
    Role.ADMIN: ("admin", "centre"),
}

HANDLING: list[tuple[str, str]] = [
    ("drainage", "排水管理中心(演示)"),
    ("roads", "市政道路管理所(演示)"),
    ("lighting", "路灯管理所(演示)"),
    ("sanitation", "环境卫生服务中心(演示)"),
    ("greening", "园林绿化服务中心(演示)"),
    ("enforcement", "城管执法队(演示)"),
    ("traffic", "交通设施管理所(演示)"),
    ("housing", "房屋管理中心(演示)"),
]

# Which handling departments take which major class (family, major code).
MAJOR_OWNERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("component", "01"): ("drainage", "lighting", "roads"),
    ("component", "02"): ("traffic", "roads"),
    ("component", "03"): ("sanitation",),
    ("component", "04"): ("greening",),
    ("component", "05"): ("housing",),
    ("component", "06"): ("roads",),
    ("event", "01"): ("sanitation", "enforcement"),
    ("event", "02"): ("enforcement",),
    ("event", "03"): ("enforcement", "roads"),
    ("event", "04"): ("enforcement",),
    ("event", "05"): ("drainage", "roads"),
    ("event", "06"): ("enforcement",),
}
# Events of street order and appearance go to the territory first (事件先属地).
TERRITORIAL_MAJORS = {("event", "01"), ("event", "02"), ("event", "04"), ("event", "06")}

SUBDISTRICTS = 12
COMMUNITIES_PER_SUBDISTRICT = 10


@dataclass
class DemoReport:
    reused: bool
    cases: int
    events: int
    cells: int
    seconds: float


def is_built(database: Database) -> bool:
    uow = database.uow()
    with uow.read():
        row = uow.session.get(CitySetting, DEMO_KEY)
        return bool(row and row.value.get("complete"))


def build(
    database: Database,
    *,
    cases: int,
    days: int = 365,
    seed: int = 20261122,
    now: dt.datetime | None = None,
    processes: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoReport:
    """Build the whole demo city into an initialised, empty database."""
    started = dt.datetime.now()
    now = now or utcnow()
    say = progress or (lambda _stage, _done, _total: None)
    rng = random.Random(seed)
    say("departments and staff", 0, 1)
    subdistrict_areas, community_areas = _synthetic_areas(rng)
    dept_ids = _departments(database, subdistrict_areas, community_areas)
    staff = _staff(database, dept_ids, rng)
    say("catalog", 0, 1)
    catalog.load_defaults(database.uow(), SYSTEM_ACTOR)
    say("grid", 0, 1)
    grid = store_grid(database, subdistrict_areas, community_areas)
    cells, weights = _cells(grid, dept_ids, rng)
    classes = _classes(database, dept_ids, rng)
    uow = database.uow()
    with uow.read():
        settings = load_setting(uow.session, SETTINGS_KEY, CaseSettings)
        ctx = Context(
            settings=settings, policy=settings.policy(), calendar=calendar_in(uow.session)
        )
    department_pace = {dept_ids[code]: rng.uniform(0.55, 1.45) for code, _ in HANDLING}
    department_pace.update({dept_ids[a.name]: rng.uniform(0.6, 1.4) for a in subdistrict_areas})
    simulator = HistorySimulator(
        ctx=ctx,
        classes=classes,
        cells=cells,
        cell_weights=weights,
        staff=staff,
        department_pace=department_pace,
        seed=seed,
    )
    start = now - dt.timedelta(days=days)
    with database.engine.begin() as conn:
        first_id = writer.next_case_id(conn)
        serials = writer.existing_serials(conn)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            say("case history", done, cases)

        schedule = simulator.schedule(
            first_id=first_id, start=start, end=now, count=cases, serials=serials
        )
        stats = writer.write(
            conn,
            simulator,
            schedule,
            now=now,
            seed=seed,
            serials=serials,
            processes=processes,
            progress=tick,
        )
        conn.execute(
            insert(CitySetting).values(
                key=DEMO_KEY,
                value={
                    "complete": True,
                    "cases": stats.cases,
                    "events": stats.events,
                    "built_at": now.isoformat(),
                },
                updated_at=now,
            )
        )
    with database.engine.begin() as conn:
        # Fresh statistics after a bulk load: without them SQLite's planner picks poor indexes
        # for the dashboard's GROUP BYs.
        conn.exec_driver_sql("ANALYZE")
    say("live open cases", 0, 1)
    centre = cells[len(cells) // 2]
    live.ensure_every_open_state(database, now=now, cell=(centre.lon, centre.lat))
    return DemoReport(
        reused=False,
        cases=stats.cases,
        events=stats.events,
        cells=len(grid.codes),
        seconds=(dt.datetime.now() - started).total_seconds(),
    )


def store_grid(database: Database, subdistricts: list[Area], communities: list[Area]) -> CellIndex:
    """Import the demo areas and build Haidian's 100 m grid through the grid service."""
    with tempfile.TemporaryDirectory() as tmp:
        for level, areas in (("subdistrict", subdistricts), ("community", communities)):
            path = Path(tmp) / f"{level}.geojson"
            path.write_text(
                json.dumps(
                    {
                        "type": "FeatureCollection",
                        "features": [
                            {
                                "type": "Feature",
                                "properties": {"code": a.code, "name": a.name, "parent": a.parent},
                                "geometry": shapely.geometry.mapping(a.geometry),
                            }
                            for a in areas
                        ],
                    },
                    ensure_ascii=False,
                ),
                encoding="utf-8",
            )
            grid_service.import_areas(
                database.uow(), SYSTEM_ACTOR, path, level=level, system="wgs84", adcode=ADCODE
            )
    grid_service.build(database.uow(), SYSTEM_ACTOR, adcode=ADCODE, cell_size=100.0)
    uow = database.uow()
    with uow.read():
        [loaded] = [g for g in grid_service.loaded_grids(uow.session) if g.adcode == ADCODE]
    return loaded.index


def _synthetic_areas(rng: random.Random) -> tuple[list[Area], list[Area]]:
    """Voronoi subdistricts inside Haidian, each split into Voronoi communities."""
    boundary = load_boundary(ADCODE).geometry
    subdistricts = _voronoi(boundary, SUBDISTRICTS, rng)
    sub_areas = [
        Area(code=f"{i + 1:03d}", geometry=geom, name=f"演示街道{i + 1:02d}")
        for i, geom in enumerate(subdistricts)
    ]
    communities: list[Area] = []
    for sub in sub_areas:
        # About 5 km² a community, and never near 999 cells of 100 m (about 10 km²).
        count = max(3, math.ceil(geodesic_area_m2(sub.geometry) / 5e6))
        parts = _voronoi(sub.geometry, count, rng)
        small: list[shapely.Geometry] = []
        while parts:
            part = parts.pop()
            if geodesic_area_m2(part) > 8e6:
                parts.extend(_voronoi(part, 2, rng))
            else:
                small.append(part)
        small.sort(key=lambda g: (-round(g.centroid.y, 3), g.centroid.x))
        for j, geom in enumerate(small):
            communities.append(
                Area(
                    code=f"{j + 1:03d}",
                    geometry=geom,
                    name=f"{sub.name}演示社区{j + 1:02d}",
                    parent=sub.code,
                )
            )
    return sub_areas, communities


def _voronoi(region: shapely.Geometry, n: int, rng: random.Random) -> list[shapely.Geometry]:
    minx, miny, maxx, maxy = region.bounds
    prepared = shapely.prepared.prep(region) if hasattr(shapely, "prepared") else None
    seeds: list[shapely.Point] = []
    while len(seeds) < n:
        p = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if prepared.contains(p) if prepared else region.contains(p):
            seeds.append(p)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=region)
    parts = [shapely.intersection(g, region) for g in shapely.get_parts(cells)]
    # Order west to east, north to south so codes read like a map.
    parts = [p for p in parts if not p.is_empty]
    parts.sort(key=lambda g: (-round(g.centroid.y, 2), g.centroid.x))
    return parts


def _departments(
    database: Database, subdistricts: list[Area], communities: list[Area]
) -> dict[str, int]:
    create = org.create_department
    ids: dict[str, int] = {}
    ids["centre"] = create(
        database.uow(),
        SYSTEM_ACTOR,
        DepartmentCreate(
            code="centre", name="海淀区城市管理监督指挥中心(演示)", kind=DepartmentKind.CENTRE
        ),
    ).id
    for code, name in HANDLING:
        ids[code] = create(
            database.uow(),
            SYSTEM_ACTOR,
            DepartmentCreate(code=code, name=name, kind=DepartmentKind.HANDLING),
        ).id
    for sub in subdistricts:
        code = f"{ADCODE}{sub.code}"
        ids[sub.name] = ids[code] = create(
            database.uow(),
            SYSTEM_ACTOR,
            DepartmentCreate(
                code=code, name=sub.name, kind=DepartmentKind.SUBDISTRICT, grid_code=sub.code
            ),
        ).id
    for com in communities:
        code = f"{ADCODE}{com.parent}{com.code}"
        ids[code] = create(
            database.uow(),
            SYSTEM_ACTOR,
            DepartmentCreate(
                code=code,
                name=com.name,
                kind=DepartmentKind.COMMUNITY,
                parent_code=f"{ADCODE}{com.parent}",
                grid_code=com.code,
            ),
        ).id
    return ids


def _add_user(database: Database, username: str, name: str, role: Role, dept: str) -> int:
    return org.add_user(
        database.uow(),
        SYSTEM_ACTOR,
        UserCreate(
            username=username,
            display_name=name,
            password=DEMO_PASSWORD,
            role=role,
            department_code=dept,
        ),
    ).id


def _staff(database: Database, dept_ids: dict[str, int], rng: random.Random) -> DemoStaff:
    by_role: dict[Role, list[int]] = {role: [] for role in Role}
    names: dict[int, str] = {}
    department_operators: dict[int, list[int]] = {}
    for role, (username, dept) in DEMO_LOGINS.items():
        uid = _add_user(database, username, f"{username}(演示)", role, dept)
        by_role[role].append(uid)
        names[uid] = f"{username}(演示)"
        if role is Role.DEPARTMENT_OPERATOR:
            department_operators.setdefault(dept_ids[dept], []).append(uid)
    extra = {
        Role.INSPECTOR: 23,
        Role.INTAKE_OPERATOR: 5,
        Role.SHIFT_SUPERVISOR: 2,
        Role.DISPATCHER: 2,
        Role.LEADER: 1,
    }
    for role, count in extra.items():
        base = DEMO_LOGINS[role][0]
        for i in range(2, count + 2):
            uid = _add_user(database, f"{base}{i:02d}", f"{base}{i:02d}(演示)", role, "centre")
            by_role[role].append(uid)
            names[uid] = f"{base}{i:02d}(演示)"
    # One operator per handling department and subdistrict (drainage already has 'operator').
    uow = database.uow()
    with uow.read():
        units = uow.session.execute(
            select(Department.id, Department.code).where(
                Department.kind.in_(
                    [DepartmentKind.HANDLING.value, DepartmentKind.SUBDISTRICT.value]
                )
            )
        ).all()
    for dept_id, code in units:
        if dept_id in department_operators:
            continue
        uid = _add_user(
            database, f"op-{code}", f"{code}处置员(演示)", Role.DEPARTMENT_OPERATOR, code
        )
        department_operators[dept_id] = [uid]
        by_role[Role.DEPARTMENT_OPERATOR].append(uid)
        names[uid] = f"{code}处置员(演示)"
    pace = {uid: rng.uniform(0.6, 1.4) for ids in by_role.values() for uid in ids}
    return DemoStaff(
        by_role=by_role, names=names, pace=pace, department_operators=department_operators
    )


def _cells(
    grid: CellIndex, dept_ids: dict[str, int], rng: random.Random
) -> tuple[list[DemoCell], list[float]]:
    """Cells with centroids and territory, and hotspot weights (a few busy clusters)."""
    centroids = shapely.centroid(np.asarray(grid.polygons))
    lons = shapely.get_x(centroids)
    lats = shapely.get_y(centroids)
    hot = [
        (float(lons[i]), float(lats[i]), rng.uniform(0.004, 0.012), rng.uniform(4, 14))
        for i in rng.sample(range(len(lons)), 9)
    ]
    weights = np.full(len(lons), 1.0)
    for hx, hy, radius, peak in hot:
        d2 = ((lons - hx) / radius) ** 2 + ((lats - hy) / radius) ** 2
        weights += peak * np.exp(-d2)
    cells: list[DemoCell] = []
    for i, code in enumerate(grid.codes):
        sub = dept_ids.get(f"{code[:9]}")
        com = dept_ids.get(f"{code[:12]}")
        cells.append(DemoCell(str(code), float(lons[i]), float(lats[i]), com, sub))
    return cells, [float(w) for w in weights]


def _classes(database: Database, dept_ids: dict[str, int], rng: random.Random) -> list[DemoClass]:
    """Every active minor class with one of its rows; a Zipf-like popularity."""
    uow = database.uow()
    with uow.read():
        rows = [
            (
                (minor.id, minor.family, minor.code, minor.name),
                (row.id, row.limit_text),
            )
            for minor, row in uow.session.execute(
                select(MinorClass, FilingStandard)
                .join(FilingStandard, FilingStandard.minor_id == MinorClass.id)
                .where(MinorClass.active.is_(True), FilingStandard.active.is_(True))
                .order_by(MinorClass.family, MinorClass.code, FilingStandard.position)
            )
        ]
    first: dict[int, tuple[tuple[int, str, str, str], tuple[int, str | None]]] = {}
    for minor, row in rows:
        if row[1] and (minor[0] not in first or rng.random() < 0.3):
            first[minor[0]] = (minor, row)
    picked = list(first.values())
    rng.shuffle(picked)
    classes = []
    for rank, ((minor_id, family, code, name), (row_id, limit_text)) in enumerate(picked, 1):
        key = (family, code[:2])
        owners = MAJOR_OWNERS.get(key, ("enforcement",))
        weight = (3.0 if family == "event" else 1.6) / rank**0.8
        classes.append(
            DemoClass(
                minor_id=minor_id,
                family=family,
                code=code,
                name=name,
                standard_id=row_id,
                limit_text=limit_text or "5工作日",
                weight=weight,
                department_ids=tuple(dept_ids[o] for o in owners),
                territorial=key in TERRITORIAL_MAJORS,
            )
        )
    return classes


def demo_credentials() -> list[tuple[str, str, str]]:
    return [(role.value, username, DEMO_PASSWORD) for role, (username, _d) in DEMO_LOGINS.items()]


__all__ = ["DEMO_PASSWORD", "DemoReport", "build", "demo_credentials", "is_built"]
