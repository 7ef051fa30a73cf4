"""A client we did not write (``georeport`` from PyPI) reads a live server on loopback.

The server is uvicorn in a thread on a free 127.0.0.1 port, over a database committed for real
(``fresh_database_url``), with the built-in catalog. georeport cannot POST, so requests are
created with httpx, the way any form-posting client would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import uvicorn
from georeport import GeoReport
from tests.integration.open311.open311_support import mount, validate

from cityloop.catalog import service as catalog
from cityloop.db import migrate
from cityloop.db.engine import Database, make_engine
from cityloop.open311 import service as open311
from cityloop.org.domain import SYSTEM_ACTOR
from cityloop.web.app import create_app

JURISDICTION = "suzhou.example"


@dataclass(frozen=True)
class Live:
    root: str  # http://127.0.0.1:PORT/open311/v2
    api_key: str


@pytest.fixture
def live(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback only, never a proxy
    engine = make_engine(fresh_database_url)
    migrate.upgrade(engine)
    database = Database(engine)
    catalog.load_defaults(database.uow(), SYSTEM_ACTOR)
    open311.update_settings(database.uow(), SYSTEM_ACTOR, {"jurisdiction_id": JURISDICTION})
    api_key = open311.add_client(database.uow(), SYSTEM_ACTOR, "FixMyStreet").api_key

    config = uvicorn.Config(
        mount(create_app(database)), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped while starting"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Live(root=f"http://127.0.0.1:{port}/open311/v2", api_key=api_key)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        engine.dispose()


def post(live: Live, **fields: Any) -> str:
    data = {
        "jurisdiction_id": JURISDICTION,
        "api_key": live.api_key,
        "service_code": "C0101",
        "lat": "31.2989",
        "long": "120.5853",
        "description": "井盖缺失，有安全隐患(演示)",
        "email": "citizen@example.cn",
        **fields,
    }
    resp = httpx.post(f"{live.root}/requests.json", data=data, timeout=10)
    assert resp.status_code == 200, resp.text
    return str(resp.json()[0]["service_request_id"])


def test_georeport_reads_services_definitions_and_requests_as_json(live: Live) -> None:
    first = post(live, **{"attribute[impact][]": ["traffic", "safety"]})
    second = post(live, service_code="E0101", lat="", long="", address_string="人民路 1 号(演示)")
    client = GeoReport(live.root, jurisdiction=JURISDICTION, output_format="json")

    services = client.get_service_list()
    validate("services.json", services)
    codes = {s["service_code"] for s in services}
    assert {"C0101", "E0101"} <= codes and len(services) > 100  # the built-in catalog
    manhole = next(s for s in services if s["service_code"] == "C0101")
    assert manhole["service_name"] == "上水井盖" and manhole["group"] == "公用设施"

    definition = client.get_service_definition("C0101")
    validate("service-definition.json", definition)
    situation = definition["attributes"][0]
    assert situation["datatype"] == "singlevaluelist" and len(situation["values"]) == 4

    requests = client.get_service_requests()
    validate("requests.json", requests)
    assert [r["service_request_id"] for r in requests] == [second, first]
    assert [r["service_request_id"] for r in client.get_service_requests(service_code="E0101")] == [
        second
    ]
    assert client.get_service_requests(status="closed") == []
    both = client.get_service_requests(service_request_id=f"{first},{second}")
    assert {r["service_request_id"] for r in both} == {first, second}

    one = client.get_service_request(first)
    validate("request.json", one)
    assert one["status"] == "open" and one["service_code"] == "C0101"
    assert "citizen@example.cn" not in str(requests) + str(one)


def test_georeport_reads_the_same_in_xml(live: Live) -> None:
    code = post(live)
    client = GeoReport(live.root, jurisdiction=JURISDICTION, output_format="xml")

    services = client.get_service_list()
    assert any(s["service_code"] == "C0101" for s in services)
    definition = client.get_service_definition("C0101")
    assert definition["service_code"] == "C0101"
    attributes = definition["attributes"]["attribute"]
    assert attributes[0]["code"] == "situation"
    assert attributes[0]["values"]["value"][0]["key"]

    listed = client.get_service_requests()  # one request: xmltodict gives the element itself
    assert listed["service_request_id"] == code and listed["status"] == "open"
    one = client.get_service_request(code)
    assert one["service_request_id"] == code and one["service_name"] == "上水井盖"


def test_a_live_server_refuses_a_wrong_jurisdiction(live: Live) -> None:
    client = GeoReport(live.root, jurisdiction="elsewhere", output_format="json")
    with pytest.raises(requests.HTTPError, match="404"):
        client.get_service_list()
