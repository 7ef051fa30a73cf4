"""The grid stored and used: build, import, territory, routing, responsibility, intake hook.

Runs on SQLite and PostgreSQL (the ``db`` fixture), on the synthetic district of
``grid_support`` (110199: two subdistricts, three communities, their departments).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import box, mapping
from tests.integration.grid.grid_support import (
    ADCODE,
    DISTRICT,
    OUTSIDE,
    P_A1,
    P_A2,
    P_B1,
    Territory,
    build_district,
    write_geojson,
)
from tests.unit.grid.gpkg_support import write_gpkg
from tests.world import World

from cityloop.cases import service as cases
from cityloop.cases.models import Case
from cityloop.cases.schemas import CaseCreate, Location
from cityloop.cases.settings import SETTINGS_KEY as CASES_KEY
from cityloop.cases.settings import CaseSettings
from cityloop.catalog import service as catalog
from cityloop.catalog.domain import Family
from cityloop.cityconfig import service as cityconfig
from cityloop.db.engine import Database
from cityloop.errors import Conflict, InvalidInput
from cityloop.grid import service
from cityloop.grid.domain import build_grid
from cityloop.grid.irregular import PolygonGrid
from cityloop.grid.models import GridCell
from cityloop.grid.routing import Basis, Scope
from cityloop.grid.schemas import (
    SETTINGS_KEY,
    GridSettings,
    LocateRequest,
    Point,
    ResponsibilityCreate,
    RuleCreate,
)
from cityloop.org.domain import SYSTEM_ACTOR


@pytest.fixture
def district(db: Database, world: World, tmp_path: Path) -> Territory:
    territory, _summary = build_district(db, world, tmp_path)
    return territory


def locate_one(db: Database, lon: float, lat: float, **extra: object) -> dict[str, object]:
    request = LocateRequest(points=[Point(lon=lon, lat=lat)], system="wgs84", **extra)
    return service.locate(db.uow(), request).results[0].model_dump()


# -- building, storing, coding ------------------------------------------------------------------


def test_build_stores_coded_cells_bound_to_their_departments(
    db: Database, world: World, tmp_path: Path
) -> None:
    territory, summary = build_district(db, world, tmp_path)
    assert summary.kind == "lattice" and summary.cells > 600
    assert summary.subdistricts == 2 and summary.communities == 3
    assert summary.bound_subdistrict_cells == summary.cells
    assert summary.bound_community_cells == summary.cells
    a1 = locate_one(db, *P_A1)
    assert str(a1["cell_code"]).startswith("110199001001")
    assert a1["subdistrict_id"] == territory.sd_a and a1["community_id"] == territory.comm_a1
    assert str(locate_one(db, *P_A2)["cell_code"]).startswith("110199001002")
    b1 = locate_one(db, *P_B1)
    assert str(b1["cell_code"]).startswith("110199002001")
    assert b1["subdistrict_id"] == territory.sd_b and b1["community_id"] == territory.comm_b1


def test_serials_run_west_to_east_then_north_to_south_in_each_community(
    db: Database, district: Territory
) -> None:
    with db.uow() as uow:
        rows = uow.session.execute(
            GridCell.__table__.select()
            .with_only_columns(GridCell.code, GridCell.row, GridCell.col)
            .order_by(GridCell.code)
        ).all()
    by_community: dict[str, list[tuple[int, int, str]]] = {}
    for code, row, col in rows:
        by_community.setdefault(code[:12], []).append((row, col, code))
    assert set(by_community) == {"110199001001", "110199001002", "110199002001"}
    for cells in by_community.values():
        assert [c[2][12:] for c in cells] == [f"{i:03d}" for i in range(1, len(cells) + 1)]
        positions = [(r, c) for r, c, _code in cells]
        assert positions == sorted(positions)  # raster order: row (north first), then column


def test_the_grid_loaded_from_the_database_answers_like_the_built_one(
    db: Database, district: Territory
) -> None:
    with db.uow() as uow:
        (loaded,) = service.loaded_grids(uow.session)
        fresh = service.load_grid(uow.session, loaded.id)
        subs, comms = service._stored_areas(uow.session, ADCODE)
    built = build_grid(DISTRICT, 100.0, subdistricts=subs, communities=comms)
    assert list(fresh.index.codes) == list(built.codes)
    rng = np.random.default_rng(5)
    lons = rng.uniform(116.298, 116.332, 5000)
    lats = rng.uniform(39.948, 39.977, 5000)
    assert np.array_equal(fresh.index.locate_many(lons, lats), built.locate_many(lons, lats))


def test_a_point_on_a_shared_edge_belongs_to_exactly_one_cell(
    db: Database, district: Territory
) -> None:
    """Through the stored grid and the locate service: points exactly on the edge shared by
    two cells (checked with exact predicates) go to the eastern / northern one, corners to
    the north-eastern one."""
    with db.uow() as uow:
        (loaded,) = service.loaded_grids(uow.session)
    grid = loaded.index
    full = [i for i in range(len(grid)) if not grid.cut[i]]  # rings are SW, SE, NE, NW
    by_square = {(int(grid.rows[i]), int(grid.cols[i])): i for i in full}
    cases_: list[tuple[float, float, str]] = []
    for (row, col), i in by_square.items():
        _sw, se, ne, nw = shapely.get_coordinates(grid.polygons[i])[:4]
        for key, a, b in (((row, col + 1), se, ne), ((row - 1, col), nw, ne)):
            other = by_square.get(key)
            if other is None:
                continue
            lon, lat = (a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0
            polys = grid.polygons[[i, other]]
            on_both = shapely.intersects_xy(polys, lon, lat).all()
            inside_none = not shapely.contains_xy(polys, lon, lat).any()
            if on_both and inside_none:
                cases_.append((float(lon), float(lat), str(grid.codes[other])))
        corner = by_square.get((row - 1, col + 1))
        if corner is not None and (row - 1, col) in by_square and (row, col + 1) in by_square:
            cases_.append((float(ne[0]), float(ne[1]), str(grid.codes[corner])))
    assert len(cases_) > 100
    request = LocateRequest(
        points=[Point(lon=lon, lat=lat) for lon, lat, _c in cases_], system="wgs84"
    )
    found = [r.cell_code for r in service.locate(db.uow(), request).results]
    assert found == [expected for _lon, _lat, expected in cases_]


def test_rebuilding_renews_the_revision_and_moves_responsibility_cells(
    db: Database, district: Territory
) -> None:
    code = str(locate_one(db, *P_A1)["cell_code"])
    service.add_responsibility(
        db.uow(),
        SYSTEM_ACTOR,
        ResponsibilityCreate(code="r1", name="甲一", inspector="inspector2", cells=[code]),
    )
    with db.uow() as uow:
        (before,) = service.loaded_grids(uow.session)
    summary = service.build(
        db.uow(), SYSTEM_ACTOR, adcode=ADCODE, cell_size=200.0, boundary=DISTRICT
    )
    assert summary.version == 2 and summary.remapped == 1 and summary.dropped == 0
    with db.uow() as uow:
        (after,) = service.loaded_grids(uow.session)
    assert after.revision != before.revision and len(after.index) < len(before.index)
    moved = locate_one(db, *P_A1)
    assert moved["cell_code"] != code and moved["responsibility_code"] == "r1"
    (resp,) = service.list_responsibilities(db.uow())
    assert resp.cells == 1


# -- importing cells ------------------------------------------------------------------------


def squares(n: int = 3, side: float = 0.001) -> list[tuple[str, shapely.Polygon]]:
    """n x n squares in the district's south-west corner, coded in raster order."""
    out = []
    for r in range(n):
        for c in range(n):
            x = 116.301 + c * side
            y = 39.954 - r * side
            code = f"{ADCODE}001001{r * n + c + 1:03d}"
            out.append((code, box(x, y - side, x + side, y)))
    return out


def features(cells: list[tuple[str, shapely.Polygon]], with_codes: bool = True) -> list[dict]:
    return [
        {
            "type": "Feature",
            "properties": {"code": code} if with_codes else {"name": code},
            "geometry": mapping(poly),
        }
        for code, poly in cells
    ]


def test_import_refuses_overlapping_cells_and_lists_codes_and_area(
    db: Database, world: World, tmp_path: Path
) -> None:
    cells = squares()
    code, poly = cells[4]
    cells[4] = (code, shapely.affinity.translate(poly, xoff=0.0001))  # ~8.5 m into its neighbour
    path = write_geojson(tmp_path / "cells.geojson", features(cells))
    with pytest.raises(service.ImportRejected) as caught:
        service.import_cells(
            db.uow(), SYSTEM_ACTOR, path, adcode=ADCODE, system="wgs84", boundary=DISTRICT
        )
    report = caught.value.report
    assert report.overlap_count == 1
    (overlap,) = report.overlaps
    assert {overlap.code_a, overlap.code_b} == {cells[4][0], cells[5][0]}
    assert overlap.area_m2 == pytest.approx(8.54 * 111.2, rel=0.02)  # 8.5 m x 111 m
    assert f"{overlap.code_a} and {overlap.code_b} overlap by" in caught.value.message
    assert service.stats(db.uow()) == []  # all or nothing


def test_import_refuses_cells_outside_the_district(
    db: Database, world: World, tmp_path: Path
) -> None:
    cells = squares()
    stray = (f"{ADCODE}001001010", box(116.2985, 39.951, 116.2995, 39.952))  # west of it
    path = write_geojson(tmp_path / "cells.geojson", features([*cells, stray]))
    with pytest.raises(service.ImportRejected) as caught:
        service.import_cells(
            db.uow(), SYSTEM_ACTOR, path, adcode=ADCODE, system="wgs84", boundary=DISTRICT
        )
    report = caught.value.report
    assert [o.code for o in report.outside] == [stray[0]]
    assert report.outside[0].area_m2 == pytest.approx(85.4 * 111.2, rel=0.02)
    assert "reaches" in caught.value.message and "outside the district" in caught.value.message


def test_import_refuses_bad_codes_and_geometry(db: Database, world: World, tmp_path: Path) -> None:
    cells = squares(2)
    cells[1] = ("120116001001002", cells[1][1])  # another district's code
    cells[2] = (cells[0][0], cells[2][1])  # repeated
    bowtie = shapely.Polygon(
        [(116.31, 39.96), (116.311, 39.961), (116.311, 39.96), (116.31, 39.961)]
    )
    cells[3] = (cells[3][0], bowtie)
    path = write_geojson(tmp_path / "cells.geojson", features(cells))
    with pytest.raises(service.ImportRejected) as caught:
        service.import_cells(
            db.uow(), SYSTEM_ACTOR, path, adcode=ADCODE, system="wgs84", boundary=DISTRICT
        )
    messages = " | ".join(caught.value.report.lines())
    assert "does not start with the district's 110199" in messages
    assert "repeats feature #1" in messages
    assert "invalid" in messages


def test_import_from_geopackage_with_generated_codes(
    db: Database, world: World, tmp_path: Path
) -> None:
    cells = squares(3)
    path = write_gpkg(tmp_path / "cells.gpkg", [({"name": c}, p) for c, p in cells])
    summary = service.import_cells(
        db.uow(), SYSTEM_ACTOR, path, adcode=ADCODE, system="wgs84", boundary=DISTRICT
    )
    assert summary.kind == "polygons" and summary.cells == 9 and summary.cell_size is None
    with db.uow() as uow:
        (loaded,) = service.loaded_grids(uow.session)
    assert isinstance(loaded.index, PolygonGrid)
    # Without areas the codes are synthetic blocks; serials follow west->east, north->south.
    codes = [str(locate_one(db, p.centroid.x, p.centroid.y)["cell_code"]) for _c, p in cells]
    assert [c[12:] for c in codes] == [f"{i:03d}" for i in range(1, 10)]
    # The shared edge between the first two squares goes to the eastern one.
    x_edge = cells[0][1].bounds[2]
    y_mid = cells[0][1].centroid.y
    assert locate_one(db, x_edge, y_mid)["cell_code"] == codes[1]


def test_import_dry_run_changes_nothing(db: Database, world: World, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "cells.geojson", features(squares()))
    summary = service.import_cells(
        db.uow(),
        SYSTEM_ACTOR,
        path,
        adcode=ADCODE,
        system="wgs84",
        boundary=DISTRICT,
        dry_run=True,
    )
    assert summary.cells == 9
    assert service.stats(db.uow()) == []


# -- routing at intake -----------------------------------------------------------------------


def report(db: Database, world: World, lon: float, lat: float, **extra: object) -> Case:
    data = CaseCreate(
        channel="hotline_12345",
        description="测试",
        location=Location(lon=lon, lat=lat, system="wgs84"),
        **extra,
    )
    reported = cases.report(db.uow(), world.intake, data, locate=service.locate_case)
    with db.uow() as uow:
        case = uow.session.get(Case, reported.id)
        assert case is not None
        uow.session.expunge(case)
        return case


def test_an_event_goes_to_its_territory_first(
    db: Database, world: World, district: Territory
) -> None:
    case = report(db, world, *P_A1, family="event", minor_code="0101")
    assert case.cell_code is not None and case.cell_code.startswith("110199001001")
    assert case.subdistrict_id == district.sd_a and case.community_id == district.comm_a1
    assert case.suggested_department_id == district.sd_a
    assert not case.outside_jurisdiction


def test_the_city_may_make_communities_the_territorial_unit(
    db: Database, world: World, district: Territory
) -> None:
    cityconfig.put(
        db.uow(), SYSTEM_ACTOR, SETTINGS_KEY, GridSettings, {"territorial_level": "community"}
    )
    case = report(db, world, *P_B1, family="event", minor_code="0101")
    assert case.suggested_department_id == district.comm_b1


def test_a_rule_for_the_class_overrides_the_territory_for_events(
    db: Database, world: World, district: Territory
) -> None:
    service.add_rule(
        db.uow(),
        SYSTEM_ACTOR,
        RuleCreate(
            family="event",
            minor_code="0101",
            scope=Scope.SUBDISTRICT,
            area="sd-a",
            department="sanitation",
        ),
    )
    ruled = report(db, world, *P_A2, family="event", minor_code="0101")
    assert ruled.suggested_department_id == world.sanitation_id
    elsewhere = report(db, world, *P_B1, family="event", minor_code="0101")  # rule is sd-a only
    assert elsewhere.suggested_department_id == district.sd_b
    other_class = report(db, world, *P_A2, family="event", minor_code="0111")
    assert other_class.suggested_department_id == district.sd_a


def test_the_narrowest_area_wins_among_rules_of_equal_priority(
    db: Database, world: World, district: Territory
) -> None:
    code = str(locate_one(db, *P_A1)["cell_code"])
    for scope, extra, dept in (
        (Scope.DISTRICT, {}, "drainage"),
        (Scope.CELLS, {"cells": [code]}, "sanitation"),
    ):
        service.add_rule(
            db.uow(),
            SYSTEM_ACTOR,
            RuleCreate(family="event", minor_code="0101", scope=scope, department=dept, **extra),
        )
    assert report(db, world, *P_A1, family="event", minor_code="0101").suggested_department_id == (
        world.sanitation_id
    )
    assert report(db, world, *P_A2, family="event", minor_code="0101").suggested_department_id == (
        world.drainage_id
    )
    got = locate_one(db, *P_A1, family="event", minor_code="0101")["route"]
    assert got["basis"] == Basis.RULE and got["department_code"] == "sanitation"


def test_a_component_goes_to_its_owner_first(
    db: Database, world: World, district: Territory, tmp_path: Path
) -> None:
    csv = tmp_path / "components.csv"
    csv.write_text(
        "标识码,名称,经度,纬度,权属单位,状态\n"
        f"1101990101000001,上水井盖,{P_A1[0]},{P_A1[1]},drainage,破损\n",
        encoding="utf-8",
    )
    result = service.import_components(db.uow(), SYSTEM_ACTOR, csv, system="wgs84")
    assert (result.added, result.outside_grid) == (1, 0)
    # A rule for the class would win over the territory, but the owner comes first.
    service.add_rule(
        db.uow(),
        SYSTEM_ACTOR,
        RuleCreate(
            family="component", minor_code="0101", scope=Scope.DISTRICT, department="sanitation"
        ),
    )
    owned = report(
        db, world, *P_A1, family="component", minor_code="0101", component_code="1101990101000001"
    )
    assert owned.suggested_department_id == world.drainage_id
    assert owned.component_code == "1101990101000001"
    unknown = report(db, world, *P_A1, family="component", minor_code="0101")
    assert unknown.suggested_department_id == world.sanitation_id  # then a matching rule
    no_rule = report(db, world, *P_A1, family="component", minor_code="0102")
    assert no_rule.suggested_department_id == district.sd_a  # 属地兜底


def test_a_component_class_falls_to_its_filing_standard_owner_before_the_territory(
    db: Database, world: World, district: Territory
) -> None:
    minor = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0102")
    for row in minor.standards:
        catalog.set_default_department(
            db.uow(), SYSTEM_ACTOR, standard_id=row.id, department_code="drainage"
        )
    case = report(db, world, *P_A1, family="component", minor_code="0102")
    assert case.suggested_department_id == world.drainage_id
    event = report(db, world, *P_A1, family="event", minor_code="0101")
    assert event.suggested_department_id == district.sd_a


def test_an_unclassified_report_falls_to_the_territorial_unit(
    db: Database, world: World, district: Territory
) -> None:
    case = report(db, world, *P_B1)
    assert case.family is None and case.suggested_department_id == district.sd_b


def test_the_responsibility_grid_names_the_inspector(
    db: Database, world: World, district: Territory
) -> None:
    service.add_responsibility(
        db.uow(),
        SYSTEM_ACTOR,
        ResponsibilityCreate(
            code="r-a1", name="甲一", inspector="inspector2", cells=["110199001001"]
        ),
    )
    assert report(db, world, *P_A1).inspector_id == district.inspector2.user_id
    assert report(db, world, *P_A2).inspector_id is None
    with pytest.raises(Conflict, match="already belong"):
        service.add_responsibility(
            db.uow(),
            SYSTEM_ACTOR,
            ResponsibilityCreate(code="r-x", name="x", inspector="inspector", cells=["110199001"]),
        )


def test_a_point_outside_the_city_is_refused(
    db: Database, world: World, district: Territory
) -> None:
    with pytest.raises(InvalidInput) as caught:
        report(db, world, *OUTSIDE)
    assert caught.value.field == "location"
    assert "outside the city's grid" in caught.value.message
    assert cases.list_cases(db.uow(), world.intake, cases.CaseFilters()).total == 0


def test_a_point_outside_is_accepted_when_the_city_says_so(
    db: Database, world: World, district: Territory
) -> None:
    cityconfig.put(
        db.uow(), SYSTEM_ACTOR, CASES_KEY, CaseSettings, {"outside_jurisdiction": "accept"}
    )
    case = report(db, world, *OUTSIDE)
    assert case.outside_jurisdiction and case.cell_code is None
    assert case.suggested_department_id is None


def test_without_a_stored_grid_intake_is_unchanged(db: Database, world: World) -> None:
    case = report(db, world, *OUTSIDE)
    assert case.cell_code is None and not case.outside_jurisdiction


def test_departments_created_after_the_grid_bind_live_and_by_bind(
    db: Database, world: World, tmp_path: Path
) -> None:
    from cityloop.org import service as org
    from cityloop.org.domain import DepartmentKind
    from cityloop.org.schemas import DepartmentCreate

    summary = service.build(db.uow(), SYSTEM_ACTOR, adcode=ADCODE, boundary=DISTRICT)
    assert summary.bound_subdistrict_cells == 0
    dept = org.create_department(
        db.uow(),
        SYSTEM_ACTOR,
        DepartmentCreate(code="sd-0", name="零", kind=DepartmentKind.SUBDISTRICT, grid_code="000"),
    )
    assert locate_one(db, *P_A1)["subdistrict_id"] == dept.id  # bound live at lookup
    (result,) = service.bind_departments(db.uow(), SYSTEM_ACTOR)
    assert result.subdistrict_cells == summary.cells
    (stats,) = service.stats(db.uow())
    assert stats.bound_subdistrict_cells == summary.cells


# -- components -----------------------------------------------------------------------------


def test_components_import_checks_ids_against_the_catalog_all_or_nothing(
    db: Database, world: World, district: Territory, tmp_path: Path
) -> None:
    csv = tmp_path / "components.csv"
    csv.write_text(
        "code,lon,lat,owner,status\n"
        f"1101990101000001,{P_A1[0]},{P_A1[1]},drainage,normal\n"
        f"1101999901000002,{P_A1[0]},{P_A1[1]},drainage,normal\n"
        f"11019901010003,{P_A1[0]},{P_A1[1]},drainage,normal\n"
        f"1101990101000004,{P_A1[0]},{P_A1[1]},nobody,normal\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as caught:
        service.import_components(db.uow(), SYSTEM_ACTOR, csv, system="wgs84")
    message = caught.value.message
    assert "row 2: id 1101999901000002 names component class 9901" in message
    assert "row 3: a component id is 16 digits" in message
    assert "row 4: no department with code 'nobody'" in message
    assert (
        service.components_near(db.uow(), lon=P_A1[0], lat=P_A1[1], system="wgs84", radius_m=100)
        == []
    )


def test_components_near_a_point_in_any_coordinate_system(
    db: Database, world: World, district: Territory, tmp_path: Path
) -> None:
    from cityloop.grid.coords import wgs84_to_gcj02

    near_lon, near_lat = P_A1[0] + 0.0002, P_A1[1]  # ~17 m east
    gcj = wgs84_to_gcj02(P_A1[0], P_A1[1])
    path = write_geojson(
        tmp_path / "components.geojson",
        [
            {
                "type": "Feature",
                "properties": {"code": "1101990101000001", "status": "完好"},
                "geometry": {"type": "Point", "coordinates": list(gcj)},
            },
            {
                "type": "Feature",
                "properties": {"code": "1101990305000002", "owner": "sanitation"},
                "geometry": {
                    "type": "Point",
                    "coordinates": list(wgs84_to_gcj02(near_lon, near_lat)),
                },
            },
        ],
    )
    service.import_components(db.uow(), SYSTEM_ACTOR, path, system="gcj02")
    found = service.components_near(db.uow(), lon=gcj[0], lat=gcj[1], system="gcj02", radius_m=30)
    assert [c.code for c in found] == ["1101990101000001", "1101990305000002"]
    assert found[0].distance_m is not None and found[0].distance_m < 0.01
    assert found[1].distance_m == pytest.approx(17.0, abs=0.5)
    assert found[0].lon == pytest.approx(P_A1[0], abs=1e-7)  # stored in WGS-84
    assert found[0].cell_code == locate_one(db, *P_A1)["cell_code"]
    only = service.components_near(db.uow(), lon=gcj[0], lat=gcj[1], system="gcj02", radius_m=10)
    assert [c.code for c in only] == ["1101990101000001"]


# -- display --------------------------------------------------------------------------------


def test_cells_in_a_bbox_come_simplified_in_the_display_system(
    db: Database, district: Territory
) -> None:
    bbox = "116.3005,39.9505,116.3025,39.9525"
    wgs = service.cells_geojson(db.uow(), bbox=bbox, system="wgs84")
    assert 4 <= wgs["total"] <= 16 and not wgs["truncated"]
    assert all(f["properties"]["code"].startswith("110199001002") for f in wgs["features"])
    gcj = service.cells_geojson(db.uow(), bbox="116.3066,39.9518,116.3086,39.9538", system="gcj02")
    assert gcj["coord_system"] == "gcj02" and gcj["total"] > 0
    capped = service.cells_geojson(db.uow(), bbox="116.29,39.94,116.34,39.98", limit=10)
    assert capped["truncated"] and len(capped["features"]) == 10 and capped["total"] > 600
    areas = service.areas_geojson(db.uow(), level="community")
    assert sorted(f["properties"]["name"] for f in areas["features"]) == [
        "乙一社区",
        "甲一社区",
        "甲二社区",
    ]
    district_outline = service.areas_geojson(db.uow(), level="district")
    assert district_outline["features"][0]["properties"]["adcode"] == ADCODE
