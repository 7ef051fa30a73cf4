"""A small October 2026 world driven through the case service with fixed times.

Every expected number in the evaluation tests is counted by hand from this table (Shanghai time,
Monday 2026-10-19, a plain working week; disposal limit 2 working days, so a dispatch at 09:40
Monday is due Wednesday 09:40):

- C1 public: verify, file, dispatch drainage, dispose on time, check pass, close, 满意.
  Cell X, sub_a, com_a1.
- C2 public: as C1 but disposed Friday (late), 基本满意. Cell X, sub_a, com_a1.
- C3 public: drainage, dispose, check FAIL (rework), dispose again, pass, close, 不满意.
  Cell X, sub_a, com_a1.
- C4 public: dispatched to sanitation, never disposed (overdue Wednesday). sub_b.
- C5 public: dispatched to drainage, return approved, dispatched to sanitation, disposed on
  time, not closed. sub_b.
- C6 12345 hotline: drainage, disposed on time, check pass, close, 满意. sub_b.
- C7 inspector: filed, then voided (作废).
- C8 inspector: declined (不予立案).
- C9 inspector: self-handled, closed. Cell X.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tests.world import PASSWORD, World

from cityloop.cases import service as cases
from cityloop.cases.domain import CaseAction, Channel, Satisfaction
from cityloop.cases.models import Case
from cityloop.cases.schemas import CaseActionRequest, CaseCreate, Location, Reporter
from cityloop.cases.settings import SETTINGS_KEY as CASES_KEY
from cityloop.cases.settings import CaseSettings
from cityloop.catalog.models import FilingStandard, MajorClass, MinorClass
from cityloop.cityconfig.service import put
from cityloop.db.engine import Database
from cityloop.grid.coords import CoordSystem
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, Actor, DepartmentKind, Role
from cityloop.org.schemas import DepartmentCreate, UserCreate

SH = ZoneInfo("Asia/Shanghai")
MON = dt.datetime(2026, 10, 19, 9, 0, tzinfo=SH)
CELL_X = "110108001001001"


@dataclass(frozen=True)
class October:
    cases: dict[str, int]
    parks_id: int  # a handling department with nothing to do
    sub_a: int
    sub_b: int
    com_a1: int
    leader2: Actor  # an auditor who never touched a case


def _t(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 10, day, hour, minute, tzinfo=SH)


def _act(
    db: Database, actor: Actor, case_id: int, action: CaseAction, at: dt.datetime, **kw: object
) -> None:
    version = cases.get_case(db.uow(), actor, case_id).version
    req = CaseActionRequest(action=action, version=version, **kw)  # type: ignore[arg-type]
    cases.act(db.uow(), actor, case_id, req, now=at)


def _standard(db: Database) -> int:
    with db.uow() as uow:
        major = MajorClass(family="component", code="01", name="公用设施")
        uow.session.add(major)
        uow.session.flush()
        minor = MinorClass(family="component", major_id=major.id, code="0101", name="上水井盖")
        uow.session.add(minor)
        uow.session.flush()
        row = FilingStandard(
            minor_id=minor.id,
            position=1,
            filing_criterion="破损",
            closing_criterion="修复",
            limit_text="2工作日",
            limit_amount=2,
            limit_unit="day",
            limit_clock="working",
        )
        uow.session.add(row)
        uow.session.flush()
        uow.commit()
        return row.id


def build_october(db: Database, w: World) -> October:
    put(db.uow(), w.admin, CASES_KEY, CaseSettings, {"feedback_requires_evidence": False})
    std = _standard(db)
    made = {}
    for code, name, kind, parent in [
        ("parks", "园林绿化中心(演示)", DepartmentKind.HANDLING, None),
        ("sub_a", "甲街道(演示)", DepartmentKind.SUBDISTRICT, None),
        ("sub_b", "乙街道(演示)", DepartmentKind.SUBDISTRICT, None),
        ("com_a1", "甲一社区(演示)", DepartmentKind.COMMUNITY, "sub_a"),
    ]:
        made[code] = org.create_department(
            db.uow(),
            SYSTEM_ACTOR,
            DepartmentCreate(code=code, name=name, kind=kind, parent_code=parent),
        ).id
    user = org.add_user(
        db.uow(),
        SYSTEM_ACTOR,
        UserCreate(
            username="leader2",
            display_name="Leader2",
            password=PASSWORD,
            role=Role.LEADER,
            department_code="centre",
        ),
    )
    leader2 = org.load_actor(db.uow(), user_id=user.id)

    def public(channel: Channel = Channel.PUBLIC_WEB) -> int:
        data = CaseCreate(
            channel=channel,
            description="井盖破损(演示)",
            location=Location(lon=116.3, lat=39.96, system=CoordSystem.WGS84),
            reporter=Reporter(name="张三(演示)", phone="13800000000"),
        )
        actor = w.intake if channel is Channel.HOTLINE_12345 else None
        return cases.report(db.uow(), actor, data, now=MON).id

    def to_dispatched(case_id: int, dept: str) -> None:
        _act(db, w.intake, case_id, CaseAction.SEND_VERIFY, _t(19, 9, 5), inspector="inspector")
        _act(db, w.inspector, case_id, CaseAction.VERIFY_FOUND, _t(19, 9, 10))
        _act(db, w.supervisor, case_id, CaseAction.FILE, _t(19, 9, 20), standard_id=std)
        _act(db, w.dispatcher, case_id, CaseAction.DISPATCH, _t(19, 9, 40), department_code=dept)

    def dispose_to_close(case_id: int, disposed: dt.datetime, rating: Satisfaction) -> None:
        _act(db, w.operator, case_id, CaseAction.DISPOSE, disposed, reason="已修复")
        after = disposed + dt.timedelta(minutes=5)
        _act(db, w.intake, case_id, CaseAction.SEND_CHECK, after, inspector="inspector")
        _act(db, w.inspector, case_id, CaseAction.CHECK_PASS, after + dt.timedelta(minutes=5))
        _act(db, w.supervisor, case_id, CaseAction.CLOSE, after + dt.timedelta(minutes=10))
        _act(
            db,
            w.intake,
            case_id,
            CaseAction.CALLBACK,
            after + dt.timedelta(minutes=30),
            satisfaction=rating,
        )

    ids: dict[str, int] = {}
    ids["C1"] = public()
    to_dispatched(ids["C1"], "drainage")
    dispose_to_close(ids["C1"], _t(19, 11), Satisfaction.SATISFIED)

    ids["C2"] = public()
    to_dispatched(ids["C2"], "drainage")
    dispose_to_close(ids["C2"], _t(23, 10), Satisfaction.BASICALLY_SATISFIED)

    ids["C3"] = public()
    to_dispatched(ids["C3"], "drainage")
    _act(db, w.operator, ids["C3"], CaseAction.DISPOSE, _t(19, 11), reason="已修复")
    _act(db, w.intake, ids["C3"], CaseAction.SEND_CHECK, _t(19, 11, 5), inspector="inspector")
    _act(db, w.inspector, ids["C3"], CaseAction.CHECK_FAIL, _t(19, 11, 10), reason="未修好")
    dispose_to_close(ids["C3"], _t(20, 10), Satisfaction.DISSATISFIED)

    ids["C4"] = public()
    to_dispatched(ids["C4"], "sanitation")

    ids["C5"] = public()
    to_dispatched(ids["C5"], "drainage")
    _act(db, w.operator, ids["C5"], CaseAction.REQUEST_RETURN, _t(19, 10), reason="非本单位")
    _act(db, w.dispatcher, ids["C5"], CaseAction.APPROVE_RETURN, _t(19, 10, 5))
    _act(
        db,
        w.dispatcher,
        ids["C5"],
        CaseAction.DISPATCH,
        _t(19, 10, 10),
        department_code="sanitation",
    )
    _act(db, w.outsider, ids["C5"], CaseAction.DISPOSE, _t(19, 14), reason="已清理")

    ids["C6"] = public(Channel.HOTLINE_12345)
    to_dispatched(ids["C6"], "drainage")
    dispose_to_close(ids["C6"], _t(19, 15), Satisfaction.SATISFIED)

    def inspector_report() -> int:
        data = CaseCreate(
            channel=Channel.INSPECTOR, description="路灯不亮(演示)", address="某路(演示)"
        )
        return cases.report(db.uow(), w.inspector, data, now=MON).id

    ids["C7"] = inspector_report()
    _act(db, w.supervisor, ids["C7"], CaseAction.FILE, _t(19, 9, 20), standard_id=std)
    _act(db, w.dispatcher, ids["C7"], CaseAction.REQUEST_VOID, _t(19, 9, 30), reason="重复")
    _act(db, w.supervisor, ids["C7"], CaseAction.APPROVE_VOID, _t(19, 9, 35), reason="重复上报")

    ids["C8"] = inspector_report()
    _act(db, w.supervisor, ids["C8"], CaseAction.DECLINE, _t(19, 9, 20), reason="不符合立案条件")

    ids["C9"] = inspector_report()
    _act(db, w.inspector, ids["C9"], CaseAction.SELF_HANDLE, _t(19, 9, 15), reason="已当场处理")
    _act(db, w.supervisor, ids["C9"], CaseAction.CLOSE, _t(19, 9, 30))

    # Where the cases are (the grid capability would set these at intake).
    with db.uow() as uow:
        for name, cell, sub, com in [
            ("C1", CELL_X, "sub_a", "com_a1"),
            ("C2", CELL_X, "sub_a", "com_a1"),
            ("C3", CELL_X, "sub_a", "com_a1"),
            ("C4", None, "sub_b", None),
            ("C5", None, "sub_b", None),
            ("C6", None, "sub_b", None),
            ("C9", CELL_X, None, None),
        ]:
            case = uow.session.get(Case, ids[name])
            assert case is not None
            case.cell_code = cell
            case.subdistrict_id = made[sub] if sub else None
            case.community_id = made[com] if com else None
        uow.commit()
    return October(
        cases=ids,
        parks_id=made["parks"],
        sub_a=made["sub_a"],
        sub_b=made["sub_b"],
        com_a1=made["com_a1"],
        leader2=leader2,
    )
