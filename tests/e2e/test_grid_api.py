"""The grid over HTTP, and intake through the case API getting its cell and department.

Needs ``cityloop.grid.views.router`` mounted by ``web/app.py`` and ``locate=`` wired into
``cases/views.py`` (``service.report(..., locate=grid_service.locate_case)``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.integration.grid.grid_support import OUTSIDE, P_A1, P_B1, Territory, build_district
from tests.world import PASSWORD, World

from cityloop.config import get_settings
from cityloop.db.engine import Database
from cityloop.grid.coords import wgs84_to_bd09, wgs84_to_gcj02
from cityloop.web.app import create_app


@pytest.fixture
def client(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    return TestClient(create_app(db))


def login(client: TestClient, username: str) -> dict[str, str]:
    resp = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


@pytest.fixture
def district(db: Database, world: World, tmp_path: Path) -> Territory:
    territory, _summary = build_district(db, world, tmp_path)
    return territory


def test_a_case_reported_through_the_api_gets_its_cell_and_department(
    client: TestClient, district: Territory
) -> None:
    lon, lat = wgs84_to_gcj02(*P_B1)  # as an AMap-based app would send it
    payload = {
        "channel": "hotline_12345",
        "description": "占道经营(演示)",
        "family": "event",
        "minor_code": "0406",
        "location": {"lon": lon, "lat": lat, "system": "gcj02"},
    }
    resp = client.post("/api/v1/cases", json=payload, headers=login(client, "intake"))
    assert resp.status_code == 201, resp.text
    case = resp.json()
    assert str(case["cell_code"]).startswith("110199002001")
    assert case["suggested_department_id"] == district.sd_b
    assert case["outside_jurisdiction"] is False


def test_a_case_outside_the_city_is_refused_through_the_api(
    client: TestClient, district: Territory
) -> None:
    payload = {
        "channel": "hotline_12345",
        "description": "x",
        "location": {"lon": OUTSIDE[0], "lat": OUTSIDE[1], "system": "wgs84"},
    }
    resp = client.post("/api/v1/cases", json=payload, headers=login(client, "intake"))
    assert resp.status_code == 422
    body = resp.json()
    assert body["field"] == "location" and "outside the city's grid" in body["message"]


def test_locate_one_and_a_batch_in_a_stated_system(client: TestClient, district: Territory) -> None:
    headers = login(client, "dispatcher")
    points = [wgs84_to_bd09(*P_A1), wgs84_to_bd09(*P_B1), OUTSIDE]
    resp = client.post(
        "/api/v1/grid/locate",
        json={
            "points": [{"lon": x, "lat": y} for x, y in points],
            "system": "bd09",
            "family": "event",
            "minor_code": "0101",
        },
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    a1, b1, outside = resp.json()["results"]
    assert a1["cell_code"].startswith("110199001001") and a1["community_id"] == district.comm_a1
    assert a1["lon"] == pytest.approx(P_A1[0], abs=1e-7)  # answered in WGS-84
    assert a1["route"] == {
        "department_id": district.sd_a,
        "department_code": "sd-a",
        "department_name": "sd-a",
        "basis": "territory",
        "rule_id": None,
    }
    assert b1["subdistrict_code"] == "002" and b1["route"]["department_code"] == "sd-b"
    assert outside["inside"] is False and outside["cell_code"] is None
    missing = client.post(
        "/api/v1/grid/locate", json={"points": [{"lon": 1, "lat": 2}]}, headers=headers
    )
    assert missing.status_code == 422 and missing.json()["field"] == "system"


def test_geojson_of_cells_areas_and_components_in_a_box(
    client: TestClient, district: Territory
) -> None:
    headers = login(client, "intake")
    cells = client.get(
        "/api/v1/grid/cells", params={"bbox": "116.3005,39.9505,116.3025,39.9525"}, headers=headers
    )
    assert cells.status_code == 200
    body = cells.json()
    assert body["type"] == "FeatureCollection" and body["total"] == len(body["features"]) > 0
    assert body["features"][0]["geometry"]["type"] == "Polygon"
    areas = client.get("/api/v1/grid/areas", params={"level": "subdistrict"}, headers=headers)
    assert {f["properties"]["code"] for f in areas.json()["features"]} == {"001", "002"}
    comps = client.get(
        "/api/v1/grid/components", params={"bbox": "116.30,39.95,116.33,39.975"}, headers=headers
    )
    assert comps.status_code == 200 and comps.json()["total"] == 0
    bad = client.get("/api/v1/grid/cells", params={"bbox": "1,2,3"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["field"] == "bbox"
    (grid,) = client.get("/api/v1/grid", headers=headers).json()
    assert grid["adcode"] == "110199" and grid["areas_community"] == 3


def test_the_grid_api_needs_a_login(client: TestClient) -> None:
    assert client.get("/api/v1/grid/cells", params={"bbox": "0,0,1,1"}).status_code == 401
