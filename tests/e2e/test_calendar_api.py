"""Calendar over HTTP: anyone logged in computes deadlines; only admins change overrides."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.world import PASSWORD, World

from cityloop.db.engine import Database
from cityloop.web.app import create_app


@pytest.fixture
def client(db: Database) -> TestClient:
    return TestClient(create_app(db))


def login(client: TestClient, username: str) -> dict[str, str]:
    token = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_the_national_day_deadline_over_http(world: World, client: TestClient) -> None:
    resp = client.get(
        "/api/v1/calendar/deadline",
        params={"start": "2026-09-30T17:00:00+08:00", "limit": "2工作日"},
        headers=login(client, "operator"),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["deadline_local"] == "2026-10-09 17:00"


def test_an_admin_override_moves_deadlines_and_others_are_refused(
    world: World, client: TestClient
) -> None:
    body = {"day": "2026-10-09", "kind": "holiday", "note": "台风停工(演示)"}
    assert (
        client.post(
            "/api/v1/calendar/overrides", json=body, headers=login(client, "dispatcher")
        ).status_code
        == 403
    )
    admin = login(client, "admin")
    created = client.post("/api/v1/calendar/overrides", json=body, headers=admin)
    assert created.status_code == 201
    resp = client.get(
        "/api/v1/calendar/deadline",
        params={"start": "2026-09-30T17:00:00+08:00", "limit": "2工作日"},
        headers=admin,
    )
    assert resp.json()["deadline_local"] == "2026-10-10 17:00"  # 10-10 is a make-up working day
    assert client.post("/api/v1/calendar/overrides", json=body, headers=admin).status_code == 409
    assert client.delete("/api/v1/calendar/overrides/2026-10-09", headers=admin).status_code == 200


def test_a_missing_year_or_unknown_unit_is_a_named_error(world: World, client: TestClient) -> None:
    admin = login(client, "admin")
    resp = client.get(
        "/api/v1/calendar/deadline",
        params={"start": "2031-03-02T09:00:00+08:00", "limit": "2工作日"},
        headers=admin,
    )
    assert resp.status_code == 422 and "2031" in resp.json()["message"]
    resp = client.get(
        "/api/v1/calendar/deadline",
        params={"start": "2026-03-02T09:00:00+08:00", "limit": "2fortnights"},
        headers=admin,
    )
    assert resp.status_code == 422 and resp.json()["field"] == "limit"
