"""The whole loop through the pages, in headless Chromium (Debian's chromium, Playwright's API).

A real uvicorn server runs in a thread on a free loopback port against a fresh, committed
SQLite database. Nothing is mocked: the browser fills the forms a citizen and seven staff
members would fill, with a photo at the report and at the disposal.

Needs ``apt-get install chromium`` and the ``playwright`` Python package (never
``playwright install``: the browser comes from Debian). Skipped when either is missing.

Set ``CITYLOOP_SCREENSHOTS=/some/dir`` to also write screenshots of every main page, phone and
desktop, Chinese and English (``test_screenshots_of_every_main_page``).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from tests.world import PASSWORD, World, build_world

from cityloop.catalog.models import FilingStandard, MajorClass, MinorClass
from cityloop.config import get_settings
from cityloop.db.engine import Database
from cityloop.db.migrate import upgrade
from cityloop.web.app import create_app
from cityloop.web.security import SlidingWindowLimiter
from cityloop.web.settings import get_web_settings
from cityloop.web.site import install_site

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Not skipped when missing: `make test` installs Debian's chromium and the playwright package.
import playwright.sync_api as playwright_sync  # noqa: E402

# One backend is enough here: the pages are the same on both, and the loop itself runs on
# PostgreSQL in the service and API tests.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@dataclass
class Site:
    base_url: str
    database: Database
    world: World
    photo: Path
    app: FastAPI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _catalog_row(database: Database) -> None:
    """上水井盖 (component 0101) with one filing-standard row: enough to file a case."""
    with database.uow() as uow:
        major = MajorClass(family="component", code="01", name="公用设施")
        uow.session.add(major)
        uow.session.flush()
        minor = MinorClass(family="component", major_id=major.id, code="0101", name="上水井盖")
        uow.session.add(minor)
        uow.session.flush()
        uow.session.add(
            FilingStandard(
                minor_id=minor.id,
                position=1,
                filing_criterion="破损超过25c㎡",
                closing_criterion="更换或修复",
                limit_text="2工作日",
                limit_amount=2,
                limit_unit="day",
                limit_clock="working",
            )
        )
        uow.commit()


@pytest.fixture
def site(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    import uvicorn

    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CITYLOOP_TILE_URL", raising=False)
    get_settings.cache_clear()
    get_web_settings.cache_clear()
    database = Database.from_url(fresh_database_url)
    upgrade(database.engine)
    world = build_world(database)
    _catalog_row(database)
    app = install_site(create_app(database))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    else:  # pragma: no cover
        raise RuntimeError("the test server did not start")
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(buf, "JPEG")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(buf.getvalue())
    try:
        yield Site(base_url, database, world, photo, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        database.engine.dispose()
        get_settings.cache_clear()
        get_web_settings.cache_clear()


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def staff_page(browser: object, site: Site, username: str) -> object:
    """A fresh browser context (its own cookies) logged in as ``username``."""
    context = browser.new_context(base_url=site.base_url)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/staff")
    return page


def open_case_from_inbox(page: object, code: str) -> None:
    page.goto("/staff")  # type: ignore[attr-defined]
    page.click(f"a.code:text-is('{code}')")  # type: ignore[attr-defined]
    page.wait_for_url("**/staff/cases/*")  # type: ignore[attr-defined]


def take_action(
    page: object,
    action: str,
    *,
    fill: dict[str, str] | None = None,
    select: dict[str, str] | None = None,
    photo: Path | None = None,
) -> None:
    form = page.locator(f"details[data-action='{action}']")  # type: ignore[attr-defined]
    form.evaluate("d => { d.open = true; }")
    for name, value in (select or {}).items():
        form.locator(f"select[name='{name}']").select_option(value)
    for name, value in (fill or {}).items():
        form.locator(f"[name='{name}']").fill(value)
    if photo is not None:
        form.locator("input[name='photos']").set_input_files(str(photo))
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    notice = page.locator(".alert-ok")  # type: ignore[attr-defined]
    notice.wait_for()
    assert "已完成" in notice.inner_text()


def test_a_citizen_report_runs_the_whole_loop_in_the_browser(site: Site, browser: object) -> None:
    # 1. A citizen reports from a phone: class by picture, description, photo, map click.
    phone = browser.new_context(  # type: ignore[attr-defined]
        base_url=site.base_url,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    citizen = phone.new_page()
    citizen.goto("/report")
    citizen.click("details[data-class-group] summary:has-text('公用设施')")
    citizen.check("input[name='class'][value='component:0101']")
    citizen.fill("#description", "井盖破损，有行人绊倒的危险(演示)")
    citizen.set_input_files("#photos", str(site.photo))
    citizen.wait_for_function("() => document.querySelector('#pick-map').cityloopMap")
    citizen.locator("#pick-map").click()
    assert citizen.input_value("#lon") and citizen.input_value("#lat")
    citizen.fill("#address", "中关村大街27号北门(演示)")
    citizen.click("button:has-text('提交上报')")
    citizen.wait_for_url("**/report/receipt/*")
    code = citizen.inner_text("[data-case-code]").strip()
    assert re.fullmatch(r"\d{13}", code)

    # 2. The intake operator sends it for verification to the inspector.
    intake = staff_page(browser, site, "intake")
    open_case_from_inbox(intake, code)
    take_action(intake, "send_verify", select={"inspector": "inspector"})
    # 3. The inspector confirms it on site.
    inspector = staff_page(browser, site, "inspector")
    open_case_from_inbox(inspector, code)
    take_action(inspector, "verify_found", fill={"reason": "现场属实"})
    # 4. The shift supervisor files it against the class's criterion (offered already).
    supervisor = staff_page(browser, site, "supervisor")
    open_case_from_inbox(supervisor, code)
    take_action(supervisor, "file")
    # 5. The dispatcher dispatches it from the board.
    dispatcher = staff_page(browser, site, "dispatcher")
    dispatcher.goto("/staff/board")
    row = dispatcher.locator("tr", has=dispatcher.locator(f"a.code:text-is('{code}')"))
    row.locator("select[name='department_code']").select_option("drainage")
    row.locator("button[type=submit]").click()
    dispatcher.wait_for_url("**/staff/board?done=*")
    # 6. The drainage operator disposes of it with a photo.
    operator = staff_page(browser, site, "operator")
    open_case_from_inbox(operator, code)
    take_action(operator, "dispose", fill={"reason": "已更换井盖"}, photo=site.photo)
    # 7. The check passes: intake sends it, the inspector passes it.
    open_case_from_inbox(intake, code)
    take_action(intake, "send_check", select={"inspector": "inspector"})
    open_case_from_inbox(inspector, code)
    take_action(inspector, "check_pass", photo=site.photo)
    # 8. The shift supervisor closes it.
    open_case_from_inbox(supervisor, code)
    take_action(supervisor, "close")
    supervisor.goto(f"/staff/cases?q={code}")
    supervisor.click(f"a.code:text-is('{code}')")
    assert "已结案" in supervisor.inner_text(".page-head")
    assert supervisor.locator(".timeline img").count() >= 2  # report and disposal photos

    # 9. The citizen's lookup shows it closed, with no personal data.
    citizen.goto(f"/track?code={code}")
    assert citizen.inner_text("[data-public-status]") == "已结案"
    text = citizen.inner_text("main")
    assert "中关村大街" not in text and "井盖破损" not in text and "operator" not in text

    # The language switch works and is remembered.
    citizen.click("a[data-lang='en']")
    citizen.wait_for_url("**lang=en*")
    assert citizen.inner_text("[data-public-status]") == "Closed"
    assert citizen.get_attribute("html", "lang") == "en"
    citizen.goto("/")
    assert "Report a problem" in citizen.inner_text("main")
    citizen.click("a[data-lang='zh']")
    assert "我要上报" in citizen.inner_text("main")


# --- screenshots (opt-in) --------------------------------------------------------------------

SHOTS = os.environ.get("CITYLOOP_SCREENSHOTS", "")


def test_screenshots_of_every_main_page(site: Site, browser: object, tmp_path: Path) -> None:
    """With CITYLOOP_SCREENSHOTS set, every main page in both sizes and languages (for people
    to look at); without it, a quick pass over a few pages into a temporary folder."""
    from tests.e2e.test_web_pages import act, dispatched_case, public_case  # seed data

    from cityloop.catalog import service as catalog
    from cityloop.org.domain import SYSTEM_ACTOR

    # The full built-in catalog, so the class picker looks as a city would see it.
    catalog.load_defaults(site.database.uow(), SYSTEM_ACTOR, replace=True)
    with site.database.uow() as uow:
        standard = (
            uow.session.query(FilingStandard)
            .join(MinorClass, MinorClass.id == FilingStandard.minor_id)
            .filter(MinorClass.code == "0101", MinorClass.family == "component")
            .filter(FilingStandard.active.is_(True))
            .order_by(FilingStandard.position)
            .first()
        )
        assert standard is not None
        standard = standard.id
    w = site.world
    # Sixteen logins in a row: more than the per-address login limit allows.
    site.app.state.login_limiter = SlidingWindowLimiter(10_000, 1)
    case_id = dispatched_case(site.database, w, standard, "drainage")
    public_case(site.database)
    from cityloop.cases.domain import CaseAction

    act(site.database, w.leader, case_id, CaseAction.URGE, reason="群众反映强烈")
    out = Path(SHOTS) if SHOTS else tmp_path / "shots"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    public = ["/", "/report", "/track?code=" + "CODE", "/map", "/login"]
    staff: dict[str, list[str]] = {
        "intake": ["/staff", "/staff/cases?status=dispatched", "/staff/report"],
        "dispatcher": ["/staff/board"],
        "operator": ["/staff", f"/staff/cases/{case_id}", "/staff/department"],
        "admin": [
            "/staff/admin",
            "/staff/admin/users",
            "/staff/admin/departments",
            "/staff/admin/catalog",
            "/staff/admin/calendar",
        ],
    }
    from cityloop.cases import service as cases

    code = cases.get_case(site.database.uow(), w.intake, case_id).code
    sizes = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
    if not SHOTS:
        public = ["/report", "/track?code=CODE"]
        staff = {"operator": [f"/staff/cases/{case_id}"]}
    for size_name, viewport in sizes.items():
        for lang in ("zh", "en"):
            targets: list[tuple[str | None, str]] = [
                (None, p.replace("CODE", code)) for p in public
            ]
            targets += [(user, p) for user, paths in staff.items() for p in paths]
            pages: dict[str | None, object] = {}
            for user, path in targets:
                if user not in pages:
                    context = browser.new_context(  # type: ignore[attr-defined]
                        base_url=site.base_url,
                        viewport=viewport,
                        is_mobile=size_name == "phone",
                        device_scale_factor=1,
                    )
                    page = context.new_page()
                    if user:
                        page.goto("/login")
                        page.fill("#username", user)
                        page.fill("#password", PASSWORD)
                        page.click("form[action='/login'] button[type=submit]")
                        page.wait_for_url("**/staff")
                    pages[user] = page
                page = pages[user]
                sep = "&" if "?" in path else "?"
                page.goto(f"{path}{sep}lang={lang}")  # type: ignore[attr-defined]
                page.wait_for_timeout(400)  # type: ignore[attr-defined]
                name = re.sub(r"[^a-z0-9]+", "-", f"{user or 'public'}{path.split('?')[0]}").strip(
                    "-"
                )
                page.screenshot(  # type: ignore[attr-defined]
                    path=str(out / f"{size_name}-{lang}-{name}.png"), full_page=True
                )
    shots = sorted(out.glob("*.png"))
    assert len(shots) == len(sizes) * 2 * (len(public) + sum(len(p) for p in staff.values()))
    assert all(
        p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in shots
    )
