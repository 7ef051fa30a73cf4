"""Coordinate conversions against published reference pairs, and round trips inside China."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from cityloop.errors import InvalidInput
from cityloop.grid.coords import (
    CoordSystem,
    bd09_to_gcj02,
    bd09_to_gcj02_array,
    bd09_to_wgs84,
    bd09_to_wgs84_array,
    from_wgs84,
    from_wgs84_array,
    gcj02_to_bd09,
    gcj02_to_bd09_array,
    gcj02_to_wgs84,
    gcj02_to_wgs84_array,
    in_china,
    parse_coord_system,
    to_wgs84,
    to_wgs84_array,
    wgs84_to_bd09,
    wgs84_to_bd09_array,
    wgs84_to_gcj02,
    wgs84_to_gcj02_array,
)

GEOD = Geod(ellps="WGS84")


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


# wandergis/coordtransform, test/app.js (input 116.404, 39.915; results printed in its comments).
# Its gcj02towgs84 is the one-step approximation, so that value is only checked loosely.
CT_INPUT = (116.404, 39.915)
CT_WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
CT_GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
CT_BD09_TO_GCJ02 = (116.39762729119315, 39.90865673957631)  # published approximate inverse
CT_GCJ02_TO_WGS84 = (116.39775550083061, 39.91359571849836)  # published approximate inverse

# googollee/eviltransform, python/test.py TESTS: (wgsLat, wgsLng, gcjLat, gcjLng).
EVIL_PAIRS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]

# hujiulong/gcoord, test/fixtures/china-cities.json: GCJ02 and BD09 of city centres (7 decimals,
# ~1 cm). Its WGS84 column sits ~0.65 m from the published GCJ-02 formula (gcoord's own tests
# allow 1e-4 degrees), so only the GCJ-02 <-> BD-09 pairs are used here.
GCOORD_GCJ_BD = [
    ((114.022306, 33.0115324), (114.0287781, 33.0176697)),  # 驻马店
    ((111.4677938, 27.2388981), (111.4742271, 27.2451662)),  # 邵阳
    ((114.5048503, 37.0705911), (114.5113116, 37.0766797)),  # 邢台
    ((92.0512438, 31.4762063), (92.0576832, 31.4824421)),  # 那曲
    ((123.4314787, 41.8057023), (123.438095, 41.8114013)),  # 沈阳
    ((98.4943595, 39.7328234), (98.5008441, 39.7388949)),  # 酒泉
]


def test_wgs84_to_gcj02_matches_coordtransform_exactly() -> None:
    lon, lat = wgs84_to_gcj02(*CT_INPUT)
    assert lon == pytest.approx(CT_WGS84_TO_GCJ02[0], abs=1e-12)
    assert lat == pytest.approx(CT_WGS84_TO_GCJ02[1], abs=1e-12)


def test_gcj02_to_bd09_matches_coordtransform_exactly() -> None:
    lon, lat = gcj02_to_bd09(*CT_INPUT)
    assert lon == pytest.approx(CT_GCJ02_TO_BD09[0], abs=1e-12)
    assert lat == pytest.approx(CT_GCJ02_TO_BD09[1], abs=1e-12)


def test_inverses_refine_the_published_one_step_formulas() -> None:
    # The published inverses are approximations: ours lands within their error and is exact.
    gcj = bd09_to_gcj02(*CT_INPUT)
    assert metres(gcj, CT_BD09_TO_GCJ02) < 0.1
    assert metres(gcj02_to_bd09(*gcj), CT_INPUT) < 1e-6
    wgs = gcj02_to_wgs84(*CT_INPUT)
    assert metres(wgs, CT_GCJ02_TO_WGS84) < 3.0
    assert metres(wgs84_to_gcj02(*wgs), CT_INPUT) < 1e-6


@pytest.mark.parametrize(("wgs_lat", "wgs_lon", "gcj_lat", "gcj_lon"), EVIL_PAIRS)
def test_eviltransform_pairs(
    wgs_lat: float, wgs_lon: float, gcj_lat: float, gcj_lon: float
) -> None:
    assert metres(wgs84_to_gcj02(wgs_lon, wgs_lat), (gcj_lon, gcj_lat)) < 0.001
    assert metres(gcj02_to_wgs84(gcj_lon, gcj_lat), (wgs_lon, wgs_lat)) < 0.001


@pytest.mark.parametrize(("gcj", "bd"), GCOORD_GCJ_BD)
def test_gcoord_city_pairs(gcj: tuple[float, float], bd: tuple[float, float]) -> None:
    assert metres(gcj02_to_bd09(*gcj), bd) < 0.02
    assert metres(bd09_to_gcj02(*bd), gcj) < 0.02


def test_gcoord_gcj02_to_wgs84_spec_value() -> None:
    # hujiulong/gcoord test/unit/crs/GCJ02.spec.js: [123, 45] -> [122.99395597, 44.99804071]
    # (their iteration stops at 1e-6 degrees; the spec checks 5 decimals).
    lon, lat = gcj02_to_wgs84(123.0, 45.0)
    assert lon == pytest.approx(122.99395597, abs=1e-5)
    assert lat == pytest.approx(44.99804071, abs=1e-5)


def _china_lattice() -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.meshgrid(np.arange(74.0, 134.01, 1.5), np.arange(4.0, 53.01, 1.0))
    return lon.ravel(), lat.ravel()


def _max_metres(
    lon_a: np.ndarray, lat_a: np.ndarray, lon_b: np.ndarray, lat_b: np.ndarray
) -> float:
    return float(np.max(GEOD.inv(lon_a, lat_a, lon_b, lat_b)[2]))


def test_round_trips_inside_china_are_far_below_half_a_metre() -> None:
    lon, lat = _china_lattice()
    gx, gy = wgs84_to_gcj02_array(lon, lat)
    assert _max_metres(*gcj02_to_wgs84_array(gx, gy), lon, lat) < 0.001  # requirement: 0.5 m
    wx, wy = gcj02_to_wgs84_array(lon, lat)
    assert _max_metres(*wgs84_to_gcj02_array(wx, wy), lon, lat) < 0.001
    bx, by = wgs84_to_bd09_array(lon, lat)
    assert _max_metres(*bd09_to_wgs84_array(bx, by), lon, lat) < 0.001
    b2x, b2y = gcj02_to_bd09_array(lon, lat)
    assert _max_metres(*bd09_to_gcj02_array(b2x, b2y), lon, lat) < 0.001
    # The offset is really applied (hundreds of metres), so the round trip is not trivial.
    assert float(np.min(GEOD.inv(lon, lat, gx, gy)[2])) > 10.0


def test_scalar_and_array_results_agree_bit_for_bit() -> None:
    lon, lat = _china_lattice()
    ax, ay = bd09_to_wgs84_array(lon[:50], lat[:50])
    for i in range(50):
        assert bd09_to_wgs84(float(lon[i]), float(lat[i])) == (float(ax[i]), float(ay[i]))


def test_outside_china_nothing_is_offset() -> None:
    for point in [(2.3522, 48.8566), (-74.006, 40.7128), (151.2, -33.87), (73.66, 30.0)]:
        assert not in_china(*point)
        assert wgs84_to_gcj02(*point) == point
        assert gcj02_to_wgs84(*point) == point
        assert wgs84_to_bd09(*point) == point
        assert bd09_to_wgs84(*point) == point
    assert in_china(116.4, 39.9)
    assert not in_china(135.05, 40.0)  # open bounds
    assert not in_china(120.0, 53.55)


def test_cgcs2000_is_treated_as_wgs84() -> None:
    assert to_wgs84(116.4, 39.9, CoordSystem.CGCS2000) == (116.4, 39.9)
    assert from_wgs84(116.4, 39.9, "cgcs2000") == (116.4, 39.9)


def test_dispatch_by_system() -> None:
    assert to_wgs84(*CT_WGS84_TO_GCJ02, CoordSystem.GCJ02) == gcj02_to_wgs84(*CT_WGS84_TO_GCJ02)
    assert from_wgs84(*CT_INPUT, "BD-09") == wgs84_to_bd09(*CT_INPUT)
    x, y = to_wgs84_array([116.4, 121.5], [39.9, 31.2], "gcj02")
    assert (float(x[1]), float(y[1])) == gcj02_to_wgs84(121.5, 31.2)
    x, y = from_wgs84_array([116.4], [39.9], CoordSystem.WGS84)
    assert (float(x[0]), float(y[0])) == (116.4, 39.9)


def test_parse_coord_system() -> None:
    assert parse_coord_system("WGS-84") is CoordSystem.WGS84
    assert parse_coord_system("GCJ-02") is CoordSystem.GCJ02
    assert parse_coord_system("bd09ll") is CoordSystem.BD09
    assert parse_coord_system("EPSG:4490") is CoordSystem.CGCS2000
    with pytest.raises(InvalidInput, match="Unknown coordinate system"):
        parse_coord_system("utm")


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(InvalidInput):
        wgs84_to_gcj02_array([1.0, 2.0], [3.0])
