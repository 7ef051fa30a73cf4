"""Imported polygon cells: point assignment, tiling checks, generated codes."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from cityloop.grid.boundaries import Boundary
from cityloop.grid.domain import Area, build_grid, default_crs
from cityloop.grid.irregular import PolygonGrid, check_tiling, generate_codes

ADCODE = "110199"
CRS = default_crs(116.3)
SIDE = 0.001


def tiles(n: int = 4) -> list[Polygon]:
    """n x n squares, raster order (north row first, west to east)."""
    return [
        box(116.30 + c * SIDE, 39.96 - (r + 1) * SIDE, 116.30 + (c + 1) * SIDE, 39.96 - r * SIDE)
        for r in range(n)
        for c in range(n)
    ]


def codes(n: int) -> list[str]:
    return [f"{ADCODE}001001{i + 1:03d}" for i in range(n)]


def test_points_inside_edges_and_corners_belong_to_exactly_one_cell() -> None:
    polys = tiles(2)  # NW, NE, SW, SE
    grid = PolygonGrid(ADCODE, codes(4), polys)
    assert grid.locate(116.3005, 39.9595) == 0
    x_mid, y_mid = 116.30 + SIDE, 39.96 - SIDE  # the centre corner shared by all four
    assert grid.locate(x_mid, 39.9595) == 1  # on a north-south edge: the eastern cell
    assert grid.locate(116.3005, y_mid) == 0  # on an east-west edge: the northern cell
    assert grid.locate(x_mid, y_mid) == 1  # a corner: the north-eastern cell
    assert grid.locate(116.2, 39.9) is None
    assert grid.locate(float("nan"), 39.9) is None
    lons = [116.3005, x_mid, 116.3005, x_mid, 116.2]
    lats = [39.9595, 39.9595, y_mid, y_mid, 39.9]
    assert grid.locate_many(lons, lats).tolist() == [0, 1, 0, 1, -1]


def test_polygon_cells_answer_like_the_lattice_on_the_same_squares() -> None:
    district = Boundary(ADCODE, "x", box(116.300, 39.950, 116.315, 39.960))
    lattice = build_grid(district, 100.0)
    polygons = PolygonGrid(ADCODE, lattice.codes, lattice.polygons)
    rng = np.random.default_rng(11)
    lons = rng.uniform(116.299, 116.316, 20_000)
    lats = rng.uniform(39.949, 39.961, 20_000)
    assert np.array_equal(polygons.locate_many(lons, lats), lattice.locate_many(lons, lats))


def test_check_tiling_reports_overlaps_outside_cells_and_bad_codes() -> None:
    polys = tiles(3)
    polys[4] = shapely.affinity.translate(polys[4], xoff=SIDE / 10)  # into its east neighbour
    outside = box(116.296, 39.957, 116.297, 39.958)
    cs = [*codes(9), f"{ADCODE}001001010"]
    cs[8] = "12345"
    boundary = box(116.2995, 39.95, 116.31, 39.9605)
    report = check_tiling(
        cs, np.array([*polys, outside], dtype=object), boundary, CRS, adcode=ADCODE
    )
    assert not report.ok
    assert [(o.code_a, o.code_b) for o in report.overlaps] == [(cs[4], cs[5])]
    assert report.overlaps[0].area_m2 == pytest.approx(8.54 * 111.2, rel=0.02)
    assert [o.code for o in report.outside] == [cs[9]]
    assert report.outside[0].area_m2 == pytest.approx(85.4 * 111.2, rel=0.02)
    assert [p.code for p in report.problems] == ["12345"]
    assert any("overlap by" in line for line in report.lines())


def test_check_tiling_accepts_a_clean_tiling_and_shared_edges() -> None:
    polys = np.array(tiles(3), dtype=object)
    boundary = box(116.2995, 39.95, 116.31, 39.9605)
    report = check_tiling(codes(9), polys, boundary, CRS, adcode=ADCODE)
    assert report.ok and report.total_area_m2 == pytest.approx(9 * 85.4 * 111.2, rel=0.02)


def test_tolerances_absorb_digitising_noise() -> None:
    polys = tiles(2)
    polys[1] = shapely.affinity.translate(polys[1], xoff=-1e-8)  # ~1 mm overlap strip
    boundary = box(116.2995, 39.95, 116.31, 39.9605)
    array = np.array(polys, dtype=object)
    assert check_tiling(codes(4), array, boundary, CRS, adcode=ADCODE).ok
    strict = check_tiling(codes(4), array, boundary, CRS, adcode=ADCODE, overlap_tolerance_m2=0.01)
    assert strict.overlap_count == 1


def test_generated_codes_run_west_to_east_then_north_to_south() -> None:
    polys = tiles(4)
    shuffled = [polys[i] for i in (5, 0, 15, 3, 9, 12, 1, 14, 7, 2, 11, 4, 13, 6, 10, 8)]
    got = generate_codes(ADCODE, np.array(shuffled, dtype=object), CRS)
    by_position = dict(zip([p.wkt for p in shuffled], got.tolist(), strict=True))
    assert [by_position[p.wkt][12:] for p in polys] == [f"{i:03d}" for i in range(1, 17)]
    assert all(c.startswith(ADCODE) for c in got)


def test_generated_codes_follow_community_polygons() -> None:
    polys = tiles(4)
    west = Area("001", box(116.29, 39.95, 116.302, 39.97), parent="002")
    east = Area("002", box(116.302, 39.95, 116.31, 39.97), parent="002")
    got = generate_codes(ADCODE, np.array(polys, dtype=object), CRS, communities=[west, east])
    assert got[0] == f"{ADCODE}002001001" and got[1] == f"{ADCODE}002001002"
    assert got[2] == f"{ADCODE}002002001" and got[4] == f"{ADCODE}002001003"
