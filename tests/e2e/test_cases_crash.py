"""An acknowledged case survives a crash (issue 3, section 5), on SQLite and PostgreSQL.

A real ``cityloop serve`` process takes intake from several threads; after some hundreds of
201s it is killed with SIGKILL while requests are in flight. Afterwards every case that got a
201 is in the database with the id and code the client was given and its report event, and no
Idempotency-Key ever made two cases: neither the keys repeated during the load nor the keys
whose requests were cut off by the kill and are sent again to a restarted server.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool
from tests.e2e.serverproc import ServerProcess, cli_env, login, prepare_database

from cityloop.db.engine import make_engine

USERNAME = "crash_intake"
PASSWORD = "crash-test-password"
THREADS = 8
KILL_AFTER = 300  # acknowledged cases before the kill
LOAD_BUDGET = 20.0  # seconds; the load stops by itself even if the server never gets there
REPEAT_EVERY = 7  # every 7th request of a thread re-sends a key it already got a 201 for


def payload(key: str) -> dict[str, object]:
    # The key is in the description, so a duplicate is visible even if the key were lost.
    return {
        "channel": "hotline_12345",
        "description": f"crash test {key}",
        "location": {"lon": 116.31, "lat": 39.99, "system": "wgs84"},
    }


@dataclass
class Load:
    """What the clients saw, shared by the threads (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    killed: threading.Event = field(default_factory=threading.Event)
    acked: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (id, code)
    repeats: int = 0
    in_doubt: set[str] = field(default_factory=set)  # cut off by the kill: no answer
    problems: list[str] = field(default_factory=list)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def fire(load: Load, base_url: str, auth: dict[str, str], n: int, until: float) -> None:
    mine: list[str] = []
    with httpx.Client(base_url=base_url, headers=auth, timeout=15) as client:
        i = 0
        while not load.killed.is_set() and time.monotonic() < until:
            i += 1
            repeat = i % REPEAT_EVERY == 0 and bool(mine)
            key = mine[-1] if repeat else f"crash-{n}-{i}"
            try:
                resp = client.post(
                    "/api/v1/cases", json=payload(key), headers={"Idempotency-Key": key}
                )
            except httpx.TransportError as exc:
                with load.lock:
                    if not load.killed.is_set():
                        load.problems.append(f"{key}: {exc!r} before the kill")
                    if not repeat:
                        load.in_doubt.add(key)
                return
            body = resp.json() if resp.headers.get("content-type") == "application/json" else {}
            with load.lock:
                if repeat:
                    load.repeats += 1
                    if resp.status_code != 200 or body.get("id") != load.acked[key][0]:
                        load.problems.append(
                            f"repeat of {key}: {resp.status_code} {resp.text[:200]} "
                            f"(first answer: case {load.acked[key][0]})"
                        )
                elif resp.status_code == 201:
                    load.acked[key] = (int(body["id"]), str(body["code"]))
                    mine.append(key)
                else:
                    load.problems.append(f"{key}: {resp.status_code} {resp.text[:200]}")


@pytest.mark.slow
def test_every_acknowledged_case_survives_a_sigkill(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    env = cli_env(fresh_database_url, tmp_path / "data")
    prepare_database(env, username=USERNAME, password=PASSWORD)
    log_path = tmp_path / "server.log"
    load = Load()

    with ServerProcess(env, log_path) as server:
        auth = login(server.base_url, USERNAME, PASSWORD)
        until = time.monotonic() + LOAD_BUDGET
        threads = [
            threading.Thread(target=fire, args=(load, server.base_url, auth, n, until), daemon=True)
            for n in range(THREADS)
        ]
        for t in threads:
            t.start()
        try:
            while load.count() < KILL_AFTER and time.monotonic() < until:
                if any(not t.is_alive() for t in threads):
                    break  # a thread gave up: kill now, the assertions below say why
                time.sleep(0.005)
            with load.lock:
                load.killed.set()
            server.kill()  # SIGKILL with requests in flight
        finally:
            load.killed.set()
            for t in threads:
                t.join(timeout=30)
    assert not load.problems, f"{load.problems[:5]}\n{server.log_tail()}"
    assert len(load.acked) >= KILL_AFTER, (
        f"only {len(load.acked)} cases acknowledged in {LOAD_BUDGET} s\n{server.log_tail()}"
    )
    # Every thread was busy when the kill came, so some requests lost their answer.
    assert load.in_doubt, "the kill did not land in the middle of the load"

    # A client whose request was cut off sends it again, with the same key, once the server
    # is back (and has recovered the database on SQLite).
    retried: dict[str, tuple[int, int]] = {}  # key -> (status, id)
    with (
        ServerProcess(env, log_path) as server,
        httpx.Client(
            base_url=server.base_url, headers=login(server.base_url, USERNAME, PASSWORD), timeout=15
        ) as client,
    ):
        for key in sorted(load.in_doubt):
            resp = client.post("/api/v1/cases", json=payload(key), headers={"Idempotency-Key": key})
            assert resp.status_code in (200, 201), resp.text
            retried[key] = (resp.status_code, int(resp.json()["id"]))
        again = client.post("/api/v1/cases", json=payload(key), headers={"Idempotency-Key": key})
        assert again.status_code == 200 and again.json()["id"] == retried[key][1]

    print(
        f"{backend}: {len(load.acked)} acknowledged, {load.repeats} repeats, "
        f"{len(load.in_doubt)} cut off by the kill, of which "
        f"{sum(s == 200 for s, _ in retried.values())} had been committed"
    )
    engine = make_engine(fresh_database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if backend == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            cases = conn.execute(
                text("SELECT id, code, idempotency_key, description, state FROM case_file")
            ).all()
            report_events = Counter(
                case_id
                for (case_id,) in conn.execute(
                    text("SELECT case_id FROM case_event WHERE action = 'report'")
                )
            )
    finally:
        engine.dispose()

    by_id = {row.id: row for row in cases}
    missing = [
        (key, case_id, code)
        for key, (case_id, code) in load.acked.items()
        if case_id not in by_id
        or by_id[case_id].code != code
        or by_id[case_id].idempotency_key != key  # the id and code of a lost case were reused
    ]
    assert not missing, f"{len(missing)} acknowledged cases lost, e.g. {missing[:5]}"
    for key, (case_id, _code) in load.acked.items():
        row = by_id[case_id]
        assert row.idempotency_key == key and row.description == f"crash test {key}"
        assert row.state == "reported"
    # Exactly one report event for every case, acknowledged or not.
    assert {case_id: report_events[case_id] for case_id in by_id} == dict.fromkeys(by_id, 1)
    assert set(report_events) <= set(by_id)

    # No key and no request ever made a second case.
    keys = Counter(row.idempotency_key for row in cases)
    descriptions = Counter(row.description for row in cases)
    assert None not in keys
    assert max(keys.values()) == 1 and max(descriptions.values()) == 1
    sent = set(load.acked) | load.in_doubt
    assert set(keys) <= sent
    for key, (_status, case_id) in retried.items():
        assert by_id[case_id].idempotency_key == key
    # A retried request the crashed server had committed without answering got the same case
    # back (200); one it had not committed made the case now (201). Either way: one case.
    assert set(keys) == set(load.acked) | set(retried)
    assert load.repeats > 0  # the load did exercise repeated keys
