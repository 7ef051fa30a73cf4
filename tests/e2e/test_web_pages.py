"""The server-rendered pages over HTTP (FastAPI's TestClient), on SQLite and PostgreSQL.

Cast (tests/conftest.py): a citizen (no login), the centre's staff, ``operator`` of drainage and
``outsider`` of sanitation, who must never see drainage's cases.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import select
from tests.e2e.webclient import CSRF_RE, csrf, login
from tests.world import PASSWORD, World, add_manhole_standard

from cityloop.cases import attachments
from cityloop.cases import service as cases
from cityloop.cases.domain import CaseAction, CaseState, Channel
from cityloop.cases.models import Case, CaseAttachment
from cityloop.cases.schemas import CaseActionRequest, CaseCreate, Location, Reporter
from cityloop.db.engine import Database
from cityloop.grid.coords import CoordSystem
from cityloop.org.domain import Actor
from cityloop.web.settings import get_web_settings

ROLES = ["inspector", "intake", "supervisor", "dispatcher", "operator", "leader", "admin"]


pytestmark = pytest.mark.usefixtures("web_env")


@pytest.fixture
def client(web_client: TestClient) -> TestClient:
    return web_client


@pytest.fixture
def standard_id(db: Database) -> int:
    """上水井盖 broken > 25 cm² -> 2 working days (a catalog of one row)."""
    return add_manhole_standard(db)


def photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def public_case(db: Database, **extra: object) -> int:
    data = CaseCreate(
        channel=Channel.PUBLIC_WEB,
        description="井盖破损，张三家门口(演示)",
        location=Location(lon=116.30123, lat=39.96456, system=CoordSystem.WGS84),
        address="海淀区某路 1 号(演示)",
        reporter=Reporter(name="张三(演示)", phone="13800000000", email="zs@example.com"),
        **extra,  # type: ignore[arg-type]
    )
    return cases.report(db.uow(), None, data).id


def act(db: Database, actor: Actor, case_id: int, action: CaseAction, **fields: object) -> None:
    version = cases.get_case(db.uow(), actor, case_id).version
    req = CaseActionRequest(action=action, version=version, **fields)  # type: ignore[arg-type]
    cases.act(db.uow(), actor, case_id, req)


def dispatched_case(db: Database, w: World, standard_id: int, department: str) -> int:
    case_id = public_case(db)
    act(db, w.intake, case_id, CaseAction.SEND_VERIFY, inspector="inspector")
    act(db, w.inspector, case_id, CaseAction.VERIFY_FOUND, reason="属实，现场有人围观")
    act(db, w.supervisor, case_id, CaseAction.FILE, standard_id=standard_id)
    act(db, w.dispatcher, case_id, CaseAction.DISPATCH, department_code=department)
    return case_id


# --- pages in both languages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "html_lang", "marker"), [("zh", "zh-CN", "我要上报"), ("en", "en", "Report a problem")]
)
def test_every_public_page_renders_in_both_languages(
    world: World,
    db: Database,
    client: TestClient,
    standard_id: int,
    lang: str,
    html_lang: str,
    marker: str,
) -> None:
    code = cases.get_case(db.uow(), world.intake, public_case(db)).code
    for path in [
        "/",
        "/report",
        "/track",
        f"/track?code={code}",
        "/map",
        "/login",
        f"/report/receipt/{code}",
    ]:
        sep = "&" if "?" in path else "?"
        resp = client.get(f"{path}{sep}lang={lang}")
        assert resp.status_code == 200, (path, resp.text[:500])
        assert f'<html lang="{html_lang}">' in resp.text
        assert marker in resp.text, path


def test_chinese_is_the_default_and_the_switch_is_remembered(client: TestClient) -> None:
    assert "工作人员登录" in client.get("/").text
    english = client.get("/?lang=en")
    assert "Staff login" in english.text
    assert "cityloop_lang=en" in english.headers["set-cookie"]
    assert "Staff login" in client.get("/track").text  # the cookie keeps English
    assert "工作人员登录" in client.get("/track?lang=zh").text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_staff_page_renders_for_every_role_in_both_languages(
    world: World, db: Database, client: TestClient, standard_id: int, lang: str
) -> None:
    case_id = dispatched_case(db, world, standard_id, "drainage")
    pages = {
        "inspector": ["/staff", "/staff/cases", "/staff/report", f"/staff/cases/{case_id}"],
        "intake": ["/staff", "/staff/cases", "/staff/report", "/staff/department"],
        "supervisor": ["/staff", "/staff/board", "/staff/department", f"/staff/cases/{case_id}"],
        "dispatcher": ["/staff", "/staff/board", "/staff/department?department=sanitation"],
        "operator": ["/staff", "/staff/department", "/staff/cases", f"/staff/cases/{case_id}"],
        "leader": ["/staff", "/staff/board", f"/staff/cases/{case_id}", "/staff/inbox"],
        "admin": [
            "/staff",
            "/staff/admin",
            "/staff/admin/users",
            "/staff/admin/departments",
            "/staff/admin/catalog",
            "/staff/admin/calendar?year=2026",
            f"/staff/cases/{case_id}",
        ],
    }
    for username, paths in pages.items():
        client.cookies.clear()
        login(client, username)
        for path in paths:
            sep = "&" if "?" in path else "?"
            resp = client.get(f"{path}{sep}lang={lang}")
            assert resp.status_code == 200, (username, path, resp.text[:300])
            if path != "/staff/inbox":  # a fragment the workbench swaps in
                assert ("退出" if lang == "zh" else "Log out") in resp.text


def test_staff_pages_send_an_anonymous_visitor_to_the_login(client: TestClient) -> None:
    resp = client.get("/staff/cases?q=x", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=%2Fstaff%2Fcases%3Fq%3Dx"


def test_a_role_without_the_page_gets_a_friendly_403(world: World, client: TestClient) -> None:
    login(client, "operator")
    resp = client.get("/staff/admin/users")
    assert resp.status_code == 403
    assert "无权操作" in resp.text


# --- security ----------------------------------------------------------------------------------


def test_a_post_without_a_valid_csrf_token_is_refused(
    world: World, db: Database, client: TestClient
) -> None:
    form = {"description": "路灯不亮", "address": "某路(演示)"}
    resp = client.post("/report", data=form)
    assert resp.status_code == 403
    assert "表单已过期" in resp.text
    # A token signed for another browser does not match this browser's cookie.
    other = TestClient(client.app)
    foreign = csrf(other, "/report")
    client.get("/report")
    assert client.post("/report", data={**form, "csrf_token": foreign}).status_code == 403
    assert client.post("/report", data={**form, "csrf_token": "forged"}).status_code == 403
    resp = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert resp.status_code == 403
    with db.uow() as uow:
        assert uow.session.scalars(select(Case)).all() == []


def test_login_sets_a_hardened_session_cookie_and_logout_revokes_it(
    world: World, client: TestClient
) -> None:
    token = csrf(client)
    wrong = client.post(
        "/login", data={"username": "intake", "password": "nope-nope", "csrf_token": token}
    )
    assert wrong.status_code == 401
    assert "用户名或密码错误" in wrong.text
    resp = client.post(
        "/login",
        data={
            "username": "intake",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/staff"
    cookie = next(
        c for c in resp.headers.get_list("set-cookie") if c.startswith("cityloop_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    session = client.cookies.get("cityloop_session")
    assert client.get("/staff").status_code == 200
    out = client.post(
        "/logout", data={"csrf_token": csrf(client, "/staff")}, follow_redirects=False
    )
    assert out.status_code == 303
    assert client.get("/staff", follow_redirects=False).status_code == 303
    # The old cookie value is dead on the server, not only forgotten by the browser.
    client.cookies.set("cityloop_session", session or "")
    assert client.get("/staff", follow_redirects=False).status_code == 303
    # Secure is a setting.
    get_web_settings.cache_clear()
    import os

    os.environ["CITYLOOP_COOKIE_SECURE"] = "true"
    try:
        get_web_settings.cache_clear()
        resp = client.post(
            "/login",
            data={"username": "intake", "password": PASSWORD, "csrf_token": csrf(client)},
            follow_redirects=False,
        )
        assert "Secure" in resp.headers["set-cookie"]
    finally:
        del os.environ["CITYLOOP_COOKIE_SECURE"]
        get_web_settings.cache_clear()


def test_pages_carry_the_security_headers(client: TestClient) -> None:
    resp = client.get("/report")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert (
        "<script>" not in resp.text
        and " style=" not in resp.text
        and "on" + "click=" not in resp.text
    )


def test_no_page_loads_anything_from_another_host(
    world: World, client: TestClient, standard_id: int
) -> None:
    for path in ["/", "/report", "/map", "/login"]:
        html = client.get(path).text
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith(("/", "#", "?")), (path, url)
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200
    assert client.get("/static/vendor/htmx/htmx.min.js").status_code == 200


def test_public_reporting_is_rate_limited_per_address(
    world: World, db: Database, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYLOOP_REPORT_RATE_LIMIT", "2")
    get_web_settings.cache_clear()
    client.app.state.report_limiter = None  # type: ignore[attr-defined]
    for n in range(2):
        token = csrf(client, "/report")
        resp = client.post(
            "/report",
            data={"description": f"垃圾堆积 {n}", "address": "某路(演示)", "csrf_token": token},
            follow_redirects=False,
        )
        assert resp.status_code == 303, resp.text[:500]
    token = csrf(client, "/report")
    resp = client.post(
        "/report", data={"description": "第三次", "address": "某路", "csrf_token": token}
    )
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) > 0
    assert "提交过于频繁" in resp.text
    with db.uow() as uow:
        assert len(uow.session.scalars(select(Case)).all()) == 2


# --- the public side ------------------------------------------------------------------------


def test_a_citizen_reports_with_photos_and_gets_the_code(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    token = csrf(client, "/report")
    resp = client.post(
        "/report",
        data={
            "class": "component:0101",
            "description": "井盖破损",
            "lon": "116.310000",
            "lat": "39.990000",
            "address": "中关村大街(演示)",
            "name": "李四(演示)",
            "phone": "13900000000",
            "csrf_token": token,
            "idempotency_key": "web-" + "a" * 32,
        },
        files=[
            ("photos", ("a.jpg", photo(), "image/jpeg")),
            ("photos", ("b.jpg", photo(), "image/jpeg")),
        ],
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:800]
    receipt = client.get(resp.headers["location"])
    code = re.search(r"data-case-code>([^<]+)<", receipt.text)
    assert code
    with db.uow() as uow:
        case = uow.session.scalars(select(Case).where(Case.code == code.group(1))).one()
        assert case.channel == "public_web" and case.state == "reported"
        assert (case.lon, case.lat, case.coord_system) == (116.31, 39.99, "wgs84")
        assert case.reporter_phone == "13900000000"
        photos = uow.session.scalars(
            select(CaseAttachment).where(CaseAttachment.case_id == case.id)
        ).all()
        assert len(photos) == 2
    # The same form sent twice (a double tap) makes no second case.
    again = client.post(
        "/report",
        data={
            "description": "井盖破损",
            "address": "x",
            "csrf_token": token,
            "idempotency_key": "web-" + "a" * 32,
        },
        follow_redirects=False,
    )
    assert again.headers["location"] == resp.headers["location"]


def test_a_report_form_with_mistakes_comes_back_filled_in(world: World, client: TestClient) -> None:
    token = csrf(client, "/report")
    resp = client.post("/report", data={"description": "路面塌陷(演示)", "csrf_token": token})
    assert resp.status_code == 422
    assert "请在地图上标注位置或填写地址" in resp.text and "路面塌陷(演示)" in resp.text
    too_many = client.post(
        "/report",
        data={"description": "x", "address": "y", "csrf_token": token},
        files=[("photos", (f"{i}.jpg", photo(), "image/jpeg")) for i in range(4)],
    )
    assert too_many.status_code == 422 and "最多上传 3 张照片" in too_many.text
    not_image = client.post(
        "/report",
        data={"description": "x", "address": "y", "csrf_token": token},
        files=[("photos", ("evil.jpg", b"<html>not a photo</html>", "image/jpeg"))],
    )
    assert not_image.status_code == 422 and "不是可识别的照片" in not_image.text


def test_the_public_lookup_and_map_show_no_personal_data(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    case_id = dispatched_case(db, world, standard_id, "drainage")
    code = cases.get_case(db.uow(), world.intake, case_id).code
    page = client.get(f"/track?code={code}").text
    assert code in page and "处置中" in page and "已派遣至责任部门" in page
    private = [
        "张三",
        "13800000000",
        "zs@example.com",
        "海淀区某路",
        "井盖破损",
        "现场有人围观",
        "intake",
        "inspector",
        "supervisor",
        "dispatcher",
        "排水服务中心",
        "drainage",
    ]
    for text in private:
        assert text not in page, text
    geo = client.get("/geo/recent-cases.geojson").json()
    (feature,) = geo["features"]
    assert feature["geometry"]["coordinates"] == [116.301, 39.965]  # rounded to ~100 m
    assert set(feature["properties"]) == {"class", "status", "closed", "day"}
    assert not any(t in str(geo) for t in private)
    missing = client.get("/track?code=20000101-99999")
    assert missing.status_code == 404 and "没有编号为" in missing.text


# --- staff ------------------------------------------------------------------------------------


def test_a_department_operator_sees_only_its_own_cases(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    ours = dispatched_case(db, world, standard_id, "drainage")
    theirs = dispatched_case(db, world, standard_id, "sanitation")
    ours_code = cases.get_case(db.uow(), world.intake, ours).code
    theirs_code = cases.get_case(db.uow(), world.intake, theirs).code
    login(client, "operator")
    for path in ["/staff", "/staff/department", "/staff/cases", f"/staff/cases?q={theirs_code}"]:
        html = client.get(path).text
        assert f'href="/staff/cases/{theirs}"' not in html, path
        assert f">{theirs_code}<" not in html, path
    assert "暂无案件" in client.get(f"/staff/cases?q={theirs_code}").text
    assert ours_code in client.get("/staff").text
    assert ours_code in client.get("/staff/department").text
    assert client.get(f"/staff/cases/{theirs}").status_code == 403
    # The reporter's contact details are for the centre only.
    page = client.get(f"/staff/cases/{ours}").text
    assert "13800000000" not in page and "张三(演示)" not in page


def test_the_case_page_offers_exactly_the_allowed_actions(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    case_id = dispatched_case(db, world, standard_id, "drainage")
    login(client, "operator")
    html = client.get(f"/staff/cases/{case_id}").text
    offered = re.findall(r'data-action="([a-z_]+)"', html)
    allowed = cases.get_case(db.uow(), world.operator, case_id).allowed_actions
    assert sorted(offered) == sorted(a.value for a in allowed)
    assert offered[0] == "dispose"  # the step forward comes first, requests after it


def test_acting_through_the_forms_moves_the_case(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    case_id = public_case(db)
    login(client, "intake")
    page = client.get(f"/staff/cases/{case_id}").text
    token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
    resp = client.post(
        f"/staff/cases/{case_id}/act",
        data={
            "action": "send_verify",
            "version": "1",
            "inspector": "inspector",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"].startswith("/staff?done=")
    assert "已完成“派发核实”" in client.get(resp.headers["location"]).text
    # The same form again carries a stale version: a friendly message, nothing changes.
    stale = client.post(
        f"/staff/cases/{case_id}/act",
        data={"action": "send_verify", "version": "1", "csrf_token": token},
        follow_redirects=False,
    )
    assert stale.headers["location"] == f"/staff/cases/{case_id}?notice=stale"
    assert "已被他人更新" in client.get(stale.headers["location"]).text
    assert cases.get_case(db.uow(), world.intake, case_id).status is CaseState.VERIFYING
    # A refusal from the service comes back as a message on the case page.
    client.cookies.clear()
    login(client, "inspector")
    token = csrf(client, f"/staff/cases/{case_id}")
    refused = client.post(
        f"/staff/cases/{case_id}/act",
        data={"action": "verify_not_found", "version": "2", "csrf_token": token},
    )
    assert refused.status_code == 422 and "请填写理由" in refused.text


def test_a_dispose_form_uploads_its_photo_as_evidence(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    case_id = dispatched_case(db, world, standard_id, "drainage")
    login(client, "operator")
    token = csrf(client, f"/staff/cases/{case_id}")
    version = cases.get_case(db.uow(), world.operator, case_id).version
    resp = client.post(
        f"/staff/cases/{case_id}/act",
        data={
            "action": "dispose",
            "version": str(version),
            "reason": "已更换",
            "csrf_token": token,
        },
        files=[("photos", ("fixed.jpg", photo(), "image/jpeg"))],
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:500]
    timeline = cases.events(db.uow(), world.operator, case_id)
    assert timeline[-1].action == "dispose" and len(timeline[-1].attachment_ids) == 1
    photo_url = f"/staff/photos/{timeline[-1].attachment_ids[0]}"
    assert photo_url in client.get(f"/staff/cases/{case_id}").text
    img = client.get(photo_url)
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    client.cookies.clear()
    login(client, "outsider")
    assert client.get(photo_url).status_code == 403


def test_search_filters_by_status_channel_and_dates(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    dispatched = dispatched_case(db, world, standard_id, "drainage")
    fresh = public_case(db)
    codes = {i: cases.get_case(db.uow(), world.intake, i).code for i in (dispatched, fresh)}
    login(client, "dispatcher")
    html = client.get("/staff/cases?status=dispatched&channel=public_web").text
    assert codes[dispatched] in html and codes[fresh] not in html
    today = dt.date.today()
    day = dt.timedelta(days=1)
    html = client.get(f"/staff/cases?from={today - day}&to={today + day}&department=drainage").text
    assert codes[dispatched] in html and codes[fresh] not in html
    bad = client.get("/staff/cases?from=2026-13-40")
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text


def test_the_dispatcher_board_dispatches_in_place(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    case_id = public_case(db)
    act(db, world.intake, case_id, CaseAction.SEND_VERIFY, inspector="inspector")
    act(db, world.inspector, case_id, CaseAction.VERIFY_FOUND)
    act(db, world.supervisor, case_id, CaseAction.FILE, standard_id=standard_id)
    login(client, "dispatcher")
    board = client.get("/staff/board").text
    code = cases.get_case(db.uow(), world.intake, case_id).code
    assert code in board
    version = cases.get_case(db.uow(), world.dispatcher, case_id).version
    resp = client.post(
        f"/staff/cases/{case_id}/act",
        data={
            "action": "dispatch",
            "version": str(version),
            "department_code": "drainage",
            "next": "/staff/board",
            "csrf_token": CSRF_RE.search(board).group(1),
        },  # type: ignore[union-attr]
        follow_redirects=False,
    )
    assert resp.headers["location"].startswith("/staff/board?done=")
    board = client.get("/staff/board").text
    assert "排水服务中心(演示)" in board


def test_an_inspector_reports_from_the_staff_page(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    login(client, "inspector")
    token = csrf(client, "/staff/report")
    resp = client.post(
        "/staff/report",
        data={
            "channel": "inspector",
            "class": "component:0101",
            "description": "井盖缺失",
            "lon": "116.3",
            "lat": "39.98",
            "csrf_token": token,
        },
        files=[("photos", ("x.jpg", photo(), "image/jpeg"))],
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:500]
    with db.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
        assert case.channel == "inspector" and case.state == "verified"
        assert case.reporter_user_id == world.inspector.user_id


# --- admin ------------------------------------------------------------------------------------


def test_admin_manages_users_departments_and_the_calendar(
    world: World, db: Database, client: TestClient
) -> None:
    login(client, "admin")
    token = csrf(client, "/staff/admin/departments")
    resp = client.post(
        "/staff/admin/departments",
        data={
            "code": "greening",
            "name": "园林绿化所(演示)",
            "kind": "handling",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    resp = client.post(
        "/staff/admin/users",
        data={
            "username": "gardener",
            "display_name": "园林员",
            "password": "long-enough-pass-1",
            "role": "department_operator",
            "department_code": "greening",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:500]
    assert "gardener" in client.get("/staff/admin/users").text
    dup = client.post(
        "/staff/admin/users",
        data={
            "username": "gardener",
            "display_name": "x",
            "password": "long-enough-pass-1",
            "role": "inspector",
            "department_code": "centre",
            "csrf_token": token,
        },
    )
    assert dup.status_code == 409 and "未保存" in dup.text
    client.post("/staff/admin/users/gardener/active", data={"active": "0", "csrf_token": token})
    assert "gardener" in client.get("/staff/admin/users").text
    resp = client.post(
        "/staff/admin/calendar",
        data={
            "day": "2026-10-09",
            "kind": "holiday",
            "note": "台风停工(演示)",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert "台风停工(演示)" in client.get("/staff/admin/calendar?year=2026").text
    client.post("/staff/admin/calendar/2026-10-09/remove", data={"csrf_token": token})
    assert "台风停工(演示)" not in client.get("/staff/admin/calendar?year=2026").text


def test_admin_exports_and_reimports_the_catalog(
    world: World, db: Database, client: TestClient, standard_id: int
) -> None:
    login(client, "admin")
    resp = client.get("/staff/admin/catalog/export.xlsx")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert load_workbook(io.BytesIO(resp.content)).sheetnames
    token = csrf(client, "/staff/admin/catalog")
    dry = client.post(
        "/staff/admin/catalog/import",
        data={"dry_run": "1", "csrf_token": token},
        files={"workbook": ("catalog.xlsx", resp.content, "application/octet-stream")},
    )
    assert dry.status_code == 200 and "data-import-report" in dry.text
    junk = client.post(
        "/staff/admin/catalog/import",
        data={"csrf_token": token},
        files={"workbook": ("junk.xlsx", b"not a workbook", "application/octet-stream")},
    )
    assert junk.status_code == 422


def test_attachments_module_is_what_validates_uploads() -> None:
    # The web layer reuses cases.attachments' checks rather than its own.
    assert attachments.ALLOWED_FORMATS.keys() == {"JPEG", "PNG", "WEBP"}
