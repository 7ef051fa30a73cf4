"""Reading GeoPackage (without GDAL), GeoJSON and CSV registries; component rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, box
from tests.unit.grid.gpkg_support import gpkg_blob, write_gpkg

from cityloop.errors import InvalidInput
from cityloop.grid import components as comp
from cityloop.grid.coords import gcj02_to_wgs84, wgs84_to_gcj02
from cityloop.grid.importing import (
    geometries_to_wgs84,
    gpkg_srs_id,
    gpkg_wkb,
    read_features,
    read_geojson,
    read_records,
)


def test_the_geopackage_header_is_stripped_whatever_its_envelope() -> None:
    square = box(116.3, 39.9, 116.301, 39.901)
    for envelope in (True, False):
        blob = gpkg_blob(square, envelope=envelope)
        assert gpkg_srs_id(blob) == 4326
        assert shapely.from_wkb(gpkg_wkb(blob)).equals(square)
    with pytest.raises(InvalidInput, match="GeoPackage binary"):
        gpkg_wkb(shapely.to_wkb(square))


def test_a_geopackage_layer_reads_with_its_properties(tmp_path: Path) -> None:
    rows = [
        (
            {"code": f"11010800100100{i}", "name": f"格{i}"},
            box(116.3 + i / 1000, 39.9, 116.301 + i / 1000, 39.901),
        )
        for i in range(1, 4)
    ]
    path = write_gpkg(tmp_path / "cells.gpkg", rows)
    features = read_features(path)
    assert [f.properties["code"] for f in features] == [r[0]["code"] for r in rows]
    assert features[0].properties["name"] == "格1" and "geom" not in features[0].properties
    assert all(f.geometry.equals(r[1]) for f, r in zip(features, rows, strict=True))


def test_a_geopackage_with_several_layers_needs_the_layer_named(tmp_path: Path) -> None:
    path = write_gpkg(
        tmp_path / "two.gpkg", [({"code": "x"}, box(0, 0, 1, 1))], extra_layers=("other",)
    )
    with pytest.raises(InvalidInput, match="2 feature layers"):
        read_features(path)
    assert len(read_features(path, layer="cells")) == 1
    with pytest.raises(InvalidInput, match="no feature layer 'nope'"):
        read_features(path, layer="nope")


def test_a_projected_geopackage_layer_comes_back_in_lon_lat(tmp_path: Path) -> None:
    to_gk = Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
    x, y = to_gk.transform(116.3, 39.9)
    path = write_gpkg(tmp_path / "gk.gpkg", [({"code": "a"}, Point(x, y))], srs_id=4548)
    (feature,) = read_features(path)
    assert feature.geometry.x == pytest.approx(116.3, abs=1e-8)
    assert feature.geometry.y == pytest.approx(39.9, abs=1e-8)


def test_geojson_forms_and_errors() -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": 7,
                "properties": {"a": 1},
                "geometry": {"type": "Point", "coordinates": [1, 2]},
            },
            {"type": "Feature", "properties": None, "geometry": None},
        ],
    }
    first, second = read_geojson(json.dumps(collection))
    assert first.properties == {"a": 1, "id": 7} and second.geometry is None
    (bare,) = read_geojson(json.dumps({"type": "Point", "coordinates": [1, 2]}))
    assert bare.geometry.equals(Point(1, 2))
    with pytest.raises(InvalidInput, match="not valid JSON"):
        read_geojson("{")


def test_vertices_convert_together_so_shared_edges_stay_shared() -> None:
    a, b = box(116.30, 39.90, 116.31, 39.91), box(116.31, 39.90, 116.32, 39.91)
    converted = geometries_to_wgs84(np.array([a, b], dtype=object), "gcj02")
    assert shapely.touches(converted[0], converted[1])
    assert not shapely.overlaps(converted[0], converted[1])
    lon, lat = gcj02_to_wgs84(116.31, 39.90)
    assert (lon, lat) in [tuple(c) for c in shapely.get_coordinates(converted[1]).tolist()]


def test_a_gb18030_csv_with_chinese_headers_reads(tmp_path: Path) -> None:
    path = tmp_path / "部件.csv"
    lon, lat = wgs84_to_gcj02(116.3, 39.9)
    path.write_bytes(
        f"部件标识码,名称,经度,纬度,权属单位,状态\n"
        f"1101080101000001,上水井盖,{lon},{lat},water,丢失\n".encode("gb18030")
    )
    ((line, record),) = read_records(path)
    row = comp.parse_row(line, record)
    assert row.code == "1101080101000001" and row.minor_code == "0101"
    assert row.name == "上水井盖" and row.owner == "water"
    assert row.status is comp.ComponentStatus.MISSING and row.lon == pytest.approx(lon)


def test_component_rows_are_checked() -> None:
    good = {"code": "3205080101000001", "lon": "120.6", "lat": "31.3"}
    assert comp.parse_row(1, good).status is comp.ComponentStatus.NORMAL
    assert comp.split_code("3205080101000001") == ("320508", "0101", "000001")
    for bad, message in (
        ({**good, "code": "32050801010001"}, "16 digits"),
        ({**good, "class": "0102"}, "class column says 0102"),
        ({**good, "lon": "east"}, "not a number"),
        ({**good, "lat": "95"}, "not a lon/lat"),
        ({**good, "status": "broken-ish"}, "unknown status"),
        ({"code": "3205080101000001"}, "no lon/lat"),
    ):
        with pytest.raises(InvalidInput, match=message):
            comp.parse_row(1, bad)


def test_distances_and_boxes() -> None:
    d = comp.haversine_m(116.3, 39.9, 116.3, 39.9009)
    assert d == pytest.approx(100.1, abs=0.2)
    xmin, ymin, xmax, ymax = comp.degree_box(116.3, 39.9, 100.0)
    assert comp.haversine_m(116.3, 39.9, xmax, 39.9) > 100.0
    assert comp.haversine_m(116.3, 39.9, 116.3, ymax) > 100.0
    assert xmin < 116.3 < xmax and ymin < 39.9 < ymax
