"""The monthly report: it opens, it shows the API's numbers, the page too, and it is stable."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from docx import Document
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.integration.evaluation.evaluation_october import CELL_X, October, build_october
from tests.world import World

from cityloop.db.engine import Database
from cityloop.errors import CityloopError
from cityloop.evaluation import audit, report, service
from cityloop.evaluation.views import router
from cityloop.org import service as org


@pytest.fixture
def october(db: Database, world: World) -> October:
    return build_october(db, world)


@pytest.fixture
def client(db: Database, world: World) -> TestClient:
    app = FastAPI()
    app.state.database = db

    @app.exception_handler(CityloopError)
    async def _error(_request: object, exc: CityloopError) -> object:
        from fastapi.responses import JSONResponse

        return JSONResponse(status_code=exc.status_code, content=exc.to_dict())

    app.include_router(router)
    return TestClient(app)


def _auth(db: Database, actor: object) -> dict[str, str]:
    token = org.issue_token(db.uow(), actor)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


def _docx_text(data: bytes) -> str:
    document = Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(c.text for c in row.cells))
    return "\n".join(parts)


def test_the_report_opens_and_shows_the_apis_numbers(
    db: Database, world: World, october: October, client: TestClient
) -> None:
    audit.draw(
        db.uow(), world.leader, "2026-10", seed=5, now=dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    )
    api = client.get("/api/v1/evaluation/months/2026-10/kpis", headers=_auth(db, world.leader))
    assert api.status_code == 200, api.text
    kpis = api.json()
    data = service.monthly_report(db.uow(), "2026-10")
    body = report.render(data, "docx")
    text = _docx_text(body)
    document = Document(io.BytesIO(body))
    assert document.core_properties.author == "cityloop"
    assert document.core_properties.title == "数字城管月度考评报告（2026年10月）"

    h = kpis["headline"]["display"]
    assert h["disposal_rate"] == "85.71%"
    for value in h.values():
        assert value in text
    assert "本月立案7件，案件处置率85.71%、按期处置率71.43%、结案率66.67%" in text
    for dept in kpis["departments"]:
        row = next(line for line in text.splitlines() if f"| {dept['name']} |" in line)
        assert dept["composite_display"] in row and dept["grade"] in row
        assert dept["display"]["on_time_disposal_rate"] in row
    assert "排水服务中心(演示) | 5 | 100.00% | 80.00%" in text
    assert "园林绿化中心(演示) | 0 | — | —" in text  # nothing due: dashes, not 0 %
    assert f"{CELL_X} | 0101 上水井盖 | 3 |" in text  # C1-C3: a repeat problem
    assert "未处置" in text  # C4 is overdue and not disposed
    assert "抽查通过率" in text and "排水服务中心(演示) | 4 | 0 | 0 | 4 | —" in text
    # Three charts with Chinese labels (the machine has a CJK font: fonts-noto-cjk).
    assert report.find_cjk_font() is not None
    media = [n for n in zipfile.ZipFile(io.BytesIO(body)).namelist() if n.startswith("word/media/")]
    assert len(media) == 3


def test_the_report_is_deterministic(db: Database, october: October) -> None:
    first = report.render(service.monthly_report(db.uow(), "2026-10"), "docx")
    second = report.render(service.monthly_report(db.uow(), "2026-10"), "docx")
    assert first == second
    html1 = report.render(service.monthly_report(db.uow(), "2026-10"), "html")
    assert html1 == report.render(service.monthly_report(db.uow(), "2026-10"), "html")


def test_the_page_and_the_api(
    db: Database, world: World, october: October, client: TestClient
) -> None:
    page = client.get("/reports/monthly/2026-10", headers=_auth(db, world.leader))
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "85.71%" in page.text and "数字城管月度考评报告（2026年10月）" in page.text
    assert page.text.count("data:image/png;base64,") == 3
    docx = client.get(
        "/api/v1/evaluation/months/2026-10/report.docx", headers=_auth(db, world.leader)
    )
    assert docx.status_code == 200
    assert Document(io.BytesIO(docx.content)).paragraphs
    # Department operators do not see the city's evaluation; the settings are admin-only.
    denied = client.get("/api/v1/evaluation/months/2026-10/kpis", headers=_auth(db, world.operator))
    assert denied.status_code == 403
    assert (
        client.put(
            "/api/v1/evaluation/settings", json={}, headers=_auth(db, world.leader)
        ).status_code
        == 403
    )
    put = client.put(
        "/api/v1/evaluation/settings",
        json={"report": {"title": "城市管理考评"}},
        headers=_auth(db, world.admin),
    )
    assert put.status_code == 200, put.text
    got = client.get("/api/v1/evaluation/settings", headers=_auth(db, world.admin)).json()
    assert got["report"]["title"] == "城市管理考评"
    assert got["grade_bands"][0] == {"grade": "A", "min_score": 90.0}
    exported = client.get(
        "/api/v1/evaluation/settings/export?format=toml", headers=_auth(db, world.admin)
    )
    assert 'title = "城市管理考评"' in exported.text
    bad = client.get("/api/v1/evaluation/months/2026-13/kpis", headers=_auth(db, world.leader))
    assert bad.status_code == 422
