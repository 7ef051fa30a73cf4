"""What the exchange tests share: a catalog, the outbox hook, a case walked through the loop,
import files and their mapping.

Not a test module (no ``test_`` prefix); imported as
``tests.integration.exchange.exchange_support``.

The outbox hook: ``exchange.outbox.record(session, case, event)`` belongs in
``cases.service.act`` right after the event row is written. Until the lead wires that line,
``install_outbox_hook`` puts the same call in the same place (it wraps ``cases.service._event``,
which ``act`` calls after the flush, inside its transaction), so the tests exercise exactly the
behaviour of the wired hook: same session, same transaction, same moment.
"""

from __future__ import annotations

import csv
import datetime as dt
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.world import World

from cityloop.cases import service as cases
from cityloop.cases.domain import CaseAction, Channel
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.schemas import CaseActionRequest, CaseCreate, Location
from cityloop.cases.settings import SETTINGS_KEY as CASES_KEY
from cityloop.cases.settings import CaseSettings
from cityloop.catalog import service as catalog
from cityloop.catalog.models import FilingStandard, MinorClass
from cityloop.cityconfig.service import put as put_setting
from cityloop.db.engine import Database
from cityloop.exchange import outbox
from cityloop.exchange.models import ImportedCase, ImportRun, OutboxEntry
from cityloop.grid.coords import CoordSystem
from cityloop.org.domain import SYSTEM_ACTOR, Actor

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SH)


def hook_is_wired() -> bool:
    return "outbox.record(" in inspect.getsource(cases.act)


def install_outbox_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-line hook of ``cases.service.act``, until it is wired there."""
    if hook_is_wired():
        return
    original = cases._event

    def _event(session: Session, case: Case, actor: Actor | None, **kw: Any) -> CaseEvent:
        event = original(session, case, actor, **kw)
        outbox.record(session, case, event)
        return event

    monkeypatch.setattr(cases, "_event", _event)


def seed(db: Database) -> int:
    """The built-in catalog, disposal feedback without photos; the filing-standard row of
    component 0101 (上水井盖, 2 urgent working hours)."""
    catalog.load_defaults(db.uow(), SYSTEM_ACTOR)
    put_setting(
        db.uow(), SYSTEM_ACTOR, CASES_KEY, CaseSettings, {"feedback_requires_evidence": False}
    )
    with db.uow() as uow:
        row = uow.session.scalar(
            select(FilingStandard.id)
            .join(MinorClass, MinorClass.id == FilingStandard.minor_id)
            .where(MinorClass.family == "component", MinorClass.code == "0101")
            .order_by(FilingStandard.position)
            .limit(1)
        )
    assert row is not None
    return int(row)


def act(
    db: Database, actor: Actor, case_id: int, action: CaseAction, at: dt.datetime, **fields: Any
) -> None:
    version = cases.get_case(db.uow(), actor, case_id).version
    req = CaseActionRequest(action=action, version=version, **fields)
    cases.act(db.uow(), actor, case_id, req, now=at)


def report(db: Database, w: World, at: dt.datetime = MONDAY_9, **extra: Any) -> int:
    data = CaseCreate(
        channel=Channel.INSPECTOR,
        description="井盖破损(演示)",
        location=Location(lon=116.3, lat=39.96, system=CoordSystem.WGS84),
        address="海淀区某路 1 号(演示)",
        **extra,
    )
    return cases.report(db.uow(), w.inspector, data, now=at).id


def walk(
    db: Database,
    w: World,
    standard_id: int,
    *,
    until: str = "close",
    start: dt.datetime = MONDAY_9,
    department: str = "drainage",
) -> int:
    """An inspector's report walked to ``until`` (file, dispatch or close)."""
    case_id = report(db, w, start)
    m = dt.timedelta(minutes=10)
    act(db, w.supervisor, case_id, CaseAction.FILE, start + m, standard_id=standard_id)
    if until == "file":
        return case_id
    act(db, w.dispatcher, case_id, CaseAction.DISPATCH, start + 2 * m, department_code=department)
    if until == "dispatch":
        return case_id
    operator = w.operator if department == "drainage" else w.outsider
    act(db, operator, case_id, CaseAction.DISPOSE, start + 3 * m, reason="已修复")
    act(db, w.intake, case_id, CaseAction.SEND_CHECK, start + 4 * m, inspector="inspector")
    act(db, w.inspector, case_id, CaseAction.CHECK_PASS, start + 5 * m)
    act(db, w.supervisor, case_id, CaseAction.CLOSE, start + 6 * m)
    return case_id


def count(db: Database, model: type[Any]) -> int:
    with db.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def counts(db: Database) -> dict[str, int]:
    """Rows of every table an import or the outbox writes: proof that nothing is half-written."""
    return {
        m.__tablename__: count(db, m)
        for m in (Case, CaseEvent, ImportedCase, ImportRun, OutboxEntry)
    }


# --- import files ---------------------------------------------------------------------------

HEADER = [
    "案卷号",
    "上报时间",
    "立案时间",
    "派遣时间",
    "处置时间",
    "结案时间",
    "来源",
    "状态",
    "类别",
    "小类",
    "部门",
    "描述",
    "地址",
    "经度",
    "纬度",
    "举报人电话",
]

MAPPING = """
source = "szcg"
timezone = "Asia/Shanghai"
date_formats = ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"]
coord_system = "gcj02"

[columns]
"案卷号" = "code"
"上报时间" = "reported_at"
"立案时间" = "filed_at"
"派遣时间" = "dispatched_at"
"处置时间" = "disposed_at"
"结案时间" = "closed_at"
"来源" = "channel"
"状态" = "state"
"类别" = "family"
"小类" = "minor_code"
"部门" = "department"
"描述" = "description"
"地址" = "address"
"经度" = "lon"
"纬度" = "lat"

[values.channel]
"监督员上报" = "inspector"
"12345热线" = "hotline_12345"

[values.state]
"已结案" = "closed"
"处置中" = "dispatched"
"不予立案" = "declined"

[values.department]
"区排水所" = "drainage"
"区环卫中心" = "sanitation"
"""


def row(code: str, **over: str) -> list[str]:
    """A closed 上水井盖 case of 2019 dispatched to drainage, with overrides by header."""
    base = {
        "案卷号": code,
        "上报时间": "2019-03-04 09:00:00",
        "立案时间": "2019-03-04 09:20:00",
        "派遣时间": "2019/03/04 09:30",
        "处置时间": "2019-03-04 15:00:00",
        "结案时间": "2019-03-05 10:00:00",
        "来源": "12345热线",
        "状态": "已结案",
        "类别": "部件",
        "小类": "0101",
        "部门": "区排水所",
        "描述": "井盖缺失(演示)",
        "地址": "海淀区某路 1 号(演示)",
        "经度": "116.306",
        "纬度": "39.961",
        "举报人电话": "13800000000",
    }
    base.update(over)
    return [base[h] for h in HEADER]


def write_csv(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_mapping(path: Path, text: str = MAPPING) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def mount(app: FastAPI) -> FastAPI:
    """The app with the exchange routes (until the lead adds them to ``web.app``)."""
    if not any(getattr(r, "path", "").startswith("/api/v1/exchange") for r in app.routes):
        from cityloop.exchange.views import router

        app.include_router(router)
    return app
