"""The Open311 use cases on SQLite and PostgreSQL: services, POST, queue, reads, updates.

Times are fixed: Monday 2026-11-23 09:00 in Shanghai, a plain working day.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select
from tests.integration.open311.open311_support import (
    Catalog,
    client_key,
    counts,
    seed_catalog,
    set_open311,
)
from tests.world import World

from cityloop.cases import attachments
from cityloop.cases import service as cases
from cityloop.cases.domain import CaseAction, Channel
from cityloop.cases.models import Case
from cityloop.cases.schemas import CaseActionRequest, CaseCreate
from cityloop.catalog.models import MinorClass
from cityloop.db.engine import Database
from cityloop.errors import Conflict, InvalidInput
from cityloop.open311 import service as open311
from cityloop.open311.domain import Open311Error
from cityloop.open311.models import Open311Client, Open311Request, Open311Token, Open311Update
from cityloop.open311.service import Params
from cityloop.org.domain import SYSTEM_ACTOR, Actor

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SH)


pytestmark = pytest.mark.usefixtures("data_dir")  # attachments go to a temp folder


@pytest.fixture
def catalog(db: Database) -> Catalog:
    return seed_catalog(db)


@pytest.fixture
def key(db: Database) -> str:
    return client_key(db)


def post(db: Database, key: str, at: dt.datetime = MONDAY_9, **fields: Any) -> str:
    """A POST requests through the service; returns the service_request_id."""
    params: dict[str, Any] = {
        "api_key": key,
        "service_code": "C0101",
        "lat": "31.30",
        "long": "120.60",
        "description": "井盖破损(演示)",
        **fields,
    }
    created = open311.submit(db.uow(), Params.of(_pairs(params)), now=at)
    assert created.service_request_id is not None
    return created.service_request_id


def _pairs(params: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, str(item)))
    return pairs


def refused(db: Database, call: Any) -> tuple[int, str]:
    with pytest.raises(Open311Error) as err:
        call()
    return err.value.code, err.value.description


def case_of(db: Database, code: str) -> Case:
    with db.uow().read() as uow:
        case = uow.session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        uow.session.expunge(case)  # keep its loaded values after the read rolls back
        return case


def act(
    db: Database, actor: Actor, code: str, action: CaseAction, at: dt.datetime, **f: Any
) -> None:
    case = case_of(db, code)
    req = CaseActionRequest(action=action, version=case.version, **f)
    cases.act(db.uow(), actor, case.id, req, now=at)


def photo(db: Database, actor: Actor) -> int:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "JPEG")
    return attachments.upload(
        db.uow(), actor, filename="p.jpg", content=buf.getvalue(), stage="feedback"
    ).id


def iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


# --- services and definitions ----------------------------------------------------------------


def test_services_are_the_active_classes_grouped_by_major(db: Database, catalog: Catalog) -> None:
    services = open311.list_services(db.uow(), Params())
    assert [s.service_code for s in services] == ["C0101", "C0102", "E0101"]
    manhole = services[0]
    assert manhole.service_name == "上水井盖" and manhole.group == "公用设施"
    assert manhole.type == "realtime" and manhole.metadata is True
    assert manhole.keywords is not None and "上水井盖" in manhole.keywords
    assert services[2].group == "市容环境"
    set_open311(db, queued=True)
    assert {s.type for s in open311.list_services(db.uow(), Params())} == {"batch"}


def test_a_definition_lists_the_situations_then_the_common_attributes(
    db: Database, catalog: Catalog
) -> None:
    definition = open311.service_definition(db.uow(), "C0101", Params())
    first = definition.attributes[0]
    assert first.code == "situation" and first.datatype == "singlevaluelist"
    assert first.values is not None
    assert [v.key for v in first.values] == [str(i) for i in catalog.manhole_rows]
    assert [v.name for v in first.values][1] == "破损超过25c㎡"
    datatypes = {a.datatype for a in definition.attributes}
    assert datatypes == {
        "string",
        "number",
        "datetime",
        "text",
        "singlevaluelist",
        "multivaluelist",
    }
    no_rows = open311.service_definition(db.uow(), "C0102", Params())
    assert "situation" not in {a.code for a in no_rows.attributes}
    for code in (catalog.retired_code, "C0999", "nonsense"):
        status, words = refused(
            db, lambda c=code: open311.service_definition(db.uow(), c, Params())
        )
        assert status == 404 and "not found" in words


# --- POST requests ---------------------------------------------------------------------------


def test_a_post_becomes_an_open311_case_and_contact_details_stay_private(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    code = post(
        db,
        key,
        **{
            "attribute[situation]": catalog.manhole_rows[1],
            "attribute[impact][]": ["traffic", "safety"],
            "attribute[report_url]": "https://fms.example/report/7",
            "media_url": "https://fms.example/photo/7.jpg",
            "first_name": "三",
            "last_name": "张",
            "phone": "(138) 0000 0000",
            "email": "zhang@example.cn",
            "device_id": "device-7",
            "account_id": "acct-7",
        },
    )
    case = case_of(db, code)
    assert case.channel == Channel.OPEN311.value
    assert case.state == "reported"  # a public report is verified first
    assert (case.lat, case.lon) == (31.30, 120.60)
    assert case.standard_id == catalog.manhole_rows[1]
    assert case.reporter_name == "张三" and case.reporter_phone == "138 0000 0000"
    assert case.reporter_email == "zhang@example.cn"
    with db.uow().read() as uow:
        extra = uow.session.scalar(select(Open311Request).where(Open311Request.case_id == case.id))
        assert extra is not None
        assert extra.media_url == "https://fms.example/photo/7.jpg"
        assert [a["code"] for a in extra.attributes] == ["situation", "impact"]
        assert extra.extra_attributes == {"report_url": "https://fms.example/report/7"}
        assert (extra.account_id, extra.device_id) == ("acct-7", "device-7")
        minor = uow.session.get(MinorClass, case.minor_id)
        assert minor is not None and minor.code == "0101"

    shown = open311.get_request(db.uow(), code, Params.of(extensions="true"))
    text = json.dumps(shown.model_dump(mode="json"), ensure_ascii=False)
    for private in ("张三", "zhang@", "0000 0000", "acct-7", "device-7", "report_url", "三"):
        assert private not in text, private
    assert shown.media_url == "https://fms.example/photo/7.jpg"
    assert shown.attributes is not None and shown.attributes[1].values is not None
    assert [v.key for v in shown.attributes[1].values] == ["traffic", "safety"]


def test_without_a_description_the_class_and_situation_describe_it(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    code = post(db, key, description="", **{"attribute[situation]": catalog.manhole_rows[0]})
    assert case_of(db, code).description == "上水井盖：缺失、移位、开裂，存在安全隐患的"


def test_an_address_alone_is_a_location(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    code = post(db, key, lat="", long="", address_string="人民路 1 号(演示)")
    case = case_of(db, code)
    assert case.address == "人民路 1 号(演示)" and case.lat is None


def test_an_idempotency_key_makes_one_case(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    params = Params.of(api_key=key, service_code="E0101", address_string="人民路(演示)")
    first = open311.submit(db.uow(), params, idempotency_key="fms-1", now=MONDAY_9)
    before = counts(db)
    again = open311.submit(db.uow(), params, idempotency_key="fms-1", now=MONDAY_9)
    assert again.service_request_id == first.service_request_id
    assert counts(db) == before


BAD_POSTS: list[tuple[dict[str, Any], int, str]] = [
    ({"service_code": "C0999"}, 400, "not a service of this jurisdiction"),
    ({"service_code": "C0199"}, 400, "not a service"),  # retired
    ({"service_code": ""}, 400, "service_code is required"),
    ({"lat": "", "long": ""}, 400, "location is required"),
    ({"lat": "", "long": "", "address_id": "A17"}, 400, "address_id is not supported"),
    ({"long": ""}, 400, "together"),
    ({"lat": "95"}, 400, "outside"),
    ({"description": "长" * 2001}, 400, "longer than 2000"),
    ({"api_key": "wrong"}, 403, "api_key is invalid"),
    ({"api_key": ""}, 403, "api_key is required"),
    ({"jurisdiction_id": "beijing"}, 404, "jurisdiction_id 'beijing' not found"),
    ({"attribute[situation]": "999999"}, 400, "no value '999999'"),
    ({"attribute[impact][]": ["traffic", "flood"]}, 400, "no value 'flood'"),
    ({"attribute[observed_at]": "yesterday"}, 400, "W3C"),
    ({"email": "not-an-email"}, 400, "email is not valid"),
    ({"phone": "call me"}, 400, "phone is not valid"),
    ({"media_url": "file:///etc/passwd"}, 400, "not an http(s) URL"),
    ({"account_id": "a" * 129}, 400, "account_id is longer"),
]


@pytest.mark.parametrize(("change", "status", "words"), BAD_POSTS)
def test_a_bad_post_is_refused_with_the_right_code_and_writes_nothing(
    world: World,
    db: Database,
    catalog: Catalog,
    key: str,
    change: dict[str, Any],
    status: int,
    words: str,
) -> None:
    before = counts(db)
    params = {
        "api_key": key,
        "service_code": "C0101",
        "lat": "31.3",
        "long": "120.6",
        "description": "x",
        **change,
    }
    got = refused(db, lambda: open311.submit(db.uow(), Params.of(_pairs(params)), now=MONDAY_9))
    assert got[0] == status and words in got[1], got
    assert counts(db) == before


def test_the_case_and_its_open311_row_commit_together(
    world: World, db: Database, catalog: Catalog, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report() commits only a savepoint inside our transaction: a failure after it, while
    writing the open311_request row, takes the case away with it."""
    before = counts(db)

    def broken(_answer: object) -> dict[str, Any]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(open311, "_answer_dict", broken)
    with pytest.raises(RuntimeError):
        post(db, key, **{"attribute[impact][]": "traffic"})
    assert counts(db) == before


def test_a_disabled_client_is_refused(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    open311.set_client_active(db.uow(), SYSTEM_ACTOR, "FixMyStreet", active=False)
    status, words = refused(db, lambda: post(db, key))
    assert status == 403 and "disabled" in words
    open311.set_client_active(db.uow(), SYSTEM_ACTOR, "FixMyStreet", active=True)
    assert post(db, key)


def test_the_jurisdiction_is_checked_everywhere_and_may_be_required(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    set_open311(db, jurisdiction_id="suzhou.example", require_jurisdiction_id=True)
    status, words = refused(db, lambda: open311.list_services(db.uow(), Params()))
    assert status == 400 and "jurisdiction_id is required" in words
    status, _ = refused(
        db, lambda: open311.list_requests(db.uow(), Params.of(jurisdiction_id="cityloop"))
    )
    assert status == 404
    assert post(db, key, jurisdiction_id="suzhou.example")


# --- queued mode -----------------------------------------------------------------------------


def test_queued_mode_answers_a_token_that_later_resolves_to_the_case(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    set_open311(db, queued=True, service_notice="请凭编号查询办理进度")
    before = counts(db)
    created = open311.submit(
        db.uow(),
        Params.of(
            api_key=key,
            service_code="C0101",
            address_string="人民路(演示)",
            email="li@example.cn",
            media_url="https://fms.example/p.jpg",
        ),
        now=MONDAY_9,
    )
    assert created.service_request_id is None and created.token
    assert created.service_notice == "请凭编号查询办理进度"
    after = counts(db)
    assert after["case_file"] == before["case_file"] and after["open311_token"] == 1
    pending = open311.resolve_token(db.uow(), created.token, Params())
    assert pending.token_status == "pending" and pending.service_request_id is None

    report = open311.process_queue(db.uow, now=MONDAY_9)
    assert (report.created, report.rejected, report.left) == (1, 0, 0)
    resolved = open311.resolve_token(db.uow(), created.token, Params())
    assert resolved.token_status == "created" and resolved.service_request_id
    case = case_of(db, resolved.service_request_id)
    assert case.reporter_email == "li@example.cn" and case.channel == "open311"
    with db.uow().read() as uow:
        row = uow.session.scalar(select(Open311Token))
        assert row is not None and row.payload == {}  # no second copy of the contact details
        extra = uow.session.scalar(select(Open311Request))
        assert extra is not None and extra.token == created.token
        assert extra.media_url == "https://fms.example/p.jpg"
    # Nothing is processed twice.
    assert open311.process_queue(db.uow, now=MONDAY_9).created == 0
    assert counts(db)["case_file"] == before["case_file"] + 1
    status, _ = refused(db, lambda: open311.resolve_token(db.uow(), "no-such-token", Params()))
    assert status == 404


def test_a_queued_submission_whose_class_was_retired_is_rejected_with_the_reason(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    set_open311(db, queued=True)
    created = open311.submit(
        db.uow(), Params.of(api_key=key, service_code="E0101", address_string="x"), now=MONDAY_9
    )
    assert created.token
    with db.uow() as uow:
        minor = uow.session.scalar(
            select(MinorClass).where(MinorClass.family == "event", MinorClass.code == "0101")
        )
        assert minor is not None
        minor.active = False
        uow.commit()
    report = open311.process_queue(db.uow, now=MONDAY_9)
    assert (report.created, report.rejected) == (0, 1)
    token = open311.resolve_token(db.uow(), created.token, Params())
    assert token.token_status == "rejected" and token.service_request_id is None
    assert token.token_notice and "0101" in token.token_notice


# --- GET requests ----------------------------------------------------------------------------


def test_get_requests_applies_every_filter_and_the_spec_defaults(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    day = dt.timedelta(days=1)
    manhole = post(db, key, at=MONDAY_9 - day)
    building = post(db, key, at=MONDAY_9 - 2 * day, service_code="E0101")
    old = post(db, key, at=MONDAY_9 - 100 * day)
    hotline = cases.report(
        db.uow(),
        world.intake,
        CaseCreate(channel=Channel.HOTLINE_12345, description="来电(演示)", address="某路"),
        now=MONDAY_9 - day,
    ).code
    inspector = cases.report(
        db.uow(),
        world.inspector,
        CaseCreate(channel=Channel.INSPECTOR, description="巡查发现(演示)", address="某路"),
        now=MONDAY_9 - 3 * day,
    ).code

    def ids(**params: str) -> list[str]:
        page = open311.list_requests(db.uow(), Params.of(**params), now=MONDAY_9)
        return [r.service_request_id for r in page.items]

    # The last 90 days, newest first; hotline cases are not published by default.
    assert ids() == [manhole, building, inspector]
    assert ids(service_code="C0101") == [manhole]
    assert ids(service_code="C0101,E0101") == [manhole, building]
    assert ids(service_code="unclassified") == [inspector]
    assert ids(service_code="C0102") == []
    assert ids(status="closed") == []
    act(db, world.supervisor, building, CaseAction.NOT_ACCEPT, MONDAY_9, reason="重复(演示)")
    assert ids(status="closed") == [building]
    assert ids(status="open") == [manhole, inspector]
    start = (MONDAY_9 - 101 * day).isoformat()
    end = (MONDAY_9 - 99 * day).isoformat()
    assert ids(start_date=start, end_date=end) == [old]
    assert ids(start_date=start) == [old]  # 90 days from the start
    # service_request_id overrides every other filter; unlisted cases stay invisible.
    assert ids(service_request_id=f"{old},{hotline},{manhole}", status="closed") == [manhole, old]
    page = open311.list_requests(db.uow(), Params.of(page="2", page_size="1"), now=MONDAY_9)
    assert [r.service_request_id for r in page.items] == [building] and page.total == 3
    set_open311(db, listed_channels=[c.value for c in Channel])
    assert hotline in ids()


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"start_date": "2026-01-01"}, "timezone"),
        ({"start_date": "yesterday"}, "W3C"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "90 days"),
        ({"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "before"),
        ({"status": "fixed"}, "open or closed"),
        ({"service_code": "sidewalk"}, "C0101"),
        ({"page_size": "1001"}, "between 1 and 1000"),
        ({"page": "0"}, "between 1"),
        ({"extensions": "sure"}, "true or false"),
    ],
)
def test_bad_filters_are_400(db: Database, params: dict[str, str], words: str) -> None:
    status, text = refused(db, lambda: open311.list_requests(db.uow(), Params.of(**params)))
    assert status == 400 and words in text, text


def test_a_request_shows_the_loop_truthfully_from_report_to_closing(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    code = post(db, key, **{"attribute[situation]": catalog.manhole_rows[1]})
    fresh = open311.get_request(db.uow(), code, Params())
    assert (fresh.status, fresh.status_notes) == ("open", "待受理 (reported)")
    assert fresh.agency_responsible is None and fresh.expected_datetime is None
    assert iso(fresh.requested_datetime) == MONDAY_9

    m = dt.timedelta(minutes=10)
    act(db, world.intake, code, CaseAction.SEND_VERIFY, MONDAY_9 + m, inspector="inspector")
    act(db, world.inspector, code, CaseAction.VERIFY_FOUND, MONDAY_9 + 2 * m)
    act(db, world.supervisor, code, CaseAction.FILE, MONDAY_9 + 3 * m)
    act(
        db,
        world.dispatcher,
        code,
        CaseAction.DISPATCH,
        MONDAY_9 + 4 * m,
        department_code="drainage",
    )
    dispatched = open311.get_request(db.uow(), code, Params.of(extensions="true"))
    case = case_of(db, code)
    assert dispatched.status == "open" and dispatched.status_notes == "处置中 (dispatched)"
    assert dispatched.agency_responsible == "排水服务中心(演示)"
    assert iso(dispatched.expected_datetime) == case.disposal_deadline
    assert iso(dispatched.updated_datetime) == MONDAY_9 + 4 * m
    assert dispatched.extended_attributes is not None
    assert dispatched.extended_attributes["state"] == "dispatched"

    at = MONDAY_9 + dt.timedelta(hours=3)
    act(
        db,
        world.operator,
        code,
        CaseAction.DISPOSE,
        at,
        reason="已更换井盖(演示)",
        attachment_ids=[photo(db, world.operator)],
    )
    act(db, world.intake, code, CaseAction.SEND_CHECK, at, inspector="inspector")
    act(db, world.inspector, code, CaseAction.CHECK_PASS, at)
    act(db, world.supervisor, code, CaseAction.CLOSE, at + m)
    act(db, world.intake, code, CaseAction.CALLBACK, at + 2 * m, satisfaction="satisfied")
    closed = open311.get_request(db.uow(), code, Params.of(extensions="true"))
    assert closed.status == "closed" and closed.status_notes == "已结案 (closed)"
    # Spec: for a closed request, updated_datetime is when it was closed (not the callback).
    assert iso(closed.updated_datetime) == at + m
    assert closed.notes is not None
    assert [n.summary for n in closed.notes] == [
        "上报",
        "派发核实",
        "核实属实",
        "立案",
        "派遣",
        "处置反馈",
        "派发核查",
        "核查通过",
        "结案",
        "回访",
    ]
    assert closed.notes[4].description == "处置中 (dispatched)：排水服务中心(演示)"
    assert closed.notes[-2].status == "closed"
    text = json.dumps(closed.model_dump(mode="json"), ensure_ascii=False)
    for staff in ("inspector", "supervisor", "已更换井盖", "shift_supervisor", "operator"):
        assert staff not in text, staff


def test_unknown_and_unlisted_requests_are_404(
    world: World, db: Database, catalog: Catalog
) -> None:
    hotline = cases.report(
        db.uow(),
        world.intake,
        CaseCreate(channel=Channel.HOTLINE_12345, description="来电(演示)", address="某路"),
        now=MONDAY_9,
    ).code
    for request_id in (hotline, "20261123999999"):
        status, words = refused(db, lambda r=request_id: open311.get_request(db.uow(), r, Params()))
        assert status == 404 and "not found" in words


# --- servicerequestupdates -------------------------------------------------------------------


def test_posted_updates_are_notes_idempotent_per_client_and_never_move_the_case(
    world: World, db: Database, catalog: Catalog, key: str
) -> None:
    code = post(db, key)
    other = post(db, key)
    at = MONDAY_9 + dt.timedelta(hours=1)
    params = {
        "api_key": key,
        "service_request_id": code,
        "update_id": "fms-update-1",
        "status": "CLOSED",
        "updated_datetime": "2026-11-23T10:00:00+08:00",
        "description": "已经修好了(演示)",
        "first_name": "四",
        "last_name": "李",
        "email": "li@example.cn",
    }
    first = open311.post_update(db.uow(), Params.of(**params), now=at)
    before = counts(db)
    again = open311.post_update(db.uow(), Params.of(**params), now=at)
    assert again.update_id == first.update_id and counts(db) == before
    assert case_of(db, code).state == "reported"  # a citizen's "fixed" does not close a case
    status, words = refused(
        db,
        lambda: open311.post_update(
            db.uow(), Params.of(**{**params, "service_request_id": other}), now=at
        ),
    )
    assert status == 400 and "already used" in words
    with db.uow().read() as uow:
        row = uow.session.scalar(select(Open311Update))
        assert row is not None and row.author_name == "李四" and row.status == "closed"

    act(db, world.intake, code, CaseAction.SEND_VERIFY, at + dt.timedelta(minutes=5))
    feed = open311.list_updates(
        db.uow(),
        Params.of(start_date="2026-11-23T00:00:00+08:00", end_date="2026-11-24T00:00:00+08:00"),
        now=at,
    )
    assert [(u.update_id[0], u.service_request_id) for u in feed.items] == [
        ("n", code),
        ("e", code),
    ]
    note, step = feed.items
    assert note.update_id == first.update_id and note.description == "已经修好了(演示)"
    assert note.status == "open"  # the request's status, not what the client claimed
    assert step.description == "派发核实：待核实 (verifying)" and step.status == "open"
    assert "李" not in json.dumps([u.model_dump() for u in feed.items], ensure_ascii=False)
    assert feed.total == 2
    earlier = open311.list_updates(
        db.uow(), Params.of(end_date="2026-11-23T09:30:00+08:00"), now=at
    )
    assert earlier.items == []  # report events are not updates


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"api_key": "wrong"}, 403, "api_key"),
        ({"service_request_id": "nope"}, 404, "not found"),
        ({"service_request_id": ""}, 400, "service_request_id is required"),
        ({"update_id": ""}, 400, "update_id is required"),
        ({"status": "done"}, 400, "is not one of"),
        ({"updated_datetime": ""}, 400, "updated_datetime is required"),
        ({"updated_datetime": "today"}, 400, "W3C"),
        ({"description": ""}, 400, "description or a media_url"),
        ({"description": "长" * 2001}, 400, "longer than 2000"),
        ({"jurisdiction_id": "x"}, 404, "jurisdiction_id"),
    ],
)
def test_bad_updates_are_refused_and_write_nothing(
    world: World,
    db: Database,
    catalog: Catalog,
    key: str,
    change: dict[str, str],
    status: int,
    words: str,
) -> None:
    code = post(db, key)
    before = counts(db)
    params = {
        "api_key": key,
        "service_request_id": code,
        "update_id": "u1",
        "status": "OPEN",
        "updated_datetime": "2026-11-23T10:00:00Z",
        "description": "x",
        **change,
    }
    got = refused(db, lambda: open311.post_update(db.uow(), Params.of(**params), now=MONDAY_9))
    assert got[0] == status and words in got[1], got
    assert counts(db) == before


# --- clients and settings --------------------------------------------------------------------


def test_client_keys_are_stored_hashed_and_names_are_unique(db: Database) -> None:
    created = open311.add_client(db.uow(), SYSTEM_ACTOR, "City app")
    assert len(created.api_key) >= 40 and created.client.key_hint == created.api_key[:6]
    with db.uow().read() as uow:
        row = uow.session.scalar(select(Open311Client))
        assert row is not None and created.api_key not in (row.key_hash, row.key_hint)
    with pytest.raises(Conflict):
        open311.add_client(db.uow(), SYSTEM_ACTOR, "City app")
    with pytest.raises(InvalidInput):
        open311.add_client(db.uow(), SYSTEM_ACTOR, " ")
    assert [c.name for c in open311.list_clients(db.uow())] == ["City app"]


def test_settings_are_validated(db: Database) -> None:
    for bad in (
        {"no_such_setting": 1},
        {"listed_channels": ["public_web"]},
        {"jurisdiction_id": "has space"},
        {"base_url": "ftp://x"},
    ):
        with pytest.raises(InvalidInput):
            open311.update_settings(db.uow(), SYSTEM_ACTOR, bad)
    updated = open311.update_settings(db.uow(), SYSTEM_ACTOR, {"queued": True})
    assert updated.queued and updated.jurisdiction_id == "cityloop"
