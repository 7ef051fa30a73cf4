"""The ledger pages over HTTP (TestClient), on SQLite and PostgreSQL.

A rectification ledger made through the service: one aspect, a problem with a drainage measure
and a problem with a sanitation measure. Drainage's operator walks its measure through the forms
(evidence, submit), the leader reviews, the admin approves; export, import and the bulletin
download; sanitation's operator never sees drainage's measure.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass

import pytest
from docx import Document
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image
from tests.e2e.webclient import CSRF_RE, login
from tests.world import World

from cityloop.db.engine import Database
from cityloop.ledgers import service
from cityloop.ledgers.domain import LedgerKind, SignoffState
from cityloop.ledgers.schemas import GroupCreate, ItemCreate, LedgerCreate

VERSION_RE = re.compile(r'name="version" value="(\d+)"')


pytestmark = pytest.mark.usefixtures("web_env")


@pytest.fixture
def client(web_client: TestClient) -> TestClient:
    return web_client


def form_of(html: str) -> tuple[str, str]:
    """The CSRF token and the item version of a page's forms."""
    token, version = CSRF_RE.search(html), VERSION_RE.search(html)
    assert token and version
    return token.group(1), version.group(1)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class Ledger:
    id: int
    drainage_item: int
    sanitation_item: int


@pytest.fixture
def ledger(db: Database, world: World) -> Ledger:
    made = service.create_ledger(
        db.uow(),
        world.leader,
        LedgerCreate(
            kind=LedgerKind.RECTIFICATION,
            title="巡察整改台账(演示)",
            subject="区城市管理委党组(演示)",
            feedback_on=dt.date(2023, 2, 3),
        ),
    )
    aspect = service.add_group(db.uow(), world.leader, made.id, GroupCreate(title="落实责任方面"))
    items = []
    for title, unit, content in [
        ("井盖管理不到位问题", world.drainage_id, "全面排查破损井盖(演示)"),
        ("垃圾清运不及时问题", world.sanitation_id, "加密清运频次(演示)"),
    ]:
        problem = service.add_group(
            db.uow(), world.leader, made.id, GroupCreate(title=title, parent_id=aspect.id)
        )
        items.append(
            service.add_item(
                db.uow(),
                world.leader,
                made.id,
                ItemCreate(
                    group_id=problem.id, content=content, unit_id=unit, deadline="2023年6月30日"
                ),
            ).id
        )
    return Ledger(made.id, items[0], items[1])


def item_page(client: TestClient, item_id: int) -> str:
    resp = client.get(f"/staff/ledgers/items/{item_id}")
    assert resp.status_code == 200, resp.text[:1000]
    return resp.text


def act(client: TestClient, item_id: int, action: str, **extra: object) -> str:
    token, version = form_of(item_page(client, item_id))
    files = extra.pop("files", None)
    resp = client.post(
        f"/staff/ledgers/items/{item_id}/act",
        data={"csrf_token": token, "version": version, "action": action, **extra},
        files=files,  # type: ignore[arg-type]
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:2000]
    assert resp.headers["location"].endswith(f"did={action}")
    return str(resp.headers["location"])


def state(db: Database, world: World, item_id: int) -> SignoffState:
    return service.get_item(db.uow(), world.leader, item_id).item.signoff_state


def test_a_measure_walks_through_sign_off_on_the_pages(
    world: World, db: Database, client: TestClient, ledger: Ledger
) -> None:
    login(client, "operator")
    listing = client.get("/staff/ledgers")
    assert "巡察整改台账(演示)" in listing.text and 'href="/staff/ledgers"' in listing.text
    page = client.get(f"/staff/ledgers/{ledger.id}")
    assert page.status_code == 200
    assert "全面排查破损井盖(演示)" in page.text and "加密清运频次(演示)" not in page.text
    assert "data-export" not in page.text  # a whole ledger is the centre's to export

    html = item_page(client, ledger.drainage_item)
    assert 'data-action="submit"' in html and "data-progress-form" in html
    token, _ = form_of(html)
    progress = client.post(
        f"/staff/ledgers/items/{ledger.drainage_item}/progress",
        data={
            "csrf_token": token,
            "text": "已排查井盖 120 个(演示)",
            "status": "in_progress",
            "completion": "",
            "completion_was": "",
        },
        follow_redirects=False,
    )
    assert progress.status_code == 303
    assert "已排查井盖 120 个(演示)" in item_page(client, ledger.drainage_item)

    act(
        client,
        ledger.drainage_item,
        "submit",
        reason="整改完成，附现场照片",
        files=[("files", ("现场.png", png(), "image/png"))],
    )
    assert state(db, world, ledger.drainage_item) is SignoffState.SUBMITTED
    after = item_page(client, ledger.drainage_item)
    assert "data-progress-form" not in after and 'data-action="review"' not in after

    login(client, "leader")
    html = item_page(client, ledger.drainage_item)
    assert 'data-action="review"' in html and 'data-action="reject"' in html
    evidence = re.search(r'data-evidence="(\d+)"', html)
    assert evidence
    download = client.get(f"/staff/ledgers/evidence/{evidence.group(1)}")
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    act(client, ledger.drainage_item, "review")
    assert 'data-action="approve"' not in item_page(client, ledger.drainage_item)  # 4 eyes

    login(client, "admin")
    act(client, ledger.drainage_item, "approve")
    assert state(db, world, ledger.drainage_item) is SignoffState.SIGNED_OFF
    page = client.get(f"/staff/ledgers/{ledger.id}?lang=en")
    assert 'data-kpi="signed_off">1 <small>/ 2' in page.text
    assert 'data-kpi="groups_done">1 <small>/ 2' in page.text
    assert "<svg" in page.text and "Signed off" in page.text

    # Look-back: a relapse needs a reason; without one the page says so and nothing changes.
    token, version = form_of(item_page(client, ledger.drainage_item))
    refused = client.post(
        f"/staff/ledgers/items/{ledger.drainage_item}/act",
        data={"csrf_token": token, "version": version, "action": "relapse", "reason": ""},
    )
    assert refused.status_code == 422 and "Please give a reason." in refused.text  # still en
    assert state(db, world, ledger.drainage_item) is SignoffState.SIGNED_OFF
    act(client, ledger.drainage_item, "relapse", reason="回头看发现又有破损")
    assert state(db, world, ledger.drainage_item) is SignoffState.RELAPSED


def test_a_stale_form_is_sent_back(
    world: World, db: Database, client: TestClient, ledger: Ledger
) -> None:
    login(client, "leader")
    token, version = form_of(item_page(client, ledger.drainage_item))
    service.add_progress(
        db.uow(), world.operator, ledger.drainage_item, files=[("a.png", png())]
    )  # the item moves on meanwhile
    resp = client.post(
        f"/staff/ledgers/items/{ledger.drainage_item}/act",
        data={"csrf_token": token, "version": version, "action": "submit"},
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"].endswith("notice=stale")
    assert "data-stale" in client.get(resp.headers["location"]).text


def test_export_import_and_the_bulletin(
    world: World, db: Database, client: TestClient, ledger: Ledger
) -> None:
    login(client, "leader")
    page = client.get(f"/staff/ledgers/{ledger.id}").text
    assert "data-export" in page and 'data-bulletin="docx"' in page
    export = client.get(f"/staff/ledgers/{ledger.id}/export.xlsx")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    assert "全面排查破损井盖(演示)" in [c.value for row in sheet.iter_rows() for c in row]

    docx = client.get(f"/staff/ledgers/{ledger.id}/bulletin.docx")
    assert docx.status_code == 200 and "filename*=UTF-8''" in docx.headers["content-disposition"]
    text = "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    assert "2个问题" in text and "2条整改措施" in text
    markdown = client.get(f"/staff/ledgers/{ledger.id}/bulletin.md")
    assert markdown.status_code == 200 and "2条整改措施" in markdown.text
    assert client.get(f"/staff/ledgers/{ledger.id}/bulletin.pdf").status_code == 404

    # A new ledger from the list page, filled from the exported workbook.
    token = CSRF_RE.search(client.get("/staff/ledgers").text)
    assert token
    created = client.post(
        "/staff/ledgers",
        data={"csrf_token": token.group(1), "kind": "rectification", "title": "复制的台账(演示)"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    new_page = created.headers["location"]
    token = CSRF_RE.search(client.get(new_page).text)
    assert token
    imported = client.post(
        f"{new_page}/import",
        data={"csrf_token": token.group(1)},
        files={"workbook": ("ledger.xlsx", export.content, "application/octet-stream")},
        follow_redirects=False,
    )
    assert imported.status_code == 303 and imported.headers["location"].endswith("imported=2")
    assert "加密清运频次(演示)" in client.get(new_page).text
    broken = client.post(
        f"{new_page}/import",
        data={"csrf_token": token.group(1)},
        files={"workbook": ("bad.xlsx", b"not a workbook", "application/octet-stream")},
    )
    assert broken.status_code == 422 and "工作簿未导入" in broken.text

    login(client, "operator")
    assert client.get(f"/staff/ledgers/{ledger.id}/export.xlsx").status_code == 403
    assert client.get(f"/staff/ledgers/{ledger.id}/bulletin.docx").status_code == 403


def test_another_units_operator_is_refused(
    world: World, db: Database, client: TestClient, ledger: Ledger
) -> None:
    only_drainage = service.create_ledger(
        db.uow(),
        world.leader,
        LedgerCreate(kind=LedgerKind.CHECKLIST, title="排水清单(演示)"),
    )
    section = service.add_group(
        db.uow(), world.leader, only_drainage.id, GroupCreate(title="汛期准备")
    )
    service.add_item(
        db.uow(),
        world.leader,
        only_drainage.id,
        ItemCreate(group_id=section.id, content="疏通雨水口(演示)", unit_id=world.drainage_id),
    )
    login(client, "outsider")
    listing = client.get("/staff/ledgers").text
    assert "巡察整改台账(演示)" in listing and "排水清单(演示)" not in listing
    page = client.get(f"/staff/ledgers/{ledger.id}").text
    assert "加密清运频次(演示)" in page and "全面排查破损井盖(演示)" not in page
    assert client.get(f"/staff/ledgers/{only_drainage.id}").status_code == 404
    assert client.get(f"/staff/ledgers/items/{ledger.drainage_item}").status_code == 404
    token, version = form_of(item_page(client, ledger.sanitation_item))
    for path, data in [
        ("act", {"action": "submit", "version": version}),
        ("progress", {"text": "越权(演示)"}),
    ]:
        resp = client.post(
            f"/staff/ledgers/items/{ledger.drainage_item}/{path}",
            data={"csrf_token": token, **data},
        )
        assert resp.status_code == 404, (path, resp.text[:500])
    assert state(db, world, ledger.drainage_item) is SignoffState.OPEN
    assert service.get_item(db.uow(), world.leader, ledger.drainage_item).progress == []
    # Nor may an operator create a ledger.
    resp = client.post(
        "/staff/ledgers", data={"csrf_token": token, "kind": "checklist", "title": "x"}
    )
    assert resp.status_code == 403
