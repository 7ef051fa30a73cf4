"""The ledgers through HTTP (the router, as the lead mounts it) and through the CLI."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from docx import Document
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from PIL import Image
from tests.world import PASSWORD, World
from typer.testing import CliRunner

from cityloop.cli_support import use_database
from cityloop.db.engine import Database
from cityloop.ledgers import service
from cityloop.ledgers.cli import app as ledger_cli
from cityloop.ledgers.cli import parse_date
from cityloop.ledgers.domain import LedgerKind
from cityloop.ledgers.evidence import EvidenceStore
from cityloop.ledgers.schemas import GroupCreate, ItemCreate, LedgerCreate
from cityloop.ledgers.views import router
from cityloop.web.app import create_app


@pytest.fixture
def client(
    db: Database, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    # Evidence goes to this test's directory, not ./var.
    monkeypatch.setattr(EvidenceStore, "default", classmethod(lambda cls: cls(tmp_path / "ev")))
    app = create_app(db)
    if not any(getattr(r, "path", "").startswith("/api/v1/ledgers") for r in app.routes):
        app.include_router(router)
    return TestClient(app)


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(out, format="PNG")
    return out.getvalue()


def make_ledger(db: Database, world: World) -> tuple[int, int]:
    ledger = service.create_ledger(
        db.uow(),
        world.leader,
        LedgerCreate(
            kind=LedgerKind.RECTIFICATION, title="巡察整改台账", feedback_on=dt.date(2023, 2, 3)
        ),
    )
    aspect = service.add_group(db.uow(), world.leader, ledger.id, GroupCreate(title="方面"))
    problem = service.add_group(
        db.uow(), world.leader, ledger.id, GroupCreate(title="问题", parent_id=aspect.id)
    )
    item = service.add_item(
        db.uow(),
        world.leader,
        ledger.id,
        ItemCreate(
            group_id=problem.id, content="措施", unit_id=world.drainage_id, deadline="2023年6月30日"
        ),
    )
    return ledger.id, item.id


def test_the_sign_off_flow_over_http(client: TestClient, db: Database, world: World) -> None:
    ledger_id, item_id = make_ledger(db, world)
    operator, leader, admin = (
        login(client, "operator"),
        login(client, "leader"),
        login(client, "admin"),
    )
    outsider = login(client, "outsider")
    base = "/api/v1/ledgers"

    response = client.post(
        f"{base}/items/{item_id}/progress",
        headers=operator,
        data={"text": "已完成排查", "status": "in_progress"},
        files=[("files", ("现场.png", png(), "image/png"))],
    )
    assert response.status_code == 201, response.text
    evidence_id = response.json()["evidence"][0]["id"]

    assert client.get(f"{base}/items/{item_id}", headers=outsider).status_code == 404
    assert (
        client.post(f"{base}/items/{item_id}/actions/submit", headers=outsider).status_code == 404
    )

    detail = client.get(f"{base}/items/{item_id}", headers=operator).json()
    assert detail["allowed_actions"] == ["submit"]
    assert (
        client.post(f"{base}/items/{item_id}/actions/submit", headers=operator).status_code == 200
    )
    assert client.post(f"{base}/items/{item_id}/actions/review", headers=leader).status_code == 200
    rejected = client.post(
        f"{base}/items/{item_id}/actions/reject", headers=admin, json={"reason": ""}
    )
    assert rejected.status_code == 422 and rejected.json()["field"] == "reason"
    approved = client.post(f"{base}/items/{item_id}/actions/approve", headers=admin, json={})
    assert approved.json()["signoff_state"] == "signed_off"

    download = client.get(f"{base}/evidence/{evidence_id}", headers=leader)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert "filename*=UTF-8''%E7%8E%B0%E5%9C%BA.png" in download.headers["content-disposition"]

    stats = client.get(f"{base}/{ledger_id}/stats", headers=leader).json()
    assert stats["totals"]["signed_off"] == 1 and stats["totals"]["groups_done"] == 1
    assert client.get(f"{base}/{ledger_id}/chart.svg", headers=leader).text.startswith("<svg")
    assert client.get(f"{base}/meta", headers=operator).json()["states"]["signed_off"] == "已销号"


def test_excel_and_bulletin_over_http(client: TestClient, db: Database, world: World) -> None:
    ledger_id, _ = make_ledger(db, world)
    leader = login(client, "leader")
    base = f"/api/v1/ledgers/{ledger_id}"
    export = client.get(f"{base}/export.xlsx", headers=leader)
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).worksheets[0]
    assert sheet["D3"].value == "措施"

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["序号", "方面", "问题", "整改措施", "责任单位", "整改时限"])
    ws.append([1, "方面二", "问题二", "新措施", "无此单位", "明天"])
    bad = io.BytesIO()
    wb.save(bad)
    response = client.post(
        f"{base}/import",
        headers=leader,
        files={"file": ("台账.xlsx", bad.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 422
    assert [(e["row"], e["column"]) for e in response.json()["errors"]] == [
        (2, "责任单位"),
        (2, "整改时限"),
    ]

    md = client.get(f"{base}/bulletin", headers=leader, params={"format": "md"})
    assert md.status_code == 200 and "共细化了1条整改措施" in md.text
    docx = client.get(f"{base}/bulletin", headers=leader)
    assert "共细化了1条整改措施" in "".join(
        p.text for p in Document(io.BytesIO(docx.content)).paragraphs
    )
    custom = client.post(
        f"{base}/bulletin",
        headers=leader,
        data={"format": "md"},
        files={
            "template": (
                "t.md",
                "# {{ title }}\n\n共{{ counts.measures }}条。\n".encode(),
                "text/plain",
            )
        },
    )
    assert custom.status_code == 200 and custom.text.endswith("共1条。\n")
    template = client.get("/api/v1/ledgers/templates/rectification", headers=leader)
    assert "整改工作组织情况" in template.text
    operator = login(client, "operator")
    assert client.get(f"{base}/export.xlsx", headers=operator).status_code == 403


@pytest.fixture
def cli_db(db: Database) -> Iterator[Database]:
    use_database(db)
    yield db
    use_database(None)


def test_the_cli_imports_exports_and_writes_bulletins(
    cli_db: Database, world: World, tmp_path: Path
) -> None:
    runner = CliRunner()
    ledger_id, _ = make_ledger(cli_db, world)
    out = tmp_path / "ledger.xlsx"
    result = runner.invoke(ledger_cli, ["export", str(ledger_id), "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        ledger_cli,
        ["import", str(out), "--title", "副本", "--feedback-date", "2023-02-03"],
    )
    assert result.exit_code == 0, result.output
    assert "imported 1 rows into ledger" in result.output
    listing = runner.invoke(ledger_cli, ["list"]).output
    assert "副本" in listing and "巡察整改台账" in listing

    fields = tmp_path / "fields.json"
    fields.write_text(
        json.dumps(
            {
                "subject": "区城市管理委党组",
                "next_steps": [{"heading": "强化跟踪问效", "text": "继续清单化管理。"}],
                "contact_phone": "88487410",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    edited = runner.invoke(
        ledger_cli, ["edit", str(ledger_id), "--from-json", str(fields), "--as-of", "2023-05-21"]
    )
    assert edited.exit_code == 0, edited.output

    md = tmp_path / "b.md"
    result = runner.invoke(
        ledger_cli, ["bulletin", str(ledger_id), "--format", "md", "--out", str(md)]
    )
    assert result.exit_code == 0, result.output
    text = md.read_text(encoding="utf-8")
    assert "截至5月21日" in text and "（一）强化跟踪问效。" in text and "电话88487410" in text

    template = tmp_path / "t.md"
    assert (
        runner.invoke(ledger_cli, ["template", "rectification", "--out", str(template)]).exit_code
        == 0
    )
    template.write_text("# {{ title }}\n\n自定义：{{ counts_sentence }}\n", encoding="utf-8")
    docx = tmp_path / "b.docx"
    result = runner.invoke(
        ledger_cli,
        [
            "bulletin",
            str(ledger_id),
            "--format",
            "docx",
            "--out",
            str(docx),
            "--template",
            str(template),
        ],
    )
    assert result.exit_code == 0, result.output
    paragraphs = [p.text for p in Document(str(docx)).paragraphs]
    assert paragraphs[1].startswith("自定义：针对巡察反馈的1个方面1个问题")

    stats = runner.invoke(ledger_cli, ["stats", str(ledger_id)])
    assert stats.exit_code == 0 and "按责任单位" in stats.output
    as_json = json.loads(runner.invoke(ledger_cli, ["stats", str(ledger_id), "--json"]).output)
    assert as_json["totals"]["items"] == 1
    chart = tmp_path / "c.svg"
    assert runner.invoke(ledger_cli, ["chart", str(ledger_id), "--out", str(chart)]).exit_code == 0
    assert chart.read_text(encoding="utf-8").startswith("<svg")


def test_cli_dates_are_read_in_the_usual_forms() -> None:
    assert parse_date("2023-02-03", option="x") == dt.date(2023, 2, 3)
    assert parse_date("2023年2月3日", option="x") == dt.date(2023, 2, 3)
    assert parse_date("2023/2/3", option="x") == dt.date(2023, 2, 3)
    assert parse_date(None, option="x") is None
    with pytest.raises(Exception, match="2023-02-03"):
        parse_date("yesterday", option="as-of")
