"""Two cityloop instances on loopback: a city pushes upward to a province that is down for a
while. Nothing is lost, nothing is doubled.

* The city: uvicorn in a thread over ``fresh_database_url`` (SQLite, then PostgreSQL). Cases go
  through its real HTTP API; the outbox rows are written by the case loop's transaction.
* The province: uvicorn in a thread over its own SQLite file, on a port chosen up front so the
  city can be configured (and push, and fail) before the province ever starts.
* The pusher runs in the test process against the city's database, with the real HTTP client.
  Its clock is passed explicitly, so the backoff is checked without sleeping.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, update
from tests.e2e.serverproc import free_port
from tests.integration.exchange.exchange_support import install_outbox_hook, mount, seed
from tests.world import PASSWORD, build_world

from cityloop.config import get_settings
from cityloop.db import migrate
from cityloop.db.base import utcnow
from cityloop.db.engine import Database, make_engine
from cityloop.exchange import pusher, service
from cityloop.exchange.models import OutboxEntry, ReceivedCase, ReceivedEvent
from cityloop.org.domain import SYSTEM_ACTOR
from cityloop.web.app import create_app

HOST = "127.0.0.1"
CITY = "320300"


@contextmanager
def serving(database: Database, port: int = 0) -> Iterator[str]:
    """uvicorn in a thread on loopback; yields its base URL and always stops it."""
    config = uvicorn.Config(
        mount(create_app(database)), host=HOST, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped while starting"
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{HOST}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def migrated(url: str) -> Database:
    engine = make_engine(url)
    migrate.upgrade(engine)
    return Database(engine)


def login(base: str, username: str) -> dict[str, str]:
    resp = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=10
    )
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


class CityClient:
    """The city's staff, each logged in once, driving cases through the HTTP API."""

    def __init__(self, base: str, standard_id: int) -> None:
        self.base = base
        self.standard_id = standard_id
        self.headers = {
            u: login(base, u)
            for u in ("inspector", "supervisor", "dispatcher", "operator", "intake")
        }

    def _act(self, user: str, case_id: int, action: str, **fields: Any) -> dict[str, Any]:
        case = httpx.get(f"{self.base}/api/v1/cases/{case_id}", headers=self.headers[user])
        body = {"action": action, "version": case.json()["version"], **fields}
        resp = httpx.post(
            f"{self.base}/api/v1/cases/{case_id}/actions",
            json=body,
            headers=self.headers[user],
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def case(self, until: str) -> str:
        resp = httpx.post(
            f"{self.base}/api/v1/cases",
            json={
                "channel": "inspector",
                "description": "井盖缺失(演示)",
                "location": {"lon": 117.18, "lat": 34.26, "system": "wgs84"},
            },
            headers=self.headers["inspector"],
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        case_id = resp.json()["id"]
        self._act("supervisor", case_id, "file", standard_id=self.standard_id)
        self._act("dispatcher", case_id, "dispatch", department_code="drainage")
        if until == "close":
            self._act("operator", case_id, "dispose", reason="已修复")
            self._act("intake", case_id, "send_check", inspector="inspector")
            self._act("inspector", case_id, "check_pass")
            self._act("supervisor", case_id, "close")
        return str(resp.json()["code"])


def outbox(database: Database) -> list[tuple[str, int, dt.datetime]]:
    uow = database.uow()
    with uow.read():
        return [
            (r.state, r.attempts, r.next_attempt_at)
            for r in uow.session.scalars(select(OutboxEntry).order_by(OutboxEntry.id))
        ]


def received(database: Database) -> tuple[int, int]:
    uow = database.uow()
    with uow.read():
        s = uow.session
        return (
            int(s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0),
            int(s.scalar(select(func.count()).select_from(ReceivedCase)) or 0),
        )


@pytest.fixture
def instances(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Database, Database]]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback only, never a proxy
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(pusher.ENV_URL, raising=False)
    monkeypatch.delenv(pusher.ENV_TOKEN, raising=False)
    get_settings.cache_clear()
    install_outbox_hook(monkeypatch)
    city = migrated(fresh_database_url)
    province = migrated(f"sqlite:///{tmp_path / 'province.db'}")
    try:
        yield city, province
    finally:
        city.engine.dispose()
        province.engine.dispose()
        get_settings.cache_clear()


def test_a_province_that_was_down_gets_everything_exactly_once(
    instances: tuple[Database, Database],
) -> None:
    city, province = instances
    build_world(city)
    standard = seed(city)
    build_world(province)
    token = service.add_partner(province.uow(), SYSTEM_ACTOR, CITY, "徐州市").token
    port = free_port()  # the province's port, known before it starts
    service.update_settings(
        city.uow(),
        SYSTEM_ACTOR,
        {
            "city_code": CITY,
            "city_name": "徐州市",
            "upstream_url": f"http://{HOST}:{port}/api/v1/exchange/inbound",
            "upstream_token": token,
            "batch_size": 4,  # several batches per pass
            "timeout_seconds": 2,
            "backoff_base_seconds": 10,
            "backoff_max_seconds": 40,
        },
    )

    with serving(city) as city_url:
        staff = CityClient(city_url, standard)
        codes = [staff.case("close") for _ in range(3)] + [staff.case("dispatch") for _ in range(2)]
        rows = len(outbox(city))
        assert rows == 3 * 3 + 2 * 2

        # The province is down: every pass fails, the rows stay pending, the waits grow.
        t0 = utcnow()
        waits: list[float] = []
        now = t0
        for round_ in range(1, 6):
            # A pass stops at its first failed batch; the next passes try the other rows.
            failed = 0
            for _ in range(10):
                report = pusher.push_once(city, now=now)
                assert report.configured and report.sent == 0
                if report.failed == 0:
                    break  # nothing due any more: every row waits for its backoff
                assert report.error is not None and "ConnectError" in report.error
                failed += report.failed
            assert failed == rows
            state = outbox(city)
            assert {(s, a) for s, a, _ in state} == {("pending", round_)}
            assert len({n for _, _, n in state}) == 1
            waits.append((state[0][2] - now).total_seconds())
            now = state[0][2]
        assert waits == [10, 20, 40, 40, 40]  # exponential, capped

        # More cases while the province is still down.
        codes += [staff.case("close")]
        rows = len(outbox(city))
        assert rows == 16

        with serving(province, port) as province_url:
            later = now + dt.timedelta(minutes=5)
            done = pusher.push_once(city, now=later)
            assert (done.sent, done.failed, done.pending) == (rows, 0, 0)
            assert received(province) == (rows, len(codes))

            # Read-only summaries on the province, through its API.
            leader = login(province_url, "leader")
            cities = httpx.get(f"{province_url}/api/v1/exchange/cities", headers=leader).json()
            assert [(c["city_code"], c["cases"], c["closed"], c["events"]) for c in cities] == [
                (CITY, 6, 4, 16)
            ]
            page = httpx.get(
                f"{province_url}/api/v1/exchange/cases",
                params={"city": CITY, "page_size": 50},
                headers=leader,
            ).json()
            assert sorted(c["case_code"] for c in page["items"]) == sorted(codes)
            assert {c["state"] for c in page["items"]} == {"closed", "dispatched"}

            # Lost acknowledgements: every row goes out again, from two pushers at once.
            with city.uow() as uow:
                uow.session.execute(update(OutboxEntry).values(state="pending"))
                uow.commit()
            results: list[pusher.PushReport] = []

            def push() -> None:
                results.append(pusher.push_once(city, now=later + dt.timedelta(minutes=1)))

            threads = [threading.Thread(target=push) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            # Each row was claimed by exactly one of them, and the province changed nothing.
            assert sum(r.sent for r in results) == rows
            assert received(province) == (rows, len(codes))
