"""The command-centre dashboard over HTTP (TestClient), on SQLite and PostgreSQL.

A small seeded world: three cases reported today (two from the public web, one by an inspector),
one open case reported 40 days ago (long overdue), and one reported three days ago that drainage
handled and the shift supervisor closed today. The page, its refresh partial and its JSON must
show exactly those numbers.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from shapely.geometry import box
from tests.e2e.webclient import login
from tests.world import World, add_manhole_standard

from cityloop.cases import attachments
from cityloop.cases import service as cases
from cityloop.cases.domain import PUBLIC_CHANNELS, CaseAction, Channel
from cityloop.cases.schemas import CaseActionRequest, CaseCreate, Location, Reporter
from cityloop.db.engine import Database
from cityloop.grid import service as grid
from cityloop.grid.boundaries import Boundary
from cityloop.grid.coords import CoordSystem
from cityloop.org.domain import Actor

NOW = dt.datetime.now(dt.UTC)
HERE = (116.30123, 39.96456)  # inside Haidian and inside the small test district below


pytestmark = pytest.mark.usefixtures("web_env")


@pytest.fixture
def client(web_client: TestClient) -> TestClient:
    return web_client


def standard(db: Database) -> int:
    return add_manhole_standard(db)


def report(
    db: Database, actor: Actor | None, channel: Channel, at: dt.datetime, **extra: object
) -> int:
    data = CaseCreate(
        channel=channel,
        description="井盖破损(演示)",
        location=Location(lon=HERE[0], lat=HERE[1], system=CoordSystem.WGS84),
        address="海淀区某路 1 号(演示)",
        reporter=Reporter(name="张三(演示)", phone="13800000000")
        if channel in PUBLIC_CHANNELS
        else None,
        **extra,  # type: ignore[arg-type]
    )
    return cases.report(db.uow(), actor, data, now=at).id


def act(db: Database, actor: Actor, case_id: int, action: CaseAction, **fields: object) -> None:
    version = cases.get_case(db.uow(), actor, case_id).version
    req = CaseActionRequest(action=action, version=version, **fields)  # type: ignore[arg-type]
    cases.act(db.uow(), actor, case_id, req, now=NOW)


def photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def seeded(db: Database, world: World) -> World:
    standard_id = standard(db)
    report(db, None, Channel.PUBLIC_WEB, NOW, family="component", minor_code="0101")
    report(db, None, Channel.PUBLIC_WEB, NOW)
    report(db, world.inspector, Channel.INSPECTOR, NOW)
    report(db, None, Channel.PUBLIC_WEB, NOW - dt.timedelta(days=40))  # long overdue
    closed = report(db, None, Channel.PUBLIC_WEB, NOW - dt.timedelta(days=3))
    act(db, world.intake, closed, CaseAction.SEND_VERIFY, inspector="inspector")
    act(db, world.inspector, closed, CaseAction.VERIFY_FOUND)
    act(db, world.supervisor, closed, CaseAction.FILE, standard_id=standard_id)
    act(db, world.dispatcher, closed, CaseAction.DISPATCH, department_code="drainage")
    evidence = attachments.upload(
        db.uow(), world.operator, filename="p.jpg", content=photo(), stage="feedback"
    ).id
    act(
        db,
        world.operator,
        closed,
        CaseAction.DISPOSE,
        reason="已更换井盖",
        attachment_ids=[evidence],
    )
    act(db, world.intake, closed, CaseAction.SEND_CHECK, inspector="inspector")
    act(db, world.inspector, closed, CaseAction.CHECK_PASS)
    act(db, world.supervisor, closed, CaseAction.CLOSE)
    return world


def kpis(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-kpi="(\w+)">(\d+)<', html)}


def row(html: str, table: str, key: str) -> list[int]:
    """The four numbers of one breakdown row: reported today, open, overdue, closed today."""
    section = html.split(f'data-breakdown="{table}"', 1)[1].split("</table>", 1)[0]
    cells = section.split(f'data-key="{key}"', 1)[1].split("</tr>", 1)[0]
    return [int(n) for n in re.findall(r'class="num[^"]*"[^>]*>(\d+)<', cells)]


@pytest.mark.parametrize(
    ("lang", "title"), [("zh", "指挥中心大屏"), ("en", "Command-centre dashboard")]
)
def test_the_dashboard_shows_the_seeded_numbers_in_both_languages(
    seeded: World, client: TestClient, lang: str, title: str
) -> None:
    login(client, "leader")
    resp = client.get(f"/staff/dashboard?lang={lang}")
    assert resp.status_code == 200, resp.text[:500]
    html = resp.text
    assert title in html
    assert kpis(html) == {"intake": 3, "open": 4, "overdue": 1, "closed": 1}
    assert row(html, "channel", "public_web") == [2, 3, 1, 1]
    assert row(html, "channel", "inspector") == [1, 1, 0, 0]
    assert row(html, "department", str(seeded.drainage_id)) == [0, 0, 0, 1]
    assert row(html, "department", "") == [3, 4, 1, 0]  # not dispatched yet
    assert "上水井盖" in html  # the top classes name the minor class
    assert 'class="chart trend-chart"' in html and "<script>" not in html
    assert 'hx-get="/staff/dashboard/panel"' in html and "hx-preserve" in html
    assert "排水服务中心(演示)" in html


def test_the_json_has_the_trend_and_the_top_classes(seeded: World, client: TestClient) -> None:
    login(client, "dispatcher")
    data = client.get("/staff/dashboard/data.json").json()
    assert (data["intake"], data["open"], data["overdue"], data["closed"]) == (3, 4, 1, 1)
    assert len(data["trend"]) == 30
    assert data["trend"][-1]["intake"] == 3 and data["trend"][-1]["closed"] == 1
    assert data["trend"][-4]["intake"] == 1  # the case closed today came in three days ago
    assert sum(p["intake"] for p in data["trend"]) == 4  # the 40-day-old case is outside
    assert data["classes"] == [
        {"family": "component", "code": "0101", "name": "上水井盖", "intake": 2, "open": 1}
    ]


def test_the_refresh_partial_shows_a_new_case(
    seeded: World, db: Database, client: TestClient
) -> None:
    login(client, "supervisor")
    before = client.get("/staff/dashboard/panel")
    assert before.status_code == 200
    assert "<html" not in before.text  # a fragment to swap in, not a page
    assert kpis(before.text)["intake"] == 3
    report(db, seeded.intake, Channel.HOTLINE_12345, dt.datetime.now(dt.UTC))
    after = kpis(client.get("/staff/dashboard/panel").text)
    assert after == {"intake": 4, "open": 5, "overdue": 1, "closed": 1}
    assert row(client.get("/staff/dashboard/panel").text, "channel", "hotline_12345") == [
        1,
        1,
        0,
        0,
    ]


def test_only_the_centres_steering_roles_see_the_dashboard(
    world: World, client: TestClient
) -> None:
    for username in ("leader", "dispatcher", "supervisor", "admin"):
        login(client, username)
        page = client.get("/staff")
        assert 'href="/staff/dashboard"' in page.text, username
        assert client.get("/staff/dashboard").status_code == 200, username
    for username in ("inspector", "intake", "operator"):
        login(client, username)
        assert 'href="/staff/dashboard"' not in client.get("/staff").text, username
        for path in ("/staff/dashboard", "/staff/dashboard/panel", "/staff/dashboard/data.json"):
            assert client.get(path).status_code == 403, (username, path)
    client.cookies.clear()
    anonymous = client.get("/staff/dashboard", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    # A background refresh after the session ended sends the whole page to the login.
    expired = client.get(
        "/staff/dashboard/panel",
        headers={"HX-Request": "true", "HX-Current-URL": "http://x/staff/dashboard?lang=en"},
        follow_redirects=False,
    )
    assert expired.status_code == 204
    assert expired.headers["HX-Redirect"] == "/login?next=%2Fstaff%2Fdashboard%3Flang%3Den"


def test_the_map_shades_cells_by_open_cases(db: Database, world: World, client: TestClient) -> None:
    district = Boundary(adcode="110199", name="测试区", geometry=box(116.30, 39.95, 116.33, 39.975))
    grid.build(db.uow(), world.admin, adcode="110199", cell_size=500, boundary=district)
    for _ in range(3):
        report(db, None, Channel.PUBLIC_WEB, NOW)
    login(client, "leader")
    hotspots = client.get("/staff/dashboard/cells.geojson").json()
    assert hotspots["mode"] == "hotspots"
    [cell] = hotspots["features"]
    assert cell["properties"]["open"] == 3 and cell["properties"]["code"].startswith("110199")
    assert cell["geometry"]["type"] == "Polygon"
    assert hotspots["breaks"] == [1, 2]
    inside = client.get("/staff/dashboard/cells.geojson?bbox=116.29,39.95,116.31,39.97").json()
    assert [f["id"] for f in inside["features"]] == [cell["id"]]
    away = client.get("/staff/dashboard/cells.geojson?bbox=116.32,39.97,116.33,39.975").json()
    assert away["features"] == []
    assert client.get("/staff/dashboard/cells.geojson?bbox=1,2,3").status_code == 422
