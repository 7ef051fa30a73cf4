"""The pusher: sends pending outbox rows to the higher-level platform, at least once.

One pass (``push_once``):

1. **Claim** up to ``batch_size`` due rows in a short transaction with a conditional UPDATE
   (``... WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < now)``) that
   stamps a random ``claim_token`` and a lease. Two pushers never hold the same row at the same
   time: the loser's UPDATE matches nothing (SQLite serialises writers; PostgreSQL re-checks the
   WHERE after the winner's row lock is released).
2. **Send** the claimed documents in one POST, outside any transaction (a slow receiver never
   holds a database lock).
3. **Settle**: a 2xx marks the rows sent; anything else (a refused connection, a timeout, a
   5xx, a 4xx) counts an attempt and schedules the next one after an exponential backoff
   (``domain.backoff_seconds``). Rows are never dropped: a row that keeps failing stays pending
   and visible in ``cityloop exchange status`` until someone fixes the cause.

A pusher that dies between send and settle leaves its rows claimed until the lease expires;
another pusher then sends them again. That is the "at least once": the receiver deduplicates by
(city, case code, seq), so the second delivery changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, or_, select, update

from cityloop import __version__
from cityloop.cityconfig.service import load as load_setting
from cityloop.db.base import utcnow
from cityloop.db.engine import Database
from cityloop.exchange.domain import DOCUMENT_SCHEMA, DOCUMENT_VERSION, backoff_seconds
from cityloop.exchange.models import OutboxEntry
from cityloop.exchange.schemas import SETTINGS_KEY, ExchangeSettings

log = logging.getLogger("cityloop.exchange.pusher")

ENV_URL = "CITYLOOP_EXCHANGE_URL"
ENV_TOKEN = "CITYLOOP_EXCHANGE_TOKEN"
MAX_BODY_BYTES = 512 * 1024  # half the receiver's default limit: a batch never gets a 413


def environment_overrides() -> dict[str, Any]:
    """Upstream URL and token from the environment; they win over the stored settings."""
    out: dict[str, Any] = {}
    if os.environ.get(ENV_URL):
        out["upstream_url"] = os.environ[ENV_URL]
    if os.environ.get(ENV_TOKEN):
        out["upstream_token"] = os.environ[ENV_TOKEN]
    return out


def current_settings(database: Database) -> ExchangeSettings:
    uow = database.uow()
    with uow.read():
        stored = load_setting(uow.session, SETTINGS_KEY, ExchangeSettings)
    overrides = environment_overrides()
    if not overrides:
        return stored
    return ExchangeSettings.model_validate({**stored.model_dump(), **overrides})


@dataclass
class PushReport:
    configured: bool
    sent: int = 0
    failed: int = 0  # rows whose attempt failed in this pass
    batches: int = 0
    pending: int = 0  # rows still pending after the pass
    error: str | None = None  # the last failure, as recorded on the rows


def document(cfg: ExchangeSettings, case_part: dict[str, Any]) -> dict[str, Any]:
    """The versioned upward document of one case event (schemas.CaseEventDocument)."""
    return {
        "schema": DOCUMENT_SCHEMA,
        "version": DOCUMENT_VERSION,
        "city": {"code": cfg.city_code, "name": cfg.city_name},
        "case": case_part,
    }


def _missing(cfg: ExchangeSettings) -> str | None:
    absent = [
        name
        for name, value in (
            ("upstream_url", cfg.upstream_url),
            ("upstream_token", cfg.upstream_token),
            ("city_code", cfg.city_code),
        )
        if not value
    ]
    return ", ".join(absent) if absent else None


def _due(now: dt.datetime) -> Any:
    return (
        (OutboxEntry.state == "pending")
        & (OutboxEntry.next_attempt_at <= now)
        & or_(OutboxEntry.claimed_until.is_(None), OutboxEntry.claimed_until < now)
    )


def _claim(
    database: Database, cfg: ExchangeSettings, now: dt.datetime
) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
    token = secrets.token_hex(16)
    uow = database.uow()
    with uow:
        session = uow.session
        ids = list(
            session.scalars(
                select(OutboxEntry.id)
                .where(_due(now))
                .order_by(OutboxEntry.id)
                .limit(cfg.batch_size)
            )
        )
        if not ids:
            return token, []
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id.in_(ids), _due(now))
            .values(claim_token=token, claimed_until=now + dt.timedelta(seconds=cfg.lease_seconds)),
            execution_options={"synchronize_session": False},
        )
        rows = [
            (int(i), dict(p))
            for i, p in session.execute(
                select(OutboxEntry.id, OutboxEntry.payload)
                .where(OutboxEntry.claim_token == token)
                .order_by(OutboxEntry.id)
            )
        ]
        uow.commit()
    return token, rows


def _release(database: Database, token: str, ids: list[int]) -> None:
    """Give back claimed rows that did not fit this request's body (they are due again)."""
    uow = database.uow()
    with uow:
        uow.session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.claim_token == token, OutboxEntry.id.in_(ids))
            .values(claim_token=None, claimed_until=None),
            execution_options={"synchronize_session": False},
        )
        uow.commit()


def _settle(
    database: Database,
    token: str,
    *,
    ok: bool,
    status: int | None,
    error: str | None,
    cfg: ExchangeSettings,
    now: dt.datetime,
) -> int:
    uow = database.uow()
    with uow:
        session = uow.session
        mine = OutboxEntry.claim_token == token
        if ok:
            result = session.execute(
                update(OutboxEntry)
                .where(mine)
                .values(
                    state="sent",
                    sent_at=now,
                    attempts=OutboxEntry.attempts + 1,
                    last_status=status,
                    last_error=None,
                    claim_token=None,
                    claimed_until=None,
                ),
                execution_options={"synchronize_session": False},
            )
            uow.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]
        groups = session.execute(
            select(OutboxEntry.attempts, func.count()).where(mine).group_by(OutboxEntry.attempts)
        ).all()
        count = 0
        for attempts, n in groups:
            wait = backoff_seconds(
                int(attempts) + 1, base=cfg.backoff_base_seconds, cap=cfg.backoff_max_seconds
            )
            session.execute(
                update(OutboxEntry)
                .where(mine, OutboxEntry.attempts == attempts)
                .values(
                    attempts=OutboxEntry.attempts + 1,
                    next_attempt_at=now + dt.timedelta(seconds=wait),
                    last_status=status,
                    last_error=(error or "")[:2000],
                    claim_token=None,
                    claimed_until=None,
                ),
                execution_options={"synchronize_session": False},
            )
            count += int(n)
        uow.commit()
        return count


def _post(
    client: httpx.Client, cfg: ExchangeSettings, body: bytes
) -> tuple[bool, int | None, str | None]:
    assert cfg.upstream_url is not None
    try:
        response = client.post(
            cfg.upstream_url,
            content=body,
            headers={
                "Authorization": f"Bearer {cfg.upstream_token}",
                "Content-Type": "application/json",
                "User-Agent": f"cityloop/{__version__}",
            },
            timeout=cfg.timeout_seconds,
        )
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return True, response.status_code, None
    return False, response.status_code, f"HTTP {response.status_code}: {response.text[:500]}"


def _body(cfg: ExchangeSettings, rows: list[tuple[int, dict[str, Any]]]) -> tuple[bytes, list[int]]:
    """The request body, and the ids that did not fit under ``MAX_BODY_BYTES``."""
    parts: list[str] = []
    size = len('{"documents": []}')
    left: list[int] = []
    for row_id, payload in rows:
        part = json.dumps(document(cfg, payload), ensure_ascii=False, separators=(",", ":"))
        encoded = len(part.encode()) + 1
        if parts and size + encoded > MAX_BODY_BYTES:
            left.append(row_id)
            continue
        parts.append(part)
        size += encoded
    return ('{"documents":[' + ",".join(parts) + "]}").encode(), left


def push_once(
    database: Database,
    *,
    client: httpx.Client | None = None,
    settings: ExchangeSettings | None = None,
    now: dt.datetime | None = None,
    max_batches: int = 50,
) -> PushReport:
    """One bounded pass: claim, send and settle up to ``max_batches`` batches. Stops at the
    first failed batch (the receiver is down or refusing; the backoff decides when to retry).

    ``now`` fixes the clock (tests); by default each step reads the real time.
    """
    cfg = settings or current_settings(database)
    missing = _missing(cfg)
    if missing:
        return PushReport(
            configured=False,
            pending=_pending(database),
            error=f"the exchange is not configured: set {missing}",
        )
    own_client = client is None
    http = client or httpx.Client()
    report = PushReport(configured=True)
    try:
        for _ in range(max_batches):
            token, rows = _claim(database, cfg, now or utcnow())
            if not rows:
                break
            body, left = _body(cfg, rows)
            if left:
                _release(database, token, left)
            ok, status, error = _post(http, cfg, body)
            settled = _settle(
                database, token, ok=ok, status=status, error=error, cfg=cfg, now=now or utcnow()
            )
            report.batches += 1
            if ok:
                report.sent += settled
                continue
            report.failed += settled
            report.error = error
            log.warning("exchange push failed (%d rows stay pending): %s", settled, error)
            break
    finally:
        if own_client:
            http.close()
    report.pending = _pending(database)
    return report


def _pending(database: Database) -> int:
    uow = database.uow()
    with uow.read():
        return int(
            uow.session.scalar(
                select(func.count()).select_from(OutboxEntry).where(OutboxEntry.state == "pending")
            )
            or 0
        )


def push_due(database: Database) -> PushReport | None:
    """The worker's hook: one pass, never raising (a province that is down must not stop the
    city's overdue worker); does nothing while the exchange is not configured."""
    try:
        report = push_once(database)
    except Exception:
        log.exception("exchange push pass failed")
        return None
    if report.configured and (report.sent or report.failed):
        log.info(
            "exchange: %d sent, %d failed, %d pending", report.sent, report.failed, report.pending
        )
    return report


def run_forever(
    database: Database,
    *,
    interval: float = 30.0,
    stop: threading.Event | None = None,
    max_passes: int | None = None,
) -> None:
    """Push every ``interval`` seconds until ``stop`` is set (or ``max_passes`` ran)."""
    stop = stop or threading.Event()
    passes = 0
    while not stop.is_set():
        push_due(database)
        passes += 1
        if max_passes is not None and passes >= max_passes:
            return
        stop.wait(interval)
