"""The Open311 server over HTTP (FastAPI's TestClient), on SQLite and PostgreSQL.

JSON answers are validated against the shared JSON Schemas (../shared/open311/schema/), which we
did not write; XML answers are parsed and read by the spec's element names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.integration.open311.open311_support import (
    Catalog,
    assert_w3c,
    client_key,
    counts,
    error_of,
    mount,
    seed_catalog,
    set_open311,
    validate,
    xml,
)

from cityloop.config import get_settings
from cityloop.db.engine import Database
from cityloop.web.app import create_app

BASE = "/open311/v2"


@pytest.fixture
def client(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield TestClient(mount(create_app(db)))
    get_settings.cache_clear()


@pytest.fixture
def catalog(db: Database) -> Catalog:
    return seed_catalog(db)


@pytest.fixture
def key(db: Database) -> str:
    return client_key(db)


def form(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": key,
        "service_code": "C0101",
        "lat": "31.30",
        "long": "120.60",
        "description": "井盖破损(演示)",
        "email": "zhang@example.cn",
        "phone": "13800000000",
        "first_name": "三",
        "last_name": "张",
        **extra,
    }


def create(client: TestClient, key: str, **extra: Any) -> str:
    resp = client.post(f"{BASE}/requests.json", data=form(key, **extra))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1
    return str(body[0]["service_request_id"])


# --- discovery, services, definitions --------------------------------------------------------


def test_discovery_names_the_endpoint_and_both_formats(client: TestClient) -> None:
    body = client.get(f"{BASE}/discovery.json").json()
    endpoint = body["endpoints"][0]
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    root = xml(client.get(f"{BASE}/discovery.xml").content)
    assert root.tag == "discovery"
    assert [f.text for f in root.iterfind("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]


def test_services_validate_and_the_xml_uses_the_spec_names(
    client: TestClient, catalog: Catalog
) -> None:
    resp = client.get(f"{BASE}/services.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    services = resp.json()
    validate("services.json", services)
    for service in services:
        validate("service.json", service)
    resp = client.get(f"{BASE}/services.xml")
    assert resp.headers["content-type"].startswith("text/xml")
    assert resp.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = xml(resp.content)
    assert root.tag == "services"
    assert [s.findtext("service_code") for s in root.iterfind("service")] == [
        s["service_code"] for s in services
    ]
    first = root.find("service")
    assert first is not None
    assert first.findtext("metadata") == "true" and first.findtext("type") == "realtime"
    assert first.findtext("group") == "公用设施"


def test_definitions_validate_in_json_and_read_in_xml(client: TestClient, catalog: Catalog) -> None:
    definition = client.get(f"{BASE}/services/C0101.json").json()
    validate("service-definition.json", definition)
    assert definition["service_code"] == "C0101"
    root = xml(client.get(f"{BASE}/services/C0101.xml").content)
    assert root.tag == "service_definition"
    situation = root.find("attributes/attribute")
    assert situation is not None and situation.findtext("code") == "situation"
    assert situation.findtext("datatype") == "singlevaluelist"
    keys = [v.findtext("key") for v in situation.iterfind("values/value")]
    assert keys == [str(i) for i in catalog.manhole_rows]
    datatypes = {a.findtext("datatype") for a in root.iterfind("attributes/attribute")}
    assert "multivaluelist" in datatypes and "datetime" in datatypes


# --- POST and GET requests -------------------------------------------------------------------


def test_a_post_with_list_attributes_reads_back_valid_and_private(
    world: object, client: TestClient, catalog: Catalog, key: str
) -> None:
    code = create(
        client,
        key,
        **{
            "attribute[situation]": str(catalog.manhole_rows[1]),
            "attribute[impact][]": ["traffic", "night"],
            "attribute[landmark]": "公交站旁",
            "media_url": "https://fms.example/p/1.jpg",
        },
    )
    listing = client.get(f"{BASE}/requests.json")
    assert listing.headers["x-total-count"] == "1"
    validate("requests.json", listing.json())
    one = client.get(f"{BASE}/requests/{code}.json", params={"extensions": "true"})
    body = one.json()
    validate("requests.json", body)
    request = body[0]
    validate("request.json", request)
    assert request["service_request_id"] == code and request["status"] == "open"
    assert request["service_code"] == "C0101" and request["service_name"] == "上水井盖"
    assert request["media_url"] == "https://fms.example/p/1.jpg"
    assert (request["lat"], request["long"]) == (31.3, 120.6)
    for name in ("requested_datetime", "updated_datetime"):
        assert_w3c(request[name])
    impact = request["attributes"][1]
    assert [v["key"] for v in impact["values"]] == ["traffic", "night"]
    assert request["notes"][0]["summary"] == "上报"

    root = xml(client.get(f"{BASE}/requests/{code}.xml", params={"extensions": "true"}).content)
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id") == code
    assert root.findtext("request/status") == "open"
    assert root.findtext("request/long") == "120.6"
    values = root.findall("request/attributes/attribute/values/value/key")
    assert [v.text for v in values] == [str(catalog.manhole_rows[1]), "traffic", "night"]
    assert root.findtext("request/notes/note/type") == "activity"
    alias = client.get(f"{BASE}/request/{code}.json").json()
    assert alias[0]["service_request_id"] == code

    for resp in (listing, one, client.get(f"{BASE}/requests.xml?extensions=true")):
        for private in ("zhang@example.cn", "13800000000", "张三"):
            assert private not in resp.text


def test_a_post_answers_in_xml_too(
    world: object, client: TestClient, catalog: Catalog, key: str
) -> None:
    resp = client.post(f"{BASE}/requests.xml", data=form(key, service_code="E0101"))
    assert resp.status_code == 200
    root = xml(resp.content)
    assert root.tag == "service_requests"
    code = root.findtext("request/service_request_id")
    assert code
    listed = client.get(f"{BASE}/requests.json", params={"service_request_id": code}).json()
    assert [r["service_code"] for r in listed] == ["E0101"]


def test_the_idempotency_key_header_guards_a_retry(
    world: object, client: TestClient, catalog: Catalog, key: str
) -> None:
    headers = {"Idempotency-Key": "fms-77"}
    first = client.post(f"{BASE}/requests.json", data=form(key), headers=headers).json()
    second = client.post(f"{BASE}/requests.json", data=form(key), headers=headers).json()
    assert first == second
    assert client.get(f"{BASE}/requests.json").headers["x-total-count"] == "1"


def test_paging_and_filters_over_http(
    world: object, client: TestClient, catalog: Catalog, key: str
) -> None:
    codes = [create(client, key) for _ in range(3)]
    page = client.get(f"{BASE}/requests.json", params={"page": "2", "page_size": "2"})
    assert page.headers["x-total-count"] == "3"
    assert [r["service_request_id"] for r in page.json()] == [codes[0]]
    assert client.get(f"{BASE}/requests.json", params={"status": "closed"}).json() == []
    root = xml(client.get(f"{BASE}/requests.xml", params={"status": "closed"}).content)
    assert root.tag == "service_requests" and len(root) == 0


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_errors_are_the_spec_list_with_400_403_and_404(
    world: object, client: TestClient, catalog: Catalog, key: str, fmt: str
) -> None:
    cases = [
        (client.get(f"{BASE}/requests.{fmt}", params={"start_date": "2026-02-30T00:00:00Z"}), 400),
        (client.get(f"{BASE}/requests.{fmt}", params={"jurisdiction_id": "elsewhere"}), 404),
        (client.get(f"{BASE}/requests/nope.{fmt}"), 404),
        (client.get(f"{BASE}/services/C0999.{fmt}"), 404),
        (client.get(f"{BASE}/tokens/nope.{fmt}"), 404),
        (client.get(f"{BASE}/nothing-here.{fmt}"), 404),
        (client.post(f"{BASE}/requests.{fmt}", data=form("wrong-key")), 403),
        (client.post(f"{BASE}/requests.{fmt}", data=form(key, service_code="C0999")), 400),
        (client.post(f"{BASE}/requests.{fmt}", data=form(key, lat="", long="")), 400),
        (
            client.post(f"{BASE}/requests.{fmt}", data=form(key, description="长" * 2001)),
            400,
        ),
        (client.post(f"{BASE}/servicerequestupdates.{fmt}", data={"api_key": "x"}), 403),
        (client.put(f"{BASE}/requests.{fmt}"), 404),
    ]
    for resp, status in cases:
        assert resp.status_code == status, (resp.request.url, resp.text)
        media = "application/json" if fmt == "json" else "text/xml"
        assert resp.headers["content-type"].startswith(media)
        code, description = error_of(resp.text, fmt)
        assert code == status and description, resp.text
    assert client.get(f"{BASE}/requests.json").json() == []  # no refused POST left a case


def test_an_unknown_format_answers_in_xml(client: TestClient) -> None:
    resp = client.get(f"{BASE}/services.html")
    assert resp.status_code == 400 and resp.headers["content-type"].startswith("text/xml")
    assert error_of(resp.text, "xml")[1].startswith("format 'html' is not supported")
    resp = client.get(f"{BASE}/requests/2026")
    assert resp.status_code == 400 and "end the resource in .xml or .json" in resp.text


def test_bad_posts_leave_no_trace(
    world: object, client: TestClient, db: Database, catalog: Catalog, key: str
) -> None:
    before = counts(db)
    for bad in (
        form("nope"),
        form(key, service_code="E9999"),
        form(key, lat="", long=""),
        form(key, description="长" * 2001),
        form(key, jurisdiction_id="elsewhere"),
        form(key, **{"attribute[impact][]": ["flood"]}),
        form(key, end_date="x", email="bad"),
    ):
        assert client.post(f"{BASE}/requests.json", data=bad).status_code in (400, 403, 404)
    assert counts(db) == before


# --- tokens (queued mode) and servicerequestupdates ------------------------------------------


def test_queued_mode_over_http(
    world: object, client: TestClient, db: Database, catalog: Catalog, key: str
) -> None:
    from cityloop.open311 import service as open311

    set_open311(db, queued=True)
    created = client.post(f"{BASE}/requests.json", data=form(key)).json()[0]
    token = created["token"]
    assert "service_request_id" not in created
    pending = client.get(f"{BASE}/tokens/{token}.json").json()
    assert pending == [{"service_request_id": None, "token": token, "token_status": "pending"}]
    open311.process_queue(db.uow)
    resolved = client.get(f"{BASE}/tokens/{token}.json").json()[0]
    root = xml(client.get(f"{BASE}/tokens/{token}.xml").content)
    assert root.findtext("request/service_request_id") == resolved["service_request_id"]
    assert root.findtext("request/token") == token
    one = client.get(f"{BASE}/requests/{resolved['service_request_id']}.json").json()
    validate("requests.json", one)


def test_updates_go_both_ways(
    world: object, client: TestClient, catalog: Catalog, key: str
) -> None:
    code = create(client, key)
    update = {
        "api_key": key,
        "service_request_id": code,
        "update_id": "fms-1",
        "status": "OPEN",
        "updated_datetime": "2026-11-23T10:00:00+08:00",
        "description": "还没修(演示)",
        "email": "li@example.cn",
    }
    resp = client.post(f"{BASE}/servicerequestupdates.xml", data=update)
    assert resp.status_code == 200, resp.text
    root = xml(resp.content)
    assert root.tag == "service_request_updates"
    update_id = root.findtext("request_update/update_id")
    assert update_id and update_id.startswith("n")
    again = client.post(f"{BASE}/servicerequestupdates.json", data=update).json()
    assert again == [{"update_id": update_id}]
    feed = client.get(f"{BASE}/servicerequestupdates.json")
    assert feed.headers["x-total-count"] == "1"
    (item,) = feed.json()
    assert item["update_id"] == update_id and item["service_request_id"] == code
    assert item["status"] == "open" and item["description"] == "还没修(演示)"
    assert_w3c(item["updated_datetime"])
    root = xml(client.get(f"{BASE}/servicerequestupdates.xml").content)
    assert root.findtext("request_update/service_request_id") == code
    assert "li@example.cn" not in feed.text
    notes = client.get(f"{BASE}/requests/{code}.json?extensions=true").json()[0]["notes"]
    assert [n["type"] for n in notes] == ["activity", "comment"]
    assert json.dumps(notes, ensure_ascii=False).count("还没修") == 1
