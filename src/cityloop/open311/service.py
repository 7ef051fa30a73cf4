"""Open311 use cases. Each public function owns one transaction, like every cityloop service.

A POSTed request becomes a case through ``cases.service.report`` (channel ``open311``, no staff
actor) *inside this module's transaction*: the case, its report event and the ``open311_request``
row that keeps the media_url and attributes commit together or not at all (see ``_joined``).

Reads are a public view. Only cases of the channels the city lists (``listed_channels``) are
published, and no response ever carries the reporter's contact details, staff names, roles or
the reasons staff typed: a reason may quote the caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityloop.audit.service import record
from cityloop.cases import service as cases
from cityloop.cases.domain import (
    ACTION_LABELS_ZH,
    STATE_LABELS_ZH,
    CaseAction,
    CaseState,
    Channel,
)
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.schemas import MAX_DESCRIPTION, CaseCreate, Location, Reporter
from cityloop.catalog.domain import Family
from cityloop.catalog.models import FilingStandard, MajorClass, MinorClass
from cityloop.cityconfig import service as cityconfig
from cityloop.config import get_settings
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import Conflict, InvalidInput, NotFound, RuleViolation
from cityloop.grid.coords import CoordSystem
from cityloop.open311.domain import (
    DEFAULT_LIMIT,
    LIST_TYPES,
    SITUATION,
    UNCLASSIFIED,
    Answer,
    Answers,
    AttributeDef,
    Datatype,
    Open311Error,
    Status,
    Window,
    attributes_for,
    bad_request,
    check_attributes,
    check_client_id,
    check_media_url,
    clean_phone,
    collect_attributes,
    forbidden,
    has_metadata,
    not_found,
    parse_bool,
    parse_datetime,
    parse_id_list,
    parse_positive_int,
    parse_service_code,
    parse_statuses,
    parse_update_status,
    parse_where,
    reporter_name,
    service_code,
    states_with,
    status_of,
    window,
)
from cityloop.open311.models import Open311Client, Open311Request, Open311Token, Open311Update
from cityloop.open311.schemas import (
    SETTINGS_KEY,
    AnswerOut,
    AttributeOut,
    ClientCreated,
    ClientPublic,
    CreatedOut,
    DefinitionOut,
    Discovery,
    Endpoint,
    NoteOut,
    Open311Settings,
    QueueReport,
    RequestOut,
    RequestPage,
    ServiceOut,
    TokenOut,
    UpdateCreatedOut,
    UpdateOut,
    UpdatePage,
    ValueOut,
)
from cityloop.org.domain import Actor, Role
from cityloop.org.models import Department
from cityloop.org.service import require_role

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-22T00:00:00Z"
"""When this server's Open311 surface last changed (discovery's changeset); bump it with the API."""

FORMATS = ["text/xml", "application/json"]


# --------------------------------------------------------------------------------------------
# Parameters as sent
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Query and form parameters exactly as the client sent them, in order.

    Kept raw (no FastAPI validation) so that every refusal is the spec's error list with the
    spec's code, never a framework 422.
    """

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]] = (), **named: str) -> Params:
        return cls(tuple(pairs) + tuple(named.items()))

    def get(self, name: str) -> str | None:
        """The first value of ``name``; a repeated single-valued parameter is the client's
        mistake and its first value is the one it most likely meant."""
        for key, value in self.items:
            if key == name:
                return value
        return None


# --------------------------------------------------------------------------------------------
# Helpers shared by the use cases
# --------------------------------------------------------------------------------------------


def _joined(session: Session) -> UnitOfWork:
    """A unit of work that runs another capability's use case inside ``session``'s transaction.

    ``cases.service.report`` owns a transaction of its own and commits it. Given this unit of
    work, its session is bound to our connection in ``create_savepoint`` mode: its commit
    releases a savepoint, and only our commit makes the case durable, together with our rows.
    Without this a crash between the two commits would leave a case without its media_url and
    attributes, or an accepted token that never became a case.
    """
    connection = session.connection()

    def factory() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    return UnitOfWork(factory)


def _settings(session: Session) -> Open311Settings:
    return cityconfig.load(session, SETTINGS_KEY, Open311Settings)


def _check_jurisdiction(cfg: Open311Settings, value: str | None) -> None:
    given = (value or "").strip()
    if not given:
        if cfg.require_jurisdiction_id:
            raise bad_request("jurisdiction_id is required")
        return
    if given != cfg.jurisdiction_id:
        raise not_found(f"jurisdiction_id '{given[:128]}' not found")


def _key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _authenticate(session: Session, api_key: str | None) -> Open311Client:
    key = (api_key or "").strip()
    if not key:
        raise forbidden("api_key is required to submit; ask the city for one")
    client = session.scalar(select(Open311Client).where(Open311Client.key_hash == _key_hash(key)))
    if client is None or not client.active:
        raise forbidden("api_key is invalid or has been disabled")
    return client


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _iso(instant: dt.datetime | None) -> str | None:
    """W3C date-time in the city's zone (``2026-11-23T09:00:00+08:00``): what a bureau reads
    and what every client parses, since the offset is always given."""
    if instant is None:
        return None
    return instant.astimezone(_zone(get_settings().timezone)).isoformat(timespec="seconds")


def _listed(cfg: Open311Settings) -> list[str]:
    return [c.value for c in cfg.listed_channels]


def _active_minor(session: Session, code: str) -> tuple[MinorClass, MajorClass] | None:
    parsed = parse_service_code(code)
    if parsed is None:
        return None
    family, minor_code = parsed
    row = session.execute(
        select(MinorClass, MajorClass)
        .join(MajorClass, MinorClass.major_id == MajorClass.id)
        .where(
            MinorClass.family == family,
            MinorClass.code == minor_code,
            MinorClass.active.is_(True),
            MajorClass.active.is_(True),
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


def _situations(session: Session, minor_id: int) -> list[tuple[int, str]]:
    rows = session.execute(
        select(FilingStandard.id, FilingStandard.filing_criterion)
        .where(FilingStandard.minor_id == minor_id, FilingStandard.active.is_(True))
        .order_by(FilingStandard.position, FilingStandard.id)
    ).all()
    return [(row_id, criterion) for row_id, criterion in rows]


def _state_note(state: CaseState) -> str:
    return f"{STATE_LABELS_ZH[state]} ({state.value})"


# --------------------------------------------------------------------------------------------
# Settings and clients (administration)
# --------------------------------------------------------------------------------------------


def current_settings(uow: UnitOfWork) -> Open311Settings:
    return cityconfig.get(uow, SETTINGS_KEY, Open311Settings)


def update_settings(uow: UnitOfWork, actor: Actor, changes: dict[str, Any]) -> Open311Settings:
    """Change some settings, keeping the others (admin only; audited by cityconfig)."""
    unknown = sorted(set(changes) - set(Open311Settings.model_fields))
    if unknown:
        raise InvalidInput(f"unknown Open311 setting(s): {', '.join(unknown)}", field=unknown[0])
    merged = current_settings(uow).model_dump(mode="json")
    merged.update(changes)
    return cityconfig.put(uow, actor, SETTINGS_KEY, Open311Settings, merged)


def _client_public(client: Open311Client) -> ClientPublic:
    return ClientPublic(
        id=client.id,
        name=client.name,
        key_hint=client.key_hint,
        active=client.active,
        created_at=_iso(client.created_at) or "",
    )


def add_client(uow: UnitOfWork, actor: Actor, name: str) -> ClientCreated:
    """Register a client and make its api_key. The key is returned once and stored hashed."""
    require_role(actor, Role.ADMIN)
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("a client name has 1 to 64 characters", field="name")
    api_key = secrets.token_urlsafe(32)
    with uow:
        session = uow.session
        if session.scalar(select(Open311Client.id).where(Open311Client.name == name)):
            raise Conflict(f"an Open311 client named '{name}' exists already", field="name")
        client = Open311Client(
            name=name,
            key_hash=_key_hash(api_key),
            key_hint=api_key[:6],
            active=True,
            created_at=utcnow(),
        )
        session.add(client)
        session.flush()
        record(session, actor, action="open311.client.add", entity="open311_client", entity_id=name)
        result = ClientCreated(client=_client_public(client), api_key=api_key)
        uow.commit()
        return result


def list_clients(uow: UnitOfWork) -> list[ClientPublic]:
    with uow.read():
        rows = uow.session.scalars(select(Open311Client).order_by(Open311Client.name))
        return [_client_public(c) for c in rows]


def set_client_active(uow: UnitOfWork, actor: Actor, name: str, active: bool) -> ClientPublic:
    """Disable (or re-enable) a client's key; its past requests stay as they are."""
    require_role(actor, Role.ADMIN)
    with uow:
        session = uow.session
        client = session.scalar(select(Open311Client).where(Open311Client.name == name))
        if client is None:
            raise NotFound(f"no Open311 client named '{name}'", field="name")
        client.active = active
        client.disabled_at = None if active else utcnow()
        record(
            session,
            actor,
            action="open311.client.enable" if active else "open311.client.disable",
            entity="open311_client",
            entity_id=name,
        )
        result = _client_public(client)
        uow.commit()
        return result


# --------------------------------------------------------------------------------------------
# Discovery, services, service definitions
# --------------------------------------------------------------------------------------------


def discovery(uow: UnitOfWork, *, base_url: str) -> Discovery:
    with uow.read():
        cfg = _settings(uow.session)
    url = cfg.base_url or base_url.rstrip("/")
    return Discovery(
        changeset=CHANGESET,
        contact=cfg.contact,
        key_service=cfg.key_service,
        endpoints=[
            Endpoint(
                specification=SPECIFICATION,
                url=url,
                changeset=CHANGESET,
                type="production",
                formats=list(FORMATS),
            )
        ],
    )


def list_services(uow: UnitOfWork, params: Params) -> list[ServiceOut]:
    """Every active minor class of the catalog as a service, grouped by its major class."""
    with uow.read():
        session = uow.session
        cfg = _settings(session)
        _check_jurisdiction(cfg, params.get("jurisdiction_id"))
        rows = session.execute(
            select(MinorClass, MajorClass)
            .join(MajorClass, MinorClass.major_id == MajorClass.id)
            .where(MinorClass.active.is_(True), MajorClass.active.is_(True))
            .order_by(
                MinorClass.family,
                MajorClass.position,
                MajorClass.code,
                MinorClass.position,
                MinorClass.code,
            )
        ).all()
        # Spec: realtime answers with an id at once, batch with a token resolved later.
        kind = "batch" if cfg.queued else "realtime"
        with_rows = set(
            session.scalars(
                select(FilingStandard.minor_id).where(FilingStandard.active.is_(True)).distinct()
            )
        )
        services: list[ServiceOut] = []
        for minor, major in rows:
            family = Family(minor.family).label_zh
            services.append(
                ServiceOut(
                    service_code=service_code(minor.family, minor.code),
                    service_name=minor.name,
                    description=f"{family} › {major.name} › {minor.name}",
                    metadata=has_metadata(minor.id in with_rows),
                    type=kind,
                    keywords=",".join((family, major.name, minor.name, minor.code)),
                    group=major.name,
                )
            )
        return services


def _attribute_out(definition: AttributeDef) -> AttributeOut:
    return AttributeOut(
        variable=definition.variable,
        code=definition.code,
        datatype=definition.datatype.value,
        required=definition.required,
        datatype_description=definition.datatype_description,
        order=definition.order,
        description=definition.description,
        values=[ValueOut(key=c.key, name=c.name) for c in definition.choices]
        if definition.datatype in LIST_TYPES
        else None,
    )


def service_definition(uow: UnitOfWork, code: str, params: Params) -> DefinitionOut:
    with uow.read():
        session = uow.session
        _check_jurisdiction(_settings(session), params.get("jurisdiction_id"))
        found = _active_minor(session, code)
        if found is None:
            raise not_found(f"service_code '{code[:32]}' not found")
        minor, _major = found
        definitions = attributes_for(_situations(session, minor.id))
        return DefinitionOut(
            service_code=service_code(minor.family, minor.code),
            attributes=[_attribute_out(d) for d in definitions],
        )


# --------------------------------------------------------------------------------------------
# POST requests, tokens and the queue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A submission that passed every check: what ``report`` needs plus what we keep."""

    case: CaseCreate
    service_code: str
    answers: Answers
    media_url: str | None
    account_id: str | None
    device_id: str | None

    def payload(self) -> dict[str, Any]:
        return {
            "case": self.case.model_dump(mode="json"),
            "service_code": self.service_code,
            "attributes": [_answer_dict(a) for a in self.answers.known],
            "extra_attributes": self.answers.extra,
            "media_url": self.media_url,
            "account_id": self.account_id,
            "device_id": self.device_id,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Prepared:
        answers = tuple(
            Answer(
                code=a["code"],
                datatype=Datatype(a["datatype"]),
                values=tuple(a["values"]),
                names=tuple(a.get("names", ())),
            )
            for a in data["attributes"]
        )
        return cls(
            case=CaseCreate.model_validate(data["case"]),
            service_code=data["service_code"],
            answers=Answers(known=answers, extra=dict(data.get("extra_attributes", {}))),
            media_url=data.get("media_url"),
            account_id=data.get("account_id"),
            device_id=data.get("device_id"),
        )


def _answer_dict(answer: Answer) -> dict[str, Any]:
    return {
        "code": answer.code,
        "datatype": answer.datatype.value,
        "values": list(answer.values),
        "names": list(answer.names),
    }


_CONTACT_FIELDS = {"name": "first_name/last_name", "phone": "phone", "email": "email"}


def _reporter(params: Params) -> Reporter | None:
    name = reporter_name(params.get("first_name"), params.get("last_name"))
    phone = clean_phone(params.get("phone"))
    email = (params.get("email") or "").strip() or None
    if name is None and phone is None and email is None:
        return None
    try:
        return Reporter(name=name, phone=phone, email=email)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _CONTACT_FIELDS.get(str(err["loc"][0]), str(err["loc"][0])) if err["loc"] else ""
        raise bad_request(f"{where} is not valid: {err['msg']}") from None


def _prepare(session: Session, params: Params) -> Prepared:
    """Check a POST completely before anything is written; the first problem is the answer."""
    code = (params.get("service_code") or "").strip()
    if not code:
        raise bad_request("service_code is required")
    found = _active_minor(session, code)
    if found is None:
        raise bad_request(
            f"service_code '{code[:32]}' is not a service of this jurisdiction; "
            "GET services.xml lists them"
        )
    minor, _major = found
    situations = _situations(session, minor.id)
    answers = check_attributes(attributes_for(situations), collect_attributes(params.items))
    where = parse_where(
        params.get("lat"),
        params.get("long"),
        params.get("address_string"),
        params.get("address_id"),
    )
    description = (params.get("description") or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise bad_request(
            f"description is longer than {MAX_DESCRIPTION} characters ({len(description)})"
        )
    situation = answers.value(SITUATION)
    if not description:
        # The case loop needs a description; the class (and situation) the client chose is
        # the truest one we can write without inventing anything.
        names = dict((str(i), text) for i, text in situations)
        description = minor.name + (f"：{names[situation]}" if situation else "")
        description = description[:MAX_DESCRIPTION]
    media_url = check_media_url(params.get("media_url"))
    account_id = check_client_id("account_id", params.get("account_id"))
    device_id = check_client_id("device_id", params.get("device_id"))
    reporter = _reporter(params)
    try:
        case = CaseCreate(
            channel=Channel.OPEN311,
            description=description,
            family=minor.family,
            minor_code=minor.code,
            standard_id=int(situation) if situation else None,
            location=Location(lon=where.lon, lat=where.lat, system=CoordSystem.WGS84)
            if where.lat is not None and where.lon is not None
            else None,
            address=where.address,
            reporter=reporter,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "request"
        raise bad_request(f"{field}: {err['msg']}") from None
    return Prepared(
        case=case,
        service_code=service_code(minor.family, minor.code),
        answers=answers,
        media_url=media_url,
        account_id=account_id,
        device_id=device_id,
    )


def _create_case(
    session: Session,
    client_id: int,
    prepared: Prepared,
    *,
    now: dt.datetime,
    idempotency_key: str | None,
    token: str | None,
) -> tuple[int, str]:
    """The case and its open311_request row, in the caller's transaction (uncommitted)."""
    reported = cases.report(
        _joined(session), None, prepared.case, idempotency_key=idempotency_key, now=now
    )
    if reported.created:
        session.add(
            Open311Request(
                case_id=reported.id,
                client_id=client_id,
                service_code=prepared.service_code,
                attributes=[_answer_dict(a) for a in prepared.answers.known],
                extra_attributes=prepared.answers.extra,
                media_url=prepared.media_url,
                account_id=prepared.account_id,
                device_id=prepared.device_id,
                token=token,
                created_at=now,
            )
        )
        session.flush()
    return reported.id, reported.code


def submit(
    uow: UnitOfWork,
    params: Params,
    *,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> CreatedOut:
    """POST requests: a case at once (its code is the service_request_id) or, in queued mode,
    a token. Every check runs before the first write, and all writes share one commit."""
    now = now or utcnow()
    with uow:
        session = uow.session
        cfg = _settings(session)
        _check_jurisdiction(cfg, params.get("jurisdiction_id"))
        client = _authenticate(session, params.get("api_key"))
        prepared = _prepare(session, params)
        if cfg.queued:
            token = secrets.token_urlsafe(18)
            session.add(
                Open311Token(
                    token=token,
                    client_id=client.id,
                    state="pending",
                    payload=prepared.payload(),
                    created_at=now,
                )
            )
            uow.commit()
            return CreatedOut(token=token, service_notice=cfg.service_notice, account_id=None)
        key = f"open311:{client.id}:{idempotency_key}" if idempotency_key else None
        _case_id, code = _create_case(
            session, client.id, prepared, now=now, idempotency_key=key, token=None
        )
        uow.commit()
        return CreatedOut(
            service_request_id=code, service_notice=cfg.service_notice, account_id=None
        )


def resolve_token(uow: UnitOfWork, token: str, params: Params) -> TokenOut:
    with uow.read():
        session = uow.session
        _check_jurisdiction(_settings(session), params.get("jurisdiction_id"))
        row = session.scalar(select(Open311Token).where(Open311Token.token == token))
        if row is None:
            raise not_found(f"token '{token[:64]}' not found")
        code = (
            session.scalar(select(Case.code).where(Case.id == row.case_id)) if row.case_id else None
        )
        return TokenOut(
            service_request_id=code,
            token=row.token,
            token_status=row.state,
            token_notice=row.error if row.state == "rejected" else None,
        )


def process_queue(
    new_uow: Callable[[], UnitOfWork], *, limit: int = 500, now: dt.datetime | None = None
) -> QueueReport:
    """Turn pending tokens into cases, oldest first, one transaction per token.

    A token whose submission no longer fits (its class retired meanwhile) is rejected with the
    reason, which GET tokens then shows. The payload, contact details included, is emptied in
    the same commit that creates the case, so the queue keeps no copy of private data. A token
    is re-read and checked in its own write transaction, so two workers never make two cases.
    """
    now = now or utcnow()
    reader = new_uow()
    with reader.read():
        ids = reader.session.scalars(
            select(Open311Token.id)
            .where(Open311Token.state == "pending")
            .order_by(Open311Token.id)
            .limit(limit)
        ).all()
    created = rejected = 0
    for token_id in ids:
        uow = new_uow()
        with uow:
            session = uow.session
            row = session.scalar(
                select(Open311Token).where(Open311Token.id == token_id).with_for_update()
            )
            if row is None or row.state != "pending":
                continue
            try:
                prepared = Prepared.from_payload(row.payload)
                case_id, _code = _create_case(
                    session,
                    row.client_id,
                    prepared,
                    now=now,
                    idempotency_key=f"open311-token:{row.token}",
                    token=row.token,
                )
                row.state, row.case_id = "created", case_id
                created += 1
            except (InvalidInput, NotFound, RuleViolation, ValidationError) as exc:
                # The submission cannot become a case any more (its class or filing row was
                # retired meanwhile). A ConfigurationError is not caught: the city must fix its
                # calendar, and the token waits for that instead of being refused.
                row.state, row.error = "rejected", str(exc)[:1000]
                rejected += 1
            row.payload = {}
            row.processed_at = now
            uow.commit()
    with reader.read():
        left = reader.session.scalar(
            select(func.count()).select_from(Open311Token).where(Open311Token.state == "pending")
        )
    return QueueReport(created=created, rejected=rejected, left=left or 0)


def pending_tokens(uow: UnitOfWork) -> int:
    with uow.read():
        count = uow.session.scalar(
            select(func.count()).select_from(Open311Token).where(Open311Token.state == "pending")
        )
        return count or 0


# --------------------------------------------------------------------------------------------
# GET requests and requests/{id}
# --------------------------------------------------------------------------------------------


def _service_code_clause(value: str) -> Any:
    codes = [part.strip() for part in value.split(",") if part.strip()]
    if not codes:
        raise bad_request("service_code is empty")
    clauses: list[Any] = []
    pairs: list[Any] = []
    for code in codes:
        if code.lower() == UNCLASSIFIED:
            clauses.append(Case.minor_id.is_(None))
            continue
        parsed = parse_service_code(code)
        if parsed is None:
            raise bad_request(f"service_code '{code[:32]}' is not of the form C0101 or E0101")
        pairs.append(and_(MinorClass.family == parsed[0], MinorClass.code == parsed[1]))
    if pairs:
        clauses.append(Case.minor_id.in_(select(MinorClass.id).where(or_(*pairs))))
    return or_(*clauses)


def _dates(params: Params, now: dt.datetime) -> Window:
    start = params.get("start_date")
    end = params.get("end_date")
    return window(
        parse_datetime("start_date", start) if start and start.strip() else None,
        parse_datetime("end_date", end) if end and end.strip() else None,
        now,
    )


def _paging(params: Params) -> tuple[int, int]:
    page = parse_positive_int("page", params.get("page"), default=1, maximum=1_000_000)
    size = parse_positive_int(
        "page_size", params.get("page_size"), default=DEFAULT_LIMIT, maximum=DEFAULT_LIMIT
    )
    return page, size


def list_requests(
    uow: UnitOfWork, params: Params, *, now: dt.datetime | None = None
) -> RequestPage:
    """GET requests with the spec's filters and defaults, newest first.

    ``service_request_id`` (comma-delimited) overrides every other filter, as the spec says.
    Otherwise the window is start_date..end_date, at most 90 days, by default the last 90
    days; ``page``/``page_size`` (an extension) page through at most 1,000 at a time.
    """
    now = now or utcnow()
    with uow.read():
        session = uow.session
        cfg = _settings(session)
        _check_jurisdiction(cfg, params.get("jurisdiction_id"))
        extensions = parse_bool("extensions", params.get("extensions"))
        page, size = _paging(params)
        stmt: Select[Case] = select(Case).where(Case.channel.in_(_listed(cfg)))
        ids = params.get("service_request_id")
        if ids is not None and ids.strip():
            stmt = stmt.where(Case.code.in_(parse_id_list(ids)))
        else:
            codes = params.get("service_code")
            if codes is not None and codes.strip():
                stmt = stmt.where(_service_code_clause(codes))
            statuses = parse_statuses(params.get("status"))
            if statuses is not None:
                states = {s.value for status in statuses for s in states_with(status)}
                stmt = stmt.where(Case.state.in_(sorted(states)))
            span = _dates(params, now)
            stmt = stmt.where(Case.reported_at >= span.start, Case.reported_at <= span.end)
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(
            stmt.order_by(Case.reported_at.desc(), Case.id.desc())
            .limit(size)
            .offset((page - 1) * size)
        ).all()
        return RequestPage(items=_requests_out(session, rows, extensions=extensions), total=total)


def get_request(uow: UnitOfWork, request_id: str, params: Params) -> RequestOut:
    with uow.read():
        session = uow.session
        cfg = _settings(session)
        _check_jurisdiction(cfg, params.get("jurisdiction_id"))
        extensions = parse_bool("extensions", params.get("extensions"))
        case = _listed_case(session, cfg, request_id)
        return _requests_out(session, [case], extensions=extensions)[0]


def _listed_case(session: Session, cfg: Open311Settings, request_id: str) -> Case:
    """The case with that code, if Open311 publishes it; an unlisted case is "not found" so
    that its existence is not revealed either."""
    case = session.scalar(
        select(Case).where(Case.code == request_id.strip(), Case.channel.in_(_listed(cfg)))
    )
    if case is None:
        raise not_found(f"service_request_id '{request_id[:64]}' not found")
    return case


def _requests_out(session: Session, rows: Sequence[Case], *, extensions: bool) -> list[RequestOut]:
    """Render cases, loading their classes, departments and Open311 rows in a few queries."""
    if not rows:
        return []
    case_ids = [c.id for c in rows]
    minor_ids = {c.minor_id for c in rows if c.minor_id is not None}
    minors = {
        m.id: m for m in session.scalars(select(MinorClass).where(MinorClass.id.in_(minor_ids)))
    }
    department_names = _department_names(
        session,
        {c.department_id for c in rows if c.department_id is not None}
        | (_event_departments(session, case_ids) if extensions else set()),
    )
    requests = {
        r.case_id: r
        for r in session.scalars(select(Open311Request).where(Open311Request.case_id.in_(case_ids)))
    }
    events: dict[int, list[CaseEvent]] = {}
    updates: dict[int, list[Open311Update]] = {}
    if extensions:
        for event in session.scalars(
            select(CaseEvent).where(CaseEvent.case_id.in_(case_ids)).order_by(CaseEvent.id)
        ):
            events.setdefault(event.case_id, []).append(event)
        for update in session.scalars(
            select(Open311Update)
            .where(Open311Update.case_id.in_(case_ids))
            .order_by(Open311Update.id)
        ):
            updates.setdefault(update.case_id, []).append(update)
    result: list[RequestOut] = []
    for case in rows:
        state = CaseState(case.state)
        status = status_of(state)
        minor = minors.get(case.minor_id) if case.minor_id is not None else None
        extra = requests.get(case.id)
        # Spec: for a closed request, updated_datetime is when it was closed.
        updated = (
            (case.closed_at or case.updated_at) if status is Status.CLOSED else case.updated_at
        )
        out = RequestOut(
            service_request_id=case.code,
            status=status.value,
            status_notes=_state_note(state),
            service_name=minor.name if minor else None,
            service_code=service_code(minor.family, minor.code) if minor else UNCLASSIFIED,
            description=case.description,
            agency_responsible=_department_name(department_names, case.department_id),
            service_notice=None,
            requested_datetime=_iso(case.reported_at) or "",
            updated_datetime=_iso(updated),
            expected_datetime=_iso(case.disposal_deadline),
            address=case.address,
            address_id=None,
            zipcode=None,
            lat=case.lat,
            long=case.lon,
            media_url=extra.media_url if extra else None,
        )
        if extensions:
            out.attributes = [_answer_out(a) for a in (extra.attributes if extra else [])]
            out.extended_attributes = _extended(case)
            out.notes = _notes(events.get(case.id, []), updates.get(case.id, []), department_names)
        result.append(out)
    return result


def _department_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Department.id, Department.name).where(Department.id.in_(ids)))
    return {dept_id: name for dept_id, name in rows}


def _event_departments(session: Session, case_ids: list[int]) -> set[int]:
    rows = session.scalars(
        select(CaseEvent.department_id).where(
            CaseEvent.case_id.in_(case_ids),
            CaseEvent.action == CaseAction.DISPATCH.value,
            CaseEvent.department_id.is_not(None),
        )
    )
    return {d for d in rows if d is not None}


def _answer_out(stored: dict[str, Any]) -> AnswerOut:
    datatype = Datatype(stored["datatype"])
    values = [str(v) for v in stored.get("values", [])]
    if datatype in LIST_TYPES:
        names = [str(n) for n in stored.get("names", [])] or values
        return AnswerOut(
            code=stored["code"],
            datatype=datatype.value,
            values=[ValueOut(key=k, name=n) for k, n in zip(values, names, strict=False)],
        )
    return AnswerOut(
        code=stored["code"], datatype=datatype.value, value=values[0] if values else ""
    )


def _extended(case: Case) -> dict[str, Any]:
    """The loop's public facts, for clients that want more than open/closed."""
    state = CaseState(case.state)
    return {
        "state": state.value,
        "state_label": STATE_LABELS_ZH[state],
        "channel": case.channel,
        "step": case.step,
        "step_deadline": _iso(case.step_deadline),
        "filed_at": _iso(case.filed_at),
        "dispatched_at": _iso(case.dispatched_at),
        "disposed_at": _iso(case.disposed_at),
        "closed_at": _iso(case.closed_at),
        "disposal_overdue": case.disposal_overdue,
    }


def _department_name(names: dict[int, str], department_id: int | None) -> str | None:
    return names.get(department_id) if department_id is not None else None


def _event_text(event: CaseEvent, department_names: dict[int, str]) -> str:
    text = _state_note(CaseState(event.to_state))
    name = _department_name(department_names, event.department_id)
    if event.action == CaseAction.DISPATCH.value and name is not None:
        text += f"：{name}"
    return text


def _status_at(events: Sequence[CaseEvent], instant: dt.datetime) -> Status:
    status = Status.OPEN
    for event in events:
        if event.at <= instant:
            status = status_of(event.to_state)
    return status


def _notes(
    events: Sequence[CaseEvent],
    updates: Sequence[Open311Update],
    department_names: dict[int, str],
) -> list[NoteOut]:
    """The timeline: each step of the loop (what happened, the state after it) and each update
    a client posted, in time order. Never who did it or why: both are staff data."""
    notes: list[tuple[dt.datetime, int, NoteOut]] = []
    for event in events:
        action = CaseAction(event.action)
        notes.append(
            (
                event.at,
                0,
                NoteOut(
                    datetime=_iso(event.at) or "",
                    type="activity",
                    summary=ACTION_LABELS_ZH[action],
                    description=_event_text(event, department_names),
                    status=status_of(event.to_state).value,
                ),
            )
        )
    for update in updates:
        notes.append(
            (
                update.received_at,
                1,
                NoteOut(
                    datetime=_iso(update.received_at) or "",
                    type="comment",
                    summary="更新 (update)",
                    description=update.description,
                    status=_status_at(events, update.received_at).value,
                ),
            )
        )
    notes.sort(key=lambda n: (n[0], n[1]))
    return [n[2] for n in notes]


# --------------------------------------------------------------------------------------------
# mySociety's servicerequestupdates, GET and POST
# --------------------------------------------------------------------------------------------


def list_updates(uow: UnitOfWork, params: Params, *, now: dt.datetime | None = None) -> UpdatePage:
    """Updates in the window, oldest first: each step of the loop after the report (update_id
    ``e<event id>``) and each update a client posted (``n<id>``), so FixMyStreet can follow
    a request to its end and recognise the updates it sent itself."""
    now = now or utcnow()
    with uow.read():
        session = uow.session
        cfg = _settings(session)
        _check_jurisdiction(cfg, params.get("jurisdiction_id"))
        span = _dates(params, now)
        page, size = _paging(params)
        listed = Case.channel.in_(_listed(cfg))
        event_filter = and_(
            listed,
            CaseEvent.action != CaseAction.REPORT.value,
            CaseEvent.at >= span.start,
            CaseEvent.at <= span.end,
        )
        update_filter = and_(
            listed, Open311Update.received_at >= span.start, Open311Update.received_at <= span.end
        )
        total = (
            session.scalar(
                select(func.count())
                .select_from(CaseEvent)
                .join(Case, Case.id == CaseEvent.case_id)
                .where(event_filter)
            )
            or 0
        ) + (
            session.scalar(
                select(func.count())
                .select_from(Open311Update)
                .join(Case, Case.id == Open311Update.case_id)
                .where(update_filter)
            )
            or 0
        )
        # Both sources are sorted by time; the page is cut from their merge.
        upto = page * size
        event_rows = session.execute(
            select(CaseEvent, Case.code)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(event_filter)
            .order_by(CaseEvent.at, CaseEvent.id)
            .limit(upto)
        ).all()
        update_rows = session.execute(
            select(Open311Update, Case.code)
            .join(Case, Case.id == Open311Update.case_id)
            .where(update_filter)
            .order_by(Open311Update.received_at, Open311Update.id)
            .limit(upto)
        ).all()
        department_names = _department_names(
            session,
            {e.department_id for e, _ in event_rows if e.department_id is not None},
        )
        history: dict[int, list[CaseEvent]] = {}
        if update_rows:
            for event in session.scalars(
                select(CaseEvent)
                .where(CaseEvent.case_id.in_({u.case_id for u, _ in update_rows}))
                .order_by(CaseEvent.id)
            ):
                history.setdefault(event.case_id, []).append(event)
        merged: list[tuple[dt.datetime, int, int, UpdateOut]] = []
        for event, code in event_rows:
            merged.append(
                (
                    event.at,
                    0,
                    event.id,
                    UpdateOut(
                        update_id=f"e{event.id}",
                        service_request_id=code,
                        status=status_of(event.to_state).value,
                        updated_datetime=_iso(event.at) or "",
                        description=f"{ACTION_LABELS_ZH[CaseAction(event.action)]}："
                        + _event_text(event, department_names),
                        media_url=None,
                    ),
                )
            )
        for update, code in update_rows:
            merged.append(
                (
                    update.received_at,
                    1,
                    update.id,
                    UpdateOut(
                        update_id=f"n{update.id}",
                        service_request_id=code,
                        status=_status_at(
                            history.get(update.case_id, []), update.received_at
                        ).value,
                        updated_datetime=_iso(update.received_at) or "",
                        description=update.description,
                        media_url=update.media_url,
                    ),
                )
            )
        merged.sort(key=lambda m: (m[0], m[1], m[2]))
        items = [m[3] for m in merged[(page - 1) * size : upto]]
        return UpdatePage(items=items, total=total)


def post_update(
    uow: UnitOfWork, params: Params, *, now: dt.datetime | None = None
) -> UpdateCreatedOut:
    """Record an update a client posts (a FixMyStreet comment) as a note on the request.

    It never moves the case: only staff change a case's state. A client's retry with the same
    update_id returns the first note's id instead of writing a second one.
    """
    now = now or utcnow()
    with uow:
        session = uow.session
        cfg = _settings(session)
        _check_jurisdiction(cfg, params.get("jurisdiction_id"))
        client = _authenticate(session, params.get("api_key"))
        request_id = (params.get("service_request_id") or "").strip()
        if not request_id:
            raise bad_request("service_request_id is required")
        external_id = check_client_id("update_id", params.get("update_id"))
        if external_id is None:
            raise bad_request("update_id is required")
        status = parse_update_status(params.get("status"))
        stated = (params.get("updated_datetime") or "").strip()
        if not stated:
            raise bad_request("updated_datetime is required")
        stated_at = parse_datetime("updated_datetime", stated)
        description = (params.get("description") or "").strip()
        if len(description) > MAX_DESCRIPTION:
            raise bad_request(f"description is longer than {MAX_DESCRIPTION} characters")
        media_url = check_media_url(params.get("media_url"))
        if not description and media_url is None:
            raise bad_request("an update needs a description or a media_url")
        author = _reporter(params)
        case = _listed_case(session, cfg, request_id)
        existing = session.scalar(
            select(Open311Update).where(
                Open311Update.client_id == client.id, Open311Update.external_id == external_id
            )
        )
        if existing is not None:
            if existing.case_id != case.id:
                raise bad_request(
                    f"update_id '{external_id}' was already used for another service request"
                )
            return UpdateCreatedOut(update_id=f"n{existing.id}")
        update = Open311Update(
            case_id=case.id,
            client_id=client.id,
            external_id=external_id,
            status=status,
            description=description,
            media_url=media_url,
            stated_at=stated_at,
            received_at=now,
            author_name=author.name if author else None,
            author_email=author.email if author else None,
            author_phone=author.phone if author else None,
        )
        session.add(update)
        try:
            session.flush()
        except IntegrityError:
            # A concurrent retry of the same update won: answer with its id.
            session.rollback()
            raise bad_request(f"update_id '{external_id}' is being recorded; retry") from None
        result = UpdateCreatedOut(update_id=f"n{update.id}")
        uow.commit()
        return result


__all__ = [
    "Open311Error",
    "Params",
    "add_client",
    "discovery",
    "get_request",
    "list_clients",
    "list_requests",
    "list_services",
    "list_updates",
    "post_update",
    "process_queue",
    "resolve_token",
    "service_definition",
    "set_client_active",
    "submit",
    "update_settings",
]
