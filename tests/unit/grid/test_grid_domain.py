"""Grid generation, coding and point assignment on a small synthetic district (and Haidian)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from cityloop.errors import InvalidInput
from cityloop.grid.boundaries import Boundary, load_boundary
from cityloop.grid.domain import BLOCK_SIDE, Area, Grid, build_grid, default_crs

# An L-shaped district in Haidian (~6 km²) with a slanted edge and a hole, so there are full
# cells, cut cells, multi-part cuts and squares of the hole's ring.
OUTER = [
    (116.300, 39.950),
    (116.330, 39.950),
    (116.330, 39.962),
    (116.318, 39.966),  # slanted edge: cuts squares diagonally
    (116.318, 39.975),
    (116.300, 39.975),
    (116.300, 39.950),
]
HOLE = [
    (116.305, 39.965),
    (116.309, 39.965),
    (116.309, 39.968),
    (116.305, 39.968),
    (116.305, 39.965),
]
SHAPE = Polygon(OUTER, [HOLE])
DISTRICT = Boundary(adcode="110199", name="测试区", geometry=SHAPE)


@pytest.fixture(scope="module")
def grid() -> Grid:
    return build_grid(DISTRICT, 100.0)


def random_points(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random points over the district's box and a margin around it (many fall outside)."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = SHAPE.bounds
    return rng.uniform(xmin - 0.003, xmax + 0.003, n), rng.uniform(ymin - 0.003, ymax + 0.003, n)


def brute_force(grid: Grid, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """The cell whose polygon contains each point, by testing every polygon (-1 for none)."""
    out = np.full(len(lons), -1, dtype=np.int64)
    for i, polygon in enumerate(grid.polygons):
        inside = shapely.contains_xy(polygon, lons, lats)
        assert not np.any(inside & (out >= 0)), "a point is inside two cells"
        out[inside] = i
    return out


# -- building and tiling ------------------------------------------------------------------------


def test_build_produces_full_and_cut_cells(grid: Grid) -> None:
    assert len(grid) > 400
    assert 0 < int(grid.cut.sum()) < len(grid)
    assert grid.lattice.crs == "EPSG:4548" == default_crs(116.3)  # CGCS2000 GK zone CM 117°E
    assert grid.lattice.x0 % 100.0 == 0.0 and grid.lattice.y0 % 100.0 == 0.0  # zone-aligned
    assert all(shapely.is_valid(grid.polygons))
    assert set(np.unique(shapely.get_type_id(grid.polygons)).tolist()) <= {3, 6}  # polygonal
    # The lattice index and the per-cell arrays describe the same cells.
    assert np.array_equal(grid.index[grid.rows, grid.cols], np.arange(len(grid)))
    assert int(np.count_nonzero(grid.index >= 0)) == len(grid)


def test_cells_tile_the_district_without_overlap_or_gap(grid: Grid) -> None:
    # In WGS-84: the cells' areas add up to the district's, and their union is the district.
    total = float(np.sum(shapely.area(grid.polygons)))
    assert total == pytest.approx(SHAPE.area, rel=1e-9)
    union = shapely.union_all(grid.polygons)
    assert shapely.symmetric_difference(union, SHAPE).area < SHAPE.area * 1e-9
    # No two cells share interior: pairwise overlaps are empty.
    tree = shapely.STRtree(grid.polygons)
    left, right = tree.query(grid.polygons, predicate="overlaps")
    assert left.size == 0 and right.size == 0
    # In metres: full squares are exactly cell_size², and the sum is the projected district.
    areas = grid.projected_areas()
    assert np.all(areas[~grid.cut] == 100.0 * 100.0)
    assert np.all(areas[grid.cut] <= 100.0 * 100.0 * (1 + 1e-9))
    # (The district's long edges are straight in lon/lat: densify before projecting.)
    projected = shapely.transform(
        shapely.segmentize(SHAPE, 1e-5), lambda c: np.column_stack(grid._forward.transform(*c.T))
    )
    assert float(areas.sum()) == pytest.approx(projected.area, rel=1e-7)


def test_full_squares_share_corner_vertices_exactly(grid: Grid) -> None:
    full = np.flatnonzero(~grid.cut)
    by_square = {(int(grid.rows[i]), int(grid.cols[i])): i for i in full}
    checked = 0
    for (row, col), i in by_square.items():
        east = by_square.get((row, col + 1))
        if east is None:
            continue
        a = shapely.get_coordinates(grid.polygons[i])  # SW, SE, NE, NW, SW
        b = shapely.get_coordinates(grid.polygons[east])
        assert tuple(a[1]) == tuple(b[0]) and tuple(a[2]) == tuple(b[3])
        checked += 1
    assert checked > 100


# -- coding -------------------------------------------------------------------------------------


def test_codes_are_15_digits_sorted_and_unique(grid: Grid) -> None:
    codes = grid.codes.tolist()
    assert all(len(c) == 15 and c.isdigit() and c.startswith("110199") for c in codes)
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert codes[0].endswith("001")


def test_serials_run_west_to_east_then_north_to_south(grid: Grid) -> None:
    communities: dict[str, list[int]] = {}
    for i, code in enumerate(grid.codes.tolist()):
        communities.setdefault(code[:12], []).append(i)
    for members in communities.values():
        serials = [int(grid.codes[i][12:]) for i in members]
        assert serials == list(range(1, len(members) + 1))
        positions = [(int(grid.rows[i]), int(grid.cols[i])) for i in members]
        assert positions == sorted(positions)  # row (north first), then column (west first)
    # Concretely: in the first row of a community, serials grow eastwards; the next row is
    # further south.
    first = grid.cell(0)
    second = grid.cell(1)
    assert second.row > first.row or (second.row == first.row and second.col > first.col)


def test_without_communities_synthetic_blocks_are_numbered_in_reading_order() -> None:
    grid = build_grid(DISTRICT, 50.0)  # ~56 x 52 squares: 2 x 2 blocks of 31 x 31
    assert {c[6:9] for c in grid.codes.tolist()} == {"000"}
    block_of: dict[tuple[int, int], set[str]] = {}
    for i in range(len(grid)):
        key = (int(grid.rows[i]) // BLOCK_SIDE, int(grid.cols[i]) // BLOCK_SIDE)
        block_of.setdefault(key, set()).add(str(grid.codes[i])[9:12])
    assert all(len(v) == 1 for v in block_of.values())  # a block is one community
    numbering = [next(iter(block_of[k])) for k in sorted(block_of)]
    assert numbering == [f"{n:03d}" for n in range(1, len(numbering) + 1)]
    assert len(numbering) >= 3
    sizes = np.unique([c[:12] for c in grid.codes.tolist()], return_counts=True)[1]
    assert int(sizes.max()) <= BLOCK_SIDE * BLOCK_SIDE <= 999


def test_communities_and_subdistricts_set_the_code() -> None:
    west = Area("007", box(116.2, 39.9, 116.312, 40.0), "西社区", parent="003")
    east = Area("002", box(116.312, 39.9, 116.4, 39.962), "东社区", parent="004")
    # North-east of both communities (116.312-116.318, lat > 39.962) lies in neither: 000.
    subdistricts = [Area("004", box(116.2, 39.9, 116.4, 40.0), "某街道")]
    grid = build_grid(DISTRICT, 100.0, subdistricts=subdistricts, communities=[west, east])
    prefixes = {c[6:12] for c in grid.codes.tolist()}
    assert prefixes == {"003007", "004002", "004000"}
    for i in range(len(grid)):
        centroid = grid.polygons[i].centroid
        code = str(grid.codes[i])
        if west.geometry.contains(centroid):
            assert code[6:12] == "003007"
        elif east.geometry.contains(centroid):
            assert code[6:12] == "004002"


def test_a_community_with_more_than_999_cells_is_refused() -> None:
    everything = Area("001", box(116.0, 39.0, 117.0, 41.0))
    with pytest.raises(InvalidInput, match="at most 999"):
        build_grid(DISTRICT, 50.0, communities=[everything])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="Cell size"):
        build_grid(DISTRICT, 0.5)
    with pytest.raises(InvalidInput, match="three digits"):
        build_grid(DISTRICT, communities=[Area("000", box(116.3, 39.95, 116.31, 39.96))])
    with pytest.raises(InvalidInput, match="twice"):
        build_grid(
            DISTRICT,
            subdistricts=[Area("001", SHAPE), Area("001", SHAPE)],
        )


# -- point assignment ---------------------------------------------------------------------------


def test_locate_many_equals_brute_force_on_random_points(grid: Grid) -> None:
    lons, lats = random_points(5000)
    expected = brute_force(grid, lons, lats)
    got = grid.locate_many(lons, lats)
    assert np.array_equal(got, expected)
    assert (expected >= 0).sum() > 1000 and (expected < 0).sum() > 500  # both kinds tested
    assert [
        grid.locate(float(x), float(y)) for x, y in zip(lons[:1500], lats[:1500], strict=True)
    ] == [None if c < 0 else int(c) for c in expected[:1500]]


def test_points_within_micrometres_of_edges_agree_with_brute_force(grid: Grid) -> None:
    # Every vertex of every cell (lattice corners and boundary crossings), nudged by up to
    # ~1e-8 degrees (~1 mm): the band where the polygons, not the lattice, decide.
    vertices = np.unique(shapely.get_coordinates(grid.polygons), axis=0)
    rng = np.random.default_rng(17)
    picks = np.concatenate([vertices, vertices])
    nudge = rng.uniform(-1e-8, 1e-8, size=picks.shape) * rng.choice([1e-3, 1.0], size=picks.shape)
    lons, lats = picks[:, 0] + nudge[:, 0], picks[:, 1] + nudge[:, 1]
    expected = brute_force(grid, lons, lats)
    on_an_outline = expected < 0  # on an edge (no interior holds it) or outside the district
    got = grid.locate_many(lons, lats)
    assert np.array_equal(got[~on_an_outline], expected[~on_an_outline])
    for k in np.flatnonzero(on_an_outline).tolist():
        if got[k] >= 0:  # then its polygon touches the point
            assert shapely.intersects_xy(grid.polygons[got[k]], lons[k], lats[k])
    singles = [grid.locate(float(x), float(y)) for x, y in zip(lons, lats, strict=True)]
    assert [-1 if c is None else c for c in singles] == got.tolist()


def test_points_in_the_hole_and_far_away_have_no_cell(grid: Grid) -> None:
    assert grid.locate(116.307, 39.9665) is None
    assert grid.locate(0.0, 0.0) is None
    assert grid.locate_many([116.307, 10.0, 116.31], [39.9665, 10.0, 39.955]).tolist()[:2] == [
        -1,
        -1,
    ]


def test_garbage_input_has_no_cell(grid: Grid) -> None:
    nan = float("nan")
    assert grid.locate(nan, 39.96) is None
    assert grid.locate(1e300, -1e300) is None
    got = grid.locate_many([nan, 1e300, float("inf"), 116.31], [39.96, 1e300, 39.96, nan])
    assert got.tolist() == [-1, -1, -1, -1]
    assert grid.locate_many([], []).tolist() == []


def test_to_geojson_carries_codes(grid: Grid) -> None:
    collection = grid.to_geojson([0, 1])
    assert [f["properties"]["code"] for f in collection["features"]] == grid.codes[:2].tolist()
    assert collection["features"][0]["geometry"]["type"] in {"Polygon", "MultiPolygon"}


def _on_edge_points(grid: Grid) -> list[tuple[float, float, int, str]]:
    """Points exactly on the shared edge of two full cells (checked with exact predicates).

    Returns (lon, lat, expected cell, kind): the north cell on an east-west edge, the east cell
    on a north-south edge.
    """
    full = np.flatnonzero(~grid.cut)
    by_square = {(int(grid.rows[i]), int(grid.cols[i])): int(i) for i in full}
    found: list[tuple[float, float, int, str]] = []
    for (row, col), i in by_square.items():
        coords = shapely.get_coordinates(grid.polygons[i])  # SW, SE, NE, NW
        for other_key, a, b, kind in (
            ((row, col + 1), coords[1], coords[2], "east"),  # east edge: SE-NE
            ((row - 1, col), coords[3], coords[2], "north"),  # north edge: NW-NE
        ):
            other = by_square.get(other_key)
            if other is None:
                continue
            lon, lat = (a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0
            mine, theirs = grid.polygons[i], grid.polygons[other]
            exactly_on = (
                shapely.intersects_xy(mine, lon, lat)
                and shapely.intersects_xy(theirs, lon, lat)
                and not shapely.contains_xy(mine, lon, lat)
                and not shapely.contains_xy(theirs, lon, lat)
            )
            if exactly_on:
                found.append((float(lon), float(lat), other, kind))
    return found


def test_a_point_on_a_shared_edge_belongs_to_exactly_one_cell(grid: Grid) -> None:
    points = _on_edge_points(grid)
    kinds = {k for *_, k in points}
    assert len(points) > 20 and kinds == {"east", "north"}
    lons = np.array([p[0] for p in points])
    lats = np.array([p[1] for p in points])
    many = grid.locate_many(lons, lats)
    for (lon, lat, expected, _kind), batch in zip(points, many.tolist(), strict=True):
        assert grid.locate(lon, lat) == expected == batch


def test_a_shared_corner_goes_to_the_north_east_cell(grid: Grid) -> None:
    full = np.flatnonzero(~grid.cut)
    by_square = {(int(grid.rows[i]), int(grid.cols[i])): int(i) for i in full}
    checked = 0
    for (row, col), i in by_square.items():
        ne = by_square.get((row - 1, col + 1))
        if ne is None or (row - 1, col) not in by_square or (row, col + 1) not in by_square:
            continue
        lon, lat = shapely.get_coordinates(grid.polygons[i])[2]  # this cell's NE corner
        assert grid.locate(float(lon), float(lat)) == ne
        assert grid.locate_many([lon], [lat]).tolist() == [ne]
        checked += 1
    assert checked > 100


def test_a_point_on_the_district_boundary_belongs_to_the_district(grid: Grid) -> None:
    for lon, lat in OUTER[:-1]:
        found = grid.locate(lon, lat)
        assert found is not None
        assert shapely.intersects_xy(grid.polygons[found], lon, lat)
        assert grid.locate_many([lon], [lat]).tolist() == [found]


def test_a_grid_rebuilt_from_stored_cells_answers_the_same(grid: Grid) -> None:
    stored = Grid(
        adcode=grid.adcode,
        lattice=grid.lattice,
        codes=grid.codes.tolist(),
        rows=grid.rows.tolist(),
        cols=grid.cols.tolist(),
        polygons=[shapely.from_wkb(shapely.to_wkb(p)) for p in grid.polygons],
        cut=grid.cut.tolist(),
    )
    lons, lats = random_points(3000, seed=11)
    assert np.array_equal(stored.locate_many(lons, lats), grid.locate_many(lons, lats))
    assert stored.index_of(str(grid.codes[5])) == 5
    assert stored.cell(5).code == str(grid.codes[5])


def test_haidian_builds_in_seconds_and_matches_an_strtree() -> None:
    boundary = load_boundary("110108")
    started = time.perf_counter()
    grid = build_grid(boundary)
    elapsed = time.perf_counter() - started
    assert elapsed < 10.0
    assert 42_000 < len(grid) < 46_000
    assert float(grid.projected_areas().sum()) / 1e6 == pytest.approx(430.4, rel=0.005)
    assert grid.chord_sagitta * grid.lattice.cell_size < 0.001  # < 1 mm at 100 m
    rng = np.random.default_rng(5)
    xmin, ymin, xmax, ymax = boundary.geometry.bounds
    lons = rng.uniform(xmin, xmax, 20_000)
    lats = rng.uniform(ymin, ymax, 20_000)
    tree = shapely.STRtree(grid.polygons)
    point_idx, cell_idx = tree.query(shapely.points(lons, lats), predicate="within")
    expected = np.full(len(lons), -1, dtype=np.int64)
    expected[point_idx] = cell_idx
    assert np.array_equal(grid.locate_many(lons, lats), expected)
