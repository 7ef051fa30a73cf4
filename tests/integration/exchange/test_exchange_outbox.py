"""The outbox (written in the case's transaction), the pusher and the receiver, on SQLite and
PostgreSQL. The upstream is an in-process transport that hands each request to the real
receiving service, in the same database (a city can be its own province for a test: the
received tables are separate from ``case_file``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.integration.exchange.exchange_support import (
    MONDAY_9,
    act,
    count,
    install_outbox_hook,
    report,
    seed,
    walk,
)
from tests.world import World

from cityloop.cases import service as cases
from cityloop.cases.domain import CaseAction
from cityloop.cases.models import CaseEvent
from cityloop.db.engine import Database
from cityloop.errors import CityloopError, InvalidInput, PermissionDenied, Unauthenticated
from cityloop.exchange import pusher, service
from cityloop.exchange.models import OutboxEntry, ReceivedCase, ReceivedEvent
from cityloop.exchange.schemas import ExchangeSettings
from cityloop.org.domain import SYSTEM_ACTOR

CITY = "320300"
URL = "http://province.test/api/v1/exchange/inbound"


@pytest.fixture
def standard(world: World, db: Database, monkeypatch: pytest.MonkeyPatch) -> int:
    install_outbox_hook(monkeypatch)
    return seed(db)


def rows(db: Database) -> list[OutboxEntry]:
    with db.uow() as uow:
        out = list(uow.session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))
        for r in out:
            uow.session.expunge(r)
        return out


# --- the outbox ------------------------------------------------------------------------------


def test_filing_dispatch_and_closing_are_queued_with_a_snapshot(
    world: World, db: Database, standard: int
) -> None:
    case_id = walk(db, world, standard)
    queued = rows(db)
    assert [r.kind for r in queued] == ["filed", "dispatched", "closed"]
    assert all(r.state == "pending" and r.attempts == 0 and r.case_id == case_id for r in queued)
    assert [r.seq for r in queued] == [2, 3, 7]  # the case version after each change
    filed, dispatched, closed = (r.payload for r in queued)
    assert filed["state"] == "filed" and filed["department_code"] is None
    assert dispatched["state"] == "dispatched" and dispatched["department_code"] == "drainage"
    assert dispatched["disposal_deadline"] is not None and dispatched["closed_at"] is None
    assert closed["state"] == "closed" and closed["closed_at"].endswith("Z")
    assert closed["minor_code"] == "0101" and closed["family"] == "component"
    assert closed["location"] == {"lon": 116.3, "lat": 39.96, "system": "wgs84", "cell_code": None}
    text = json.dumps([r.payload for r in queued], ensure_ascii=False)
    assert "井盖破损" not in text and "某路" not in text  # no description, no address
    with db.uow() as uow:
        event_ids = {
            e.id: e.action
            for e in uow.session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))
        }
    assert [event_ids[r.event_id] for r in queued] == ["file", "dispatch", "close"]


def test_a_refused_or_rolled_back_action_leaves_no_outbox_row(
    world: World, db: Database, standard: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = report(db, world)
    with pytest.raises(InvalidInput):
        act(db, world.supervisor, case_id, CaseAction.FILE, MONDAY_9, standard_id=999_999)
    assert rows(db) == []
    case_id = walk(db, world, standard, until="dispatch")
    before = len(rows(db))
    act(db, world.operator, case_id, CaseAction.DISPOSE, MONDAY_9, reason="已修复")
    act(db, world.intake, case_id, CaseAction.SEND_CHECK, MONDAY_9, inspector="inspector")
    act(db, world.inspector, case_id, CaseAction.CHECK_PASS, MONDAY_9)
    assert len(rows(db)) == before  # none of these goes upward

    def broken(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("the disk is full")  # fails after the event and the outbox row

    monkeypatch.setattr(cases, "_link_attachments", broken)
    with pytest.raises(RuntimeError):
        act(db, world.supervisor, case_id, CaseAction.CLOSE, MONDAY_9)
    assert len(rows(db)) == before  # the same transaction: rolled back together
    assert cases.get_case(db.uow(), world.supervisor, case_id).status.value == "checked"


# --- the pusher against the real receiver ----------------------------------------------------


class Upstream:
    """An in-process upstream: ``down`` answers 503, otherwise the real receiving service."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.down = False
        self.requests: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        if self.down:
            return httpx.Response(503, text="maintenance")
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") or None
        try:
            result = service.receive(self.db.uow(), token, request.content)
        except CityloopError as exc:
            return httpx.Response(exc.status_code, json=exc.to_dict())
        return httpx.Response(200, json=result.model_dump())


@pytest.fixture
def upstream(world: World, db: Database, standard: int) -> Iterator[tuple[Upstream, httpx.Client]]:
    created = service.add_partner(db.uow(), SYSTEM_ACTOR, CITY, "徐州市")
    service.update_settings(
        db.uow(),
        SYSTEM_ACTOR,
        {"city_code": CITY, "upstream_url": URL, "upstream_token": created.token},
    )
    fake = Upstream(db)
    client = httpx.Client(transport=httpx.MockTransport(fake.handler))
    yield fake, client
    client.close()


def test_rows_wait_with_growing_backoff_then_arrive_exactly_once(
    world: World, db: Database, standard: int, upstream: tuple[Upstream, httpx.Client]
) -> None:
    fake, client = upstream
    walk(db, world, standard)
    walk(db, world, standard, until="dispatch")
    now = MONDAY_9 + dt.timedelta(hours=1)
    fake.down = True
    first = pusher.push_once(db, client=client, now=now)
    assert (first.sent, first.failed, first.pending) == (0, 5, 5)
    assert first.error is not None and "503" in first.error
    assert {(r.attempts, r.next_attempt_at) for r in rows(db)} == {
        (1, now + dt.timedelta(seconds=30))
    }
    # Not due yet: nothing is sent, nothing is counted.
    asked = len(fake.requests)
    assert pusher.push_once(db, client=client, now=now + dt.timedelta(seconds=10)).failed == 0
    assert len(fake.requests) == asked
    later = now + dt.timedelta(seconds=31)
    pusher.push_once(db, client=client, now=later)
    assert {(r.attempts, r.next_attempt_at) for r in rows(db)} == {
        (2, later + dt.timedelta(seconds=60))
    }
    assert {r.last_status for r in rows(db)} == {503}

    fake.down = False
    done = pusher.push_once(db, client=client, now=later + dt.timedelta(minutes=5))
    assert (done.sent, done.failed, done.pending) == (5, 0, 0)
    assert all(r.state == "sent" and r.sent_at is not None for r in rows(db))
    assert count(db, ReceivedEvent) == 5 and count(db, ReceivedCase) == 2
    # Everything sent: another pass sends nothing.
    assert pusher.push_once(db, client=client, now=later + dt.timedelta(hours=1)).sent == 0

    # A lost acknowledgement (the rows are sent again): the receiver changes nothing.
    with db.uow() as uow:
        for r in uow.session.scalars(select(OutboxEntry)):
            r.state = "pending"
        uow.commit()
    again = pusher.push_once(db, client=client, now=later + dt.timedelta(hours=2))
    assert again.sent == 5
    assert count(db, ReceivedEvent) == 5 and count(db, ReceivedCase) == 2
    last = fake.requests[-1]
    assert last["documents"][0]["schema"] == "cityloop.exchange.case-event"
    assert last["documents"][0]["version"] == 1 and last["documents"][0]["city"]["code"] == CITY


def test_a_claim_is_exclusive_until_its_lease_expires(
    world: World, db: Database, standard: int, upstream: tuple[Upstream, httpx.Client]
) -> None:
    walk(db, world, standard, until="dispatch")
    cfg = pusher.current_settings(db)
    now = MONDAY_9 + dt.timedelta(hours=1)
    token, claimed = pusher._claim(db, cfg, now)
    assert len(claimed) == 2
    assert pusher._claim(db, cfg, now)[1] == []  # a second pusher gets nothing
    # The first pusher died: after the lease another one takes the rows over.
    expired = now + dt.timedelta(seconds=cfg.lease_seconds + 1)
    token2, again = pusher._claim(db, cfg, expired)
    assert [i for i, _ in again] == [i for i, _ in claimed] and token2 != token


def test_an_unconfigured_exchange_says_what_is_missing(
    world: World, db: Database, standard: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(pusher.ENV_URL, raising=False)
    monkeypatch.delenv(pusher.ENV_TOKEN, raising=False)
    walk(db, world, standard, until="file")
    result = pusher.push_once(db)
    assert not result.configured and result.pending == 1
    assert result.error == (
        "the exchange is not configured: set upstream_url, upstream_token, city_code"
    )
    assert pusher.push_due(db) is not None  # the worker's hook never raises
    monkeypatch.setenv(pusher.ENV_URL, "http://env.example/inbound")
    monkeypatch.setenv(pusher.ENV_TOKEN, "t" * 32)
    cfg = pusher.current_settings(db)
    assert cfg.upstream_url == "http://env.example/inbound" and cfg.upstream_token == "t" * 32
    assert service.settings(db.uow()).public()["upstream_token"] == "(set)"


# --- the receiver ----------------------------------------------------------------------------


def doc(
    code: str, seq: int, *, city: str = CITY, state: str = "filed", **case: Any
) -> dict[str, Any]:
    body = {
        "code": code,
        "seq": seq,
        "event": {"filed": "filed", "dispatched": "dispatched", "closed": "closed"}.get(
            state, "filed"
        ),
        "event_at": "2026-11-23T01:00:00Z",
        "state": state,
        "channel": "inspector",
        "family": "component",
        "minor_code": "0101",
        "reported_at": "2026-11-23T00:50:00Z",
        **case,
    }
    return {
        "schema": "cityloop.exchange.case-event",
        "version": 1,
        "city": {"code": city},
        "case": body,
    }


def body(*docs: dict[str, Any]) -> bytes:
    return json.dumps({"documents": list(docs)}).encode()


@pytest.fixture
def partner(world: World, db: Database) -> str:
    return service.add_partner(db.uow(), SYSTEM_ACTOR, CITY, "徐州市").token


def test_replays_and_older_events_change_nothing(world: World, db: Database, partner: str) -> None:
    first = service.receive(db.uow(), partner, body(doc("A", 2), doc("B", 2)))
    assert (first.accepted, first.duplicates, first.stale) == (2, 0, 0)
    newer = service.receive(db.uow(), partner, body(doc("A", 5, state="closed")))
    assert newer.accepted == 1
    replay = service.receive(db.uow(), partner, body(doc("A", 5, state="closed"), doc("A", 2)))
    assert (replay.accepted, replay.duplicates) == (0, 2)
    late = service.receive(db.uow(), partner, body(doc("A", 3, state="dispatched")))
    assert [r.outcome for r in late.results] == ["stale"]
    assert count(db, ReceivedEvent) == 4 and count(db, ReceivedCase) == 2
    page = service.received_cases(db.uow(), world.leader, city=CITY)
    assert page.total == 2
    a = next(c for c in page.items if c.case_code == "A")
    assert (a.seq, a.state) == (5, "closed")  # the newest picture stays
    summary = service.cities(db.uow(), world.leader)
    assert [(c.city_code, c.name, c.cases, c.closed, c.open, c.events) for c in summary] == [
        (CITY, "徐州市", 2, 1, 1, 4)
    ]
    assert summary[0].by_state == {"closed": 1, "filed": 1}
    assert summary[0].last_received_at is not None


def test_bad_tokens_cities_and_bodies_are_refused_and_store_nothing(
    world: World, db: Database, partner: str
) -> None:
    good = body(doc("A", 1))
    with pytest.raises(Unauthenticated):
        service.receive(db.uow(), None, good)
    with pytest.raises(Unauthenticated):
        service.receive(db.uow(), "not-a-token", good)
    with pytest.raises(PermissionDenied, match="not the city of this token"):
        service.receive(db.uow(), partner, body(doc("A", 1), doc("B", 1, city="110108")))
    with pytest.raises(InvalidInput, match="not JSON"):
        service.receive(db.uow(), partner, b"{nope")
    with pytest.raises(InvalidInput, match="version 2 is not supported"):
        service.receive(db.uow(), partner, body({**doc("A", 1), "version": 2}))
    with pytest.raises(InvalidInput, match=r"documents\.0\.case\.seq"):
        service.receive(db.uow(), partner, body(doc("A", 0)))
    with pytest.raises(InvalidInput, match=r"documents\.0\.case\.event_at"):
        service.receive(db.uow(), partner, body(doc("A", 1, event_at="2026-11-23 09:00")))
    service.update_settings(
        db.uow(), SYSTEM_ACTOR, {"max_inbound_bytes": 1024, "max_inbound_documents": 2}
    )
    with pytest.raises(CityloopError) as err:
        service.receive(
            db.uow(), partner, body(*(doc(f"C{i}", 1, padding="x" * 400) for i in range(3)))
        )
    assert err.value.status_code == 413
    with pytest.raises(CityloopError, match="3 documents") as err:
        service.receive(db.uow(), partner, body(doc("A", 1), doc("B", 1), doc("C", 1)))
    assert err.value.status_code == 413
    service.set_partner_active(db.uow(), SYSTEM_ACTOR, CITY, active=False)
    with pytest.raises(PermissionDenied, match="disabled"):
        service.receive(db.uow(), partner, good)
    assert count(db, ReceivedEvent) == 0 and count(db, ReceivedCase) == 0
    with pytest.raises(PermissionDenied):
        service.cities(db.uow(), world.operator)


def test_a_bare_document_is_a_batch_of_one(world: World, db: Database, partner: str) -> None:
    result = service.receive(db.uow(), partner, json.dumps(doc("A", 1)).encode())
    assert result.accepted == 1


def test_partners_and_settings_are_checked(world: World, db: Database) -> None:
    with pytest.raises(InvalidInput, match="6-digit"):
        service.add_partner(db.uow(), SYSTEM_ACTOR, "3203", "x")
    service.add_partner(db.uow(), SYSTEM_ACTOR, CITY, "徐州市")
    with pytest.raises(CityloopError, match="already a partner"):
        service.add_partner(db.uow(), SYSTEM_ACTOR, CITY, "徐州市")
    with pytest.raises(PermissionDenied):
        service.add_partner(db.uow(), world.dispatcher, "320600", "南通市")
    with pytest.raises(InvalidInput, match="upstream_url"):
        service.update_settings(db.uow(), SYSTEM_ACTOR, {"upstream_url": "ftp://x"})
    with pytest.raises(InvalidInput, match="unknown setting"):
        service.update_settings(db.uow(), SYSTEM_ACTOR, {"colour": "red"})
    assert service.settings(db.uow()) == ExchangeSettings()
