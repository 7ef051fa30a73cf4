"""The grid admin page over HTTP (TestClient), on SQLite and PostgreSQL: build Haidian's grid
with 1 km cells, refuse a cells file whose cells overlap (with the report), import areas."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from tests.e2e.webclient import csrf
from tests.e2e.webclient import login as login_as
from tests.world import World

from cityloop.db.engine import Database
from cityloop.grid import service as grid

PAGE = "/staff/admin/grid"


pytestmark = pytest.mark.usefixtures("web_env")


@pytest.fixture
def client(web_client: TestClient) -> TestClient:
    return web_client


def login(client: TestClient, username: str) -> str:
    """Log in; the CSRF token of the staff pages, for the forms."""
    login_as(client, username)
    return csrf(client, "/staff")


def geojson(features: list[tuple[dict[str, str], object]]) -> bytes:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": props, "geometry": mapping(geom)}  # type: ignore[arg-type]
                for props, geom in features
            ],
        }
    ).encode()


def test_an_admin_builds_haidians_grid_from_the_page(
    world: World, db: Database, client: TestClient
) -> None:
    token = login(client, "admin")
    assert f'href="{PAGE}"' in client.get("/staff/admin").text  # the admin index links to it
    empty = client.get(PAGE)
    assert empty.status_code == 200
    assert "尚未保存网格" in empty.text
    built = client.post(
        f"{PAGE}/build",
        data={"csrf_token": token, "adcode": "110108", "cell_size": "1000", "crs": ""},
    )
    assert built.status_code == 200, built.text[:2000]
    assert "网格已生成" in built.text and "data-grid-summary" in built.text
    [stats] = grid.stats(db.uow())
    assert stats.adcode == "110108" and stats.cell_size == 1000 and stats.cells > 400
    row = built.text.split('data-grid="110108"', 1)[1].split("</tr>", 1)[0]
    assert f"data-cells>{stats.cells}<" in row
    english = client.get(f"{PAGE}?lang=en")
    assert "Stored grids" in english.text and "Build square cells from a boundary" in english.text


def test_overlapping_cells_are_refused_with_a_report(world: World, client: TestClient) -> None:
    token = login(client, "admin")
    cells = geojson(
        [
            ({"code": "110108001001001"}, box(116.300, 39.960, 116.310, 39.970)),
            ({"code": "110108001001002"}, box(116.305, 39.960, 116.315, 39.970)),
        ]
    )
    refused = client.post(
        f"{PAGE}/import",
        data={"csrf_token": token, "adcode": "110108", "system": "wgs84", "code_field": "code"},
        files={"file": ("cells.geojson", cells, "application/geo+json")},
    )
    assert refused.status_code == 422
    html = refused.text
    assert "网格未导入" in html and "data-rejection-report" in html
    report = html.split("data-rejection-report", 1)[1].split("</section>", 1)[0]
    assert "110108001001001" in report and "110108001001002" in report
    [area] = re.findall(r'class="num"[^>]*>([\d.]+)<', report)
    assert 400_000 < float(area) < 550_000  # ~427 m x 1,113 m
    assert "1 对相互重叠" in report
    bad_name = client.post(
        f"{PAGE}/import",
        data={"csrf_token": token, "adcode": "110108", "system": "wgs84"},
        files={"file": ("cells.txt", cells, "text/plain")},
    )
    assert bad_name.status_code == 422 and "GeoPackage" in bad_name.text
    no_csrf = client.post(f"{PAGE}/build", data={"adcode": "110108", "cell_size": "1000"})
    assert no_csrf.status_code == 403


def test_areas_import_and_a_dry_run(world: World, db: Database, client: TestClient) -> None:
    token = login(client, "admin")
    areas = geojson([({"code": "001", "name": "演示街道"}, box(116.0, 39.8, 116.5, 40.2))])
    imported = client.post(
        f"{PAGE}/areas",
        data={
            "csrf_token": token,
            "level": "subdistrict",
            "system": "wgs84",
            "adcode": "110108",
        },
        files={"file": ("subdistricts.geojson", areas, "application/geo+json")},
    )
    assert imported.status_code == 200, imported.text[:2000]
    assert "data-areas-result" in imported.text and "导入 1 个区域" in imported.text
    cells = geojson([({"code": "110108001001001"}, box(116.300, 39.960, 116.305, 39.965))])
    checked = client.post(
        f"{PAGE}/import",
        data={"csrf_token": token, "adcode": "110108", "system": "wgs84", "dry_run": "1"},
        files={"file": ("cells.geojson", cells, "application/geo+json")},
    )
    assert checked.status_code == 200, checked.text[:2000]
    assert "试运行检查通过" in checked.text
    assert grid.stats(db.uow()) == []  # a dry run stores nothing


def test_only_an_admin_may_open_or_use_the_grid_page(world: World, client: TestClient) -> None:
    for username in ("leader", "dispatcher", "operator"):
        token = login(client, username)
        assert client.get(PAGE).status_code == 403, username
        resp = client.post(f"{PAGE}/build", data={"csrf_token": token, "cell_size": "1000"})
        assert resp.status_code == 403, username
        assert f'href="{PAGE}"' not in client.get("/staff").text
    login(client, "admin")
    assert f'href="{PAGE}"' in client.get("/staff").text  # the admin's menu has it
