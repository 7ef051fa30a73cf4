"""Use cases of the exchange. Each public function takes a ``UnitOfWork`` (or the
``Database`` for the pusher, which needs several short transactions) and owns its
transactions; role and scope checks happen here."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update

from cityloop.audit.service import record as audit
from cityloop.cases.domain import OPEN_STATES, CaseState
from cityloop.cases.schemas import CaseFilters
from cityloop.cases.service import load_context
from cityloop.cityconfig.service import load as load_setting
from cityloop.cityconfig.service import put as put_setting
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from cityloop.exchange import exporting, importing, receiver
from cityloop.exchange.models import OutboxEntry, Partner, ReceivedCase, ReceivedEvent
from cityloop.exchange.pusher import environment_overrides
from cityloop.exchange.schemas import (
    SETTINGS_KEY,
    CitySummary,
    ExchangeSettings,
    ExportFormat,
    ExportReport,
    ImportMapping,
    ImportRejection,
    ImportReport,
    InboundReport,
    OutboxStatus,
    PartnerCreated,
    PartnerPublic,
    ReceivedCasePage,
    ReceivedCasePublic,
)
from cityloop.org.domain import CITYWIDE_ROLES, Actor, Role
from cityloop.org.service import require_role

# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def settings(uow: UnitOfWork) -> ExchangeSettings:
    """The stored settings, with the upstream URL and token from the environment when set."""
    with uow.read():
        stored = load_setting(uow.session, SETTINGS_KEY, ExchangeSettings)
    return with_environment(stored)


def with_environment(stored: ExchangeSettings) -> ExchangeSettings:
    overrides = environment_overrides()
    if not overrides:
        return stored
    return ExchangeSettings.model_validate({**stored.model_dump(), **overrides})


def update_settings(uow: UnitOfWork, actor: Actor, changes: dict[str, Any]) -> ExchangeSettings:
    """Change some settings (admin only); the others keep their values."""
    require_role(actor, Role.ADMIN)
    with uow.read():
        current = load_setting(uow.session, SETTINGS_KEY, ExchangeSettings)
    unknown = sorted(set(changes) - set(ExchangeSettings.model_fields))
    if unknown:
        known = ", ".join(ExchangeSettings.model_fields)
        raise InvalidInput(f"unknown setting '{unknown[0]}'; known: {known}", field=unknown[0])
    merged = {**current.model_dump(mode="json"), **changes}
    return put_setting(uow, actor, SETTINGS_KEY, ExchangeSettings, merged)


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------


def load_mapping(path: Path) -> ImportMapping:
    """Read a TOML or JSON mapping file; every problem is one sentence naming the field."""
    raw = path.read_bytes()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8-sig"))
        else:
            data = tomllib.loads(raw.decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"mapping file {path.name} is not valid: {exc}", field="mapping"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"mapping file {path.name} must hold a table/object", field="mapping")
    return parse_mapping(data, name=path.name)


def parse_mapping(data: dict[str, Any], *, name: str = "mapping") -> ImportMapping:
    try:
        return ImportMapping.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "mapping"
        message = str(err["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidInput(f"{name}: {where}: {message}{more}", field=where) from None


def import_file(
    uow: UnitOfWork,
    actor: Actor,
    path: Path,
    mapping: ImportMapping,
    *,
    partial: bool = False,
    progress: importing.ImportProgress | None = None,
    on_reject: Callable[[ImportRejection], None] | None = None,
    max_listed: int = importing.MAX_LISTED,
    parallel: bool | None = None,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Import historical cases (admin only) in ONE transaction.

    All-or-nothing by default: if any row is rejected nothing is written and the report lists
    the rejections (``committed`` false). With ``partial`` the good rows are imported and the
    bad ones listed. A re-run of the same rows creates nothing ("already imported").
    """
    require_role(actor, Role.ADMIN)
    now = now or utcnow()
    with uow:
        session = uow.session
        ctx = load_context(session)
        report = importing.run_import(
            session,
            ctx,
            path,
            mapping,
            actor_name=actor.username,
            partial=partial,
            progress=progress,
            on_reject=on_reject,
            max_listed=max_listed,
            parallel=parallel,
            now=now,
        )
        if not report.committed:
            return report  # leaving the block rolls back every row written so far
        audit(
            session,
            actor,
            action="exchange.import",
            entity="exchange_import_run",
            entity_id=report.run_id or 0,
            detail={
                "source": report.source,
                "file": report.file,
                "created": report.created,
                "already_imported": report.already_imported,
                "rejected": report.rejected,
            },
        )
        uow.commit()
    return report


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def export_cases(
    uow: UnitOfWork,
    actor: Actor,
    filters: CaseFilters,
    fmt: ExportFormat,
    out: Path,
    *,
    now: dt.datetime | None = None,
) -> ExportReport:
    """Write the cases ``actor`` may see that match ``filters`` to ``out``.

    The case list's filters and visibility apply (a department operator exports its own
    cases only). Reporter contact details are never written, whoever exports.
    """
    now = now or utcnow()
    if (
        filters.reported_from is not None
        and filters.reported_to is not None
        and filters.reported_to <= filters.reported_from
    ):
        raise InvalidInput("reported_to must be after reported_from", field="reported_to")
    with uow.read():
        rows = exporting.export(uow.session, actor, filters, fmt, out, now=now)
    return ExportReport(format=fmt, path=str(out), rows=rows)


# --------------------------------------------------------------------------------------------
# Outbox
# --------------------------------------------------------------------------------------------


def outbox_status(uow: UnitOfWork) -> OutboxStatus:
    with uow.read():
        session = uow.session
        stored = load_setting(session, SETTINGS_KEY, ExchangeSettings)
        counts = dict(
            session.execute(
                select(OutboxEntry.state, func.count()).group_by(OutboxEntry.state)
            ).all()
        )
        pending = OutboxEntry.state == "pending"
        failing = session.scalar(
            select(func.count()).select_from(OutboxEntry).where(pending, OutboxEntry.attempts > 0)
        )
        oldest = session.scalar(select(func.min(OutboxEntry.created_at)).where(pending))
        next_at = session.scalar(select(func.min(OutboxEntry.next_attempt_at)).where(pending))
        last_error = session.scalar(
            select(OutboxEntry.last_error)
            .where(pending, OutboxEntry.last_error.is_not(None))
            .order_by(OutboxEntry.id.desc())
            .limit(1)
        )
    return OutboxStatus(
        pending=int(counts.get("pending", 0)),
        sent=int(counts.get("sent", 0)),
        failing=int(failing or 0),
        oldest_pending_at=oldest,
        next_attempt_at=next_at,
        last_error=last_error,
        upstream_url=with_environment(stored).upstream_url,
    )


def retry_now(uow: UnitOfWork, actor: Actor) -> int:
    """Make every pending row due now (after the upstream was fixed). Admin only."""
    require_role(actor, Role.ADMIN)
    with uow:
        result = uow.session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.state == "pending")
            .values(next_attempt_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
        uow.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Receiver: partners
# --------------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_partner(uow: UnitOfWork, actor: Actor, city_code: str, name: str) -> PartnerCreated:
    """Allow a city to push here; its token is returned this once (only a hash is kept)."""
    require_role(actor, Role.ADMIN)
    if not (len(city_code) == 6 and city_code.isdigit()):
        raise InvalidInput(f"'{city_code}' is not a 6-digit adcode", field="city_code")
    if not name.strip() or len(name) > 128:
        raise InvalidInput("a partner needs a name of at most 128 characters", field="name")
    token = secrets.token_urlsafe(32)
    with uow:
        session = uow.session
        if session.scalar(select(Partner).where(Partner.city_code == city_code)) is not None:
            raise Conflict(f"city {city_code} is already a partner", field="city_code")
        partner = Partner(
            city_code=city_code,
            name=name.strip(),
            token_hash=token_hash(token),
            token_hint=token[:6],
            active=True,
            created_at=utcnow(),
        )
        session.add(partner)
        session.flush()
        audit(
            session,
            actor,
            action="exchange.partner_add",
            entity="exchange_partner",
            entity_id=partner.id,
            detail={"city_code": city_code, "name": partner.name},
        )
        public = PartnerPublic.model_validate(partner)
        uow.commit()
    return PartnerCreated(partner=public, token=token)


def set_partner_active(uow: UnitOfWork, actor: Actor, city_code: str, *, active: bool) -> None:
    require_role(actor, Role.ADMIN)
    with uow:
        session = uow.session
        partner = session.scalar(select(Partner).where(Partner.city_code == city_code))
        if partner is None:
            raise NotFound(f"no partner city {city_code}", field="city_code")
        partner.active = active
        audit(
            session,
            actor,
            action="exchange.partner_enable" if active else "exchange.partner_disable",
            entity="exchange_partner",
            entity_id=partner.id,
        )
        uow.commit()


def list_partners(uow: UnitOfWork) -> list[PartnerPublic]:
    with uow.read():
        rows = uow.session.scalars(select(Partner).order_by(Partner.city_code))
        return [PartnerPublic.model_validate(p) for p in rows]


def inbound_limit(uow: UnitOfWork) -> int:
    """The largest body the receiver reads, in bytes (a setting)."""
    with uow.read():
        return load_setting(uow.session, SETTINGS_KEY, ExchangeSettings).max_inbound_bytes


def receive(uow: UnitOfWork, token: str | None, body: bytes) -> InboundReport:
    """Apply a pushed batch from the partner that ``token`` identifies, in one transaction.

    401 without a known token; 403 for a disabled partner or a document of another city; 413
    for a body over ``max_inbound_bytes``; 422 for a malformed body. Replays and older events
    change nothing and still answer 200, so a sender's retry is always safe.
    """
    if not token:
        raise Unauthenticated("send 'Authorization: Bearer <partner token>'")
    with uow:
        session = uow.session
        limits = load_setting(session, SETTINGS_KEY, ExchangeSettings)
        receiver.check_size(len(body), limits.max_inbound_bytes)
        partner = session.scalar(select(Partner).where(Partner.token_hash == token_hash(token)))
        if partner is None:
            raise Unauthenticated("the partner token is unknown")
        if not partner.active:
            raise PermissionDenied(f"partner city {partner.city_code} is disabled")
        batch = receiver.parse_batch(body, max_documents=limits.max_inbound_documents)
        now = utcnow()
        report = receiver.apply(session, partner, batch, now=now)
        partner.last_seen_at = now
        uow.commit()
    return report


# --------------------------------------------------------------------------------------------
# Receiver: read-only views
# --------------------------------------------------------------------------------------------

_OPEN = tuple(sorted(s.value for s in OPEN_STATES))


def _require_reader(actor: Actor) -> None:
    if actor.role not in CITYWIDE_ROLES:
        raise PermissionDenied("only centre roles read the cities' aggregated cases")


def cities(uow: UnitOfWork, actor: Actor) -> list[CitySummary]:
    """Per sending city: cases by state, events received, and when it last reported."""
    _require_reader(actor)
    with uow.read():
        session = uow.session
        names = {p.city_code: p.name for p in session.scalars(select(Partner))}
        by_state: dict[str, dict[str, int]] = {}
        last_event: dict[str, dt.datetime | None] = {}
        for city, state, count, last in session.execute(
            select(
                ReceivedCase.city_code,
                ReceivedCase.state,
                func.count(),
                func.max(ReceivedCase.event_at),
            ).group_by(ReceivedCase.city_code, ReceivedCase.state)
        ):
            by_state.setdefault(city, {})[state] = int(count)
            previous = last_event.get(city)
            if last is not None and (previous is None or last > previous):
                last_event[city] = last
        events: dict[str, tuple[int, dt.datetime | None]] = {
            city: (int(n), at)
            for city, n, at in session.execute(
                select(
                    ReceivedEvent.city_code,
                    func.count(),
                    func.max(ReceivedEvent.received_at),
                ).group_by(ReceivedEvent.city_code)
            )
        }
    out: list[CitySummary] = []
    for city in sorted(set(names) | set(by_state)):
        states = by_state.get(city, {})
        n_events, received = events.get(city, (0, None))
        out.append(
            CitySummary(
                city_code=city,
                name=names.get(city, ""),
                cases=sum(states.values()),
                open=sum(n for s, n in states.items() if s in _OPEN),
                closed=states.get(CaseState.CLOSED.value, 0),
                by_state=dict(sorted(states.items())),
                events=n_events,
                last_event_at=_aware(last_event.get(city)),
                last_received_at=_aware(received),
            )
        )
    return out


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # Aggregates bypass the column type on SQLite (max() of text): read them back as UTC.
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def received_cases(
    uow: UnitOfWork,
    actor: Actor,
    *,
    city: str | None = None,
    state: CaseState | None = None,
    page: int = 1,
    page_size: int = 100,
) -> ReceivedCasePage:
    _require_reader(actor)
    if city is not None and not (len(city) == 6 and city.isdigit()):
        raise InvalidInput(f"'{city}' is not a 6-digit adcode", field="city")
    with uow.read():
        session = uow.session
        stmt = select(ReceivedCase)
        if city is not None:
            stmt = stmt.where(ReceivedCase.city_code == city)
        if state is not None:
            stmt = stmt.where(ReceivedCase.state == state.value)
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(
            stmt.order_by(ReceivedCase.city_code, ReceivedCase.case_code)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        items = [ReceivedCasePublic.model_validate(r) for r in rows]
    return ReceivedCasePage(items=items, total=int(total), page=page, page_size=page_size)
