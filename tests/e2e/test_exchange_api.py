"""The exchange over HTTP (FastAPI's TestClient), on SQLite and PostgreSQL: the export
endpoint, the inbound endpoint and its refusals, the province's read-only views."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.integration.exchange.exchange_support import (
    install_outbox_hook,
    mount,
    seed,
    walk,
)
from tests.world import PASSWORD, World

from cityloop.config import get_settings
from cityloop.db.engine import Database
from cityloop.exchange import service
from cityloop.org.domain import SYSTEM_ACTOR
from cityloop.web.app import create_app

CITY = "320300"


@pytest.fixture
def client(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    install_outbox_hook(monkeypatch)
    return TestClient(mount(create_app(db)))


def login(client: TestClient, username: str) -> dict[str, str]:
    resp = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def test_the_export_streams_a_file_within_the_users_scope(
    world: World, db: Database, client: TestClient
) -> None:
    standard = seed(db)
    walk(db, world, standard, until="dispatch")
    walk(db, world, standard, until="dispatch", department="sanitation")
    resp = client.get(
        "/api/v1/exchange/export", params={"format": "csv"}, headers=login(client, "dispatcher")
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'filename="cases-' in resp.headers["content-disposition"]
    assert len(list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))) == 2
    mine = client.get(
        "/api/v1/exchange/export",
        params={"format": "geojson", "status": "dispatched"},
        headers=login(client, "operator"),
    )
    assert mine.status_code == 200
    features = json.loads(mine.content)["features"]
    assert [f["properties"]["department_code"] for f in features] == ["drainage"]
    parquet = client.get(
        "/api/v1/exchange/export", params={"format": "parquet"}, headers=login(client, "leader")
    )
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"


def test_export_refusals_are_clear(world: World, client: TestClient) -> None:
    assert client.get("/api/v1/exchange/export", params={"format": "csv"}).status_code == 401
    headers = login(client, "dispatcher")
    bad = client.get("/api/v1/exchange/export", params={"format": "pdf"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["field"] == "format"
    naive = client.get(
        "/api/v1/exchange/export",
        params={"format": "csv", "reported_from": "2026-11-01T00:00:00"},
        headers=headers,
    )
    assert naive.status_code == 422 and "timezone" in naive.json()["message"]


def doc(code: str, seq: int, city: str = CITY) -> dict[str, Any]:
    return {
        "schema": "cityloop.exchange.case-event",
        "version": 1,
        "city": {"code": city, "name": "徐州市"},
        "case": {
            "code": code,
            "seq": seq,
            "event": "filed",
            "event_at": "2026-11-23T01:00:00Z",
            "state": "filed",
            "channel": "inspector",
            "reported_at": "2026-11-23T00:50:00Z",
        },
    }


def test_inbound_answers_each_bad_input_with_its_status(
    world: World, db: Database, client: TestClient
) -> None:
    token = service.add_partner(db.uow(), SYSTEM_ACTOR, CITY, "徐州市").token
    url = "/api/v1/exchange/inbound"
    auth = {"Authorization": f"Bearer {token}"}
    batch = {"documents": [doc("A", 1), doc("B", 1)]}

    assert client.post(url, json=batch).status_code == 401
    assert client.post(url, json=batch, headers={"Authorization": "Bearer nope"}).status_code == 401
    wrong_city = client.post(url, json={"documents": [doc("A", 1, "110108")]}, headers=auth)
    assert wrong_city.status_code == 403 and "not the city" in wrong_city.json()["message"]
    garbage = client.post(url, content=b"{]", headers={**auth, "Content-Type": "application/json"})
    assert garbage.status_code == 422 and garbage.json()["field"] == "body"
    future = client.post(url, json={"documents": [{**doc("A", 1), "version": 9}]}, headers=auth)
    assert future.status_code == 422 and "version 9" in future.json()["message"]
    huge = client.post(url, content=b"x" * (2 * 1024 * 1024), headers=auth)
    assert huge.status_code == 413 and huge.json()["error"] == "PayloadTooLarge"

    ok = client.post(url, json=batch, headers=auth)
    assert ok.status_code == 200 and ok.json()["accepted"] == 2
    replay = client.post(url, json=batch, headers=auth)
    assert replay.status_code == 200
    assert (replay.json()["accepted"], replay.json()["duplicates"]) == (0, 2)

    leader = login(client, "leader")
    cities = client.get("/api/v1/exchange/cities", headers=leader).json()
    assert [(c["city_code"], c["cases"], c["events"]) for c in cities] == [(CITY, 2, 2)]
    page = client.get("/api/v1/exchange/cases", params={"city": CITY}, headers=leader).json()
    assert page["total"] == 2 and {c["case_code"] for c in page["items"]} == {"A", "B"}
    bad_city = client.get("/api/v1/exchange/cases", params={"city": "xx"}, headers=leader)
    assert bad_city.status_code == 422
    operator = client.get("/api/v1/exchange/cities", headers=login(client, "operator"))
    assert operator.status_code == 403
