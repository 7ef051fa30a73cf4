"""The case API over HTTP (FastAPI's TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from tests.world import PASSWORD, World

from cityloop.config import get_settings
from cityloop.db.engine import Database
from cityloop.web.app import create_app


@pytest.fixture
def client(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    return TestClient(create_app(db))


def login(client: TestClient, username: str) -> dict[str, str]:
    resp = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer"
    return {"Authorization": f"Bearer {body['access_token']}"}


def hotline_case(client: TestClient, headers: dict[str, str], **extra: object) -> dict[str, object]:
    payload = {
        "channel": "hotline_12345",
        "description": "路灯不亮(演示)",
        "location": {"lon": 116.31, "lat": 39.99, "system": "wgs84"},
        "reporter": {"name": "李四(演示)", "phone": "13900000000"},
        **extra,
    }
    resp = client.post("/api/v1/cases", json=payload, headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_health_names_the_backend(client: TestClient, backend: str) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["database"] == backend


def test_a_wrong_password_gets_401(world: World, client: TestClient) -> None:
    resp = client.post("/api/v1/auth/token", data={"username": "intake", "password": "nope-nope"})
    assert resp.status_code == 401
    assert "wrong username or password" in resp.json()["message"]


def test_without_a_token_the_api_answers_401(client: TestClient) -> None:
    assert client.get("/api/v1/inbox").status_code == 401


def test_intake_creates_a_case_with_code_status_deadlines_and_version(
    world: World, client: TestClient
) -> None:
    case = hotline_case(client, login(client, "intake"))
    assert case["status"] == "reported"
    assert case["version"] == 1
    assert str(case["code"]).isdigit() and len(str(case["code"])) == 13
    assert case["step"] == "send_verify" and case["step_deadline"]


def test_an_idempotency_key_never_makes_a_second_case(world: World, client: TestClient) -> None:
    headers = {**login(client, "intake"), "Idempotency-Key": "call-0001"}
    payload = {"channel": "hotline_12345", "description": "x", "address": "y"}
    first = client.post("/api/v1/cases", json=payload, headers=headers)
    second = client.post("/api/v1/cases", json=payload, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    listed = client.get("/api/v1/cases", headers=headers).json()
    assert listed["total"] == 1


def test_bad_input_is_a_422_naming_the_field(world: World, client: TestClient) -> None:
    headers = login(client, "intake")
    resp = client.post(
        "/api/v1/cases",
        json={
            "channel": "hotline_12345",
            "description": "x",
            "location": {"lon": 1, "lat": 2, "system": "mars"},
        },
        headers=headers,
    )
    assert resp.status_code == 422
    assert resp.json()["field"] == "location.system"
    resp = client.post(
        "/api/v1/cases",
        json={"channel": "pigeon", "description": "x", "address": "y"},
        headers=headers,
    )
    assert resp.status_code == 422 and resp.json()["field"] == "channel"


def test_actions_answer_403_409_and_422_as_documented(world: World, client: TestClient) -> None:
    intake = login(client, "intake")
    case = hotline_case(client, intake)
    url = f"/api/v1/cases/{case['id']}/actions"
    # 403: a dispatcher may not send a verification task.
    resp = client.post(
        url, json={"action": "send_verify", "version": 1}, headers=login(client, "dispatcher")
    )
    assert resp.status_code == 403
    # 422: closing is not possible in state 'reported'; the message names both.
    resp = client.post(
        url, json={"action": "close", "version": 1}, headers=login(client, "supervisor")
    )
    assert resp.status_code == 422
    assert "close" in resp.json()["message"] and "reported" in resp.json()["message"]
    # 200, then 409 for the same (now stale) version.
    ok = client.post(
        url, json={"action": "send_verify", "version": 1, "inspector": "inspector"}, headers=intake
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = client.post(url, json={"action": "send_verify", "version": 1}, headers=intake)
    assert stale.status_code == 409 and stale.json()["field"] == "version"


def test_a_department_operator_cannot_see_another_departments_case(
    world: World, client: TestClient
) -> None:
    case = hotline_case(client, login(client, "intake"))
    assert (
        client.get(f"/api/v1/cases/{case['id']}", headers=login(client, "outsider")).status_code
        == 403
    )
    assert client.get("/api/v1/cases", headers=login(client, "outsider")).json()["total"] == 0


def test_photos_are_sniffed_and_served_only_within_scope(world: World, client: TestClient) -> None:
    operator = login(client, "operator")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    ok = client.post(
        "/api/v1/attachments",
        files={"file": ("x.png", buf.getvalue(), "image/png")},
        headers=operator,
    )
    assert ok.status_code == 201 and ok.json()["content_type"] == "image/png"
    fake = client.post(
        "/api/v1/attachments",
        files={"file": ("evil.jpg", b"<?php echo 1; ?>", "image/jpeg")},
        headers=operator,
    )
    assert fake.status_code == 422 and fake.json()["field"] == "file"
    att_id = ok.json()["id"]
    assert client.get(f"/api/v1/attachments/{att_id}", headers=operator).status_code == 200
    assert (
        client.get(f"/api/v1/attachments/{att_id}", headers=login(client, "outsider")).status_code
        == 403
    )


def test_the_inbox_lists_nearest_deadline_first(world: World, client: TestClient) -> None:
    intake = login(client, "intake")
    first = hotline_case(client, intake)
    second = hotline_case(client, intake)
    items = client.get("/api/v1/inbox", headers=intake).json()
    assert [i["id"] for i in items] == [first["id"], second["id"]]
    assert all(i["light"] in ("green", "yellow", "red") for i in items)
    assert "send_verify" in items[0]["allowed_actions"]


def test_the_openapi_document_is_served(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/cases/{case_id}/actions" in paths
