"""The ledgers service on a real database (SQLite and PostgreSQL), with the named world.

Cast (tests/world.py): ``operator`` works for drainage and ``outsider`` for sanitation: the
outsider must never see or touch a drainage measure. ``leader`` reviews, ``admin`` approves
(separation of duties), ``inspector`` records hazard inspections and verifies hazards.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import Workbook
from PIL import Image
from sqlalchemy import func, select
from tests.world import World

from cityloop.audit.models import AuditEntry
from cityloop.db.engine import Database
from cityloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from cityloop.ledgers import service
from cityloop.ledgers.domain import ItemStatus, LedgerKind, SignoffAction, SignoffState
from cityloop.ledgers.evidence import EvidenceStore
from cityloop.ledgers.models import LedgerGroup, LedgerItem, LedgerItemEvent
from cityloop.ledgers.schemas import (
    GroupCreate,
    ItemCreate,
    ItemUpdate,
    LedgerCreate,
    LedgerUpdate,
    TextBlockSchema,
)
from cityloop.ledgers.workbook import WorkbookRejected

A = SignoffAction
BEIJING = dt.timezone(dt.timedelta(hours=8))


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "evidence")


class Ledger:
    """A rectification ledger: one aspect, one problem, a drainage and a sanitation measure."""

    def __init__(self, db: Database, world: World) -> None:
        self.ledger = service.create_ledger(
            db.uow(),
            world.leader,
            LedgerCreate(
                kind=LedgerKind.RECTIFICATION,
                title="巡察整改台账",
                subject="区城市管理委党组",
                inspection_group="区委第四巡察组",
                onsite_start=dt.date(2022, 7, 19),
                onsite_end=dt.date(2022, 9, 23),
                feedback_on=dt.date(2023, 2, 3),
                organisation=[TextBlockSchema(heading="统一思想", text="召开党组会。")],
            ),
        )
        self.aspect = service.add_group(
            db.uow(), world.leader, self.ledger.id, GroupCreate(title="一、强化治理")
        )
        self.problem = service.add_group(
            db.uow(),
            world.leader,
            self.ledger.id,
            GroupCreate(title="（一）排水设施管护不到位", parent_id=self.aspect.id),
        )
        self.drainage = service.add_item(
            db.uow(),
            world.leader,
            self.ledger.id,
            ItemCreate(
                group_id=self.problem.id,
                content="开展排水设施专项检查",
                unit_id=world.drainage_id,
                deadline="30个工作日",
                stage="全面推进",
            ),
        )
        self.sanitation = service.add_item(
            db.uow(),
            world.leader,
            self.ledger.id,
            ItemCreate(
                group_id=self.problem.id,
                content="清理积存垃圾",
                unit_id=world.sanitation_id,
                deadline="2023年6月30日",
            ),
        )


@pytest.fixture
def ledger(db: Database, world: World) -> Ledger:
    return Ledger(db, world)


def sign_off(db: Database, world: World, store: EvidenceStore, item_id: int) -> None:
    """Progress with a photo, then submit (drainage operator), review, approve."""
    operator = world.operator
    service.add_progress(
        db.uow(), operator, item_id, text="已完成", files=[("现场.png", png())], store=store
    )
    service.act(db.uow(), operator, item_id, A.SUBMIT)
    service.act(db.uow(), world.leader, item_id, A.REVIEW)
    service.act(db.uow(), world.admin, item_id, A.APPROVE)


def audit_actions(db: Database, entity: str, entity_id: int) -> list[str]:
    with db.uow() as uow:
        rows = uow.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.id)
        )
        return list(rows)


# --- scope ---------------------------------------------------------------------------------


def test_an_operator_of_another_unit_cannot_see_or_edit_a_measure(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    item = ledger.drainage.id
    outsider = world.outsider
    with pytest.raises(NotFound):
        service.get_item(db.uow(), outsider, item)
    with pytest.raises(NotFound):
        service.update_item(db.uow(), outsider, item, ItemUpdate(completion="改了"))
    with pytest.raises(NotFound):
        service.add_progress(db.uow(), outsider, item, text="x", store=store)
    with pytest.raises(NotFound):
        service.act(db.uow(), outsider, item, A.SUBMIT)
    # Its own measure in the same ledger is fine, and it sees only that one.
    detail = service.get_ledger(db.uow(), outsider, ledger.ledger.id)
    visible = [i.id for g in detail.groups for c in g.children for i in c.items]
    assert visible == [ledger.sanitation.id]
    assert service.ledger_stats(db.uow(), outsider, ledger.ledger.id).totals.items == 1


def test_an_operator_edits_only_progress_fields_of_its_measure(
    db: Database, world: World, ledger: Ledger
) -> None:
    item = ledger.drainage.id
    updated = service.update_item(
        db.uow(),
        world.operator,
        item,
        ItemUpdate(completion="已检查32处", status=ItemStatus.IN_PROGRESS),
    )
    assert (updated.completion, updated.status) == ("已检查32处", ItemStatus.IN_PROGRESS)
    with pytest.raises(PermissionDenied, match="deadline"):
        service.update_item(db.uow(), world.operator, item, ItemUpdate(deadline="长期坚持"))
    with pytest.raises(PermissionDenied):
        service.act(db.uow(), world.operator, item, A.REVIEW)


def test_a_ledger_without_the_operators_units_is_invisible_to_it(
    db: Database, world: World
) -> None:
    other = service.create_ledger(
        db.uow(), world.leader, LedgerCreate(kind=LedgerKind.CHECKLIST, title="合同审查清单")
    )
    assert [s.id for s in service.list_ledgers(db.uow(), world.outsider)] == []
    with pytest.raises(NotFound):
        service.get_ledger(db.uow(), world.outsider, other.id)
    assert [s.id for s in service.list_ledgers(db.uow(), world.leader)] == [other.id]


def test_only_managers_change_a_ledgers_contents(
    db: Database, world: World, ledger: Ledger
) -> None:
    for who in (world.operator, world.dispatcher, world.inspector):
        with pytest.raises(PermissionDenied):
            service.add_group(db.uow(), who, ledger.ledger.id, GroupCreate(title="新方面"))
    with pytest.raises(PermissionDenied):
        service.export_xlsx(db.uow(), world.operator, ledger.ledger.id)
    with pytest.raises(PermissionDenied):
        service.render_bulletin(db.uow(), world.operator, ledger.ledger.id, "md")


# --- sign-off, audit, events ---------------------------------------------------------------


def test_every_step_writes_an_audit_row_and_every_transition_an_event(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    item = ledger.drainage.id
    service.add_progress(
        db.uow(), world.operator, item, text="第一次", files=[("a.png", png())], store=store
    )
    service.act(db.uow(), world.operator, item, A.SUBMIT)
    service.act(db.uow(), world.leader, item, A.REJECT, reason="照片不清楚")
    service.add_progress(
        db.uow(),
        world.operator,
        item,
        text="补充",
        files=[("b.png", png()[:-1] + b"\x00")],
        store=store,
    )
    service.act(db.uow(), world.operator, item, A.SUBMIT)
    service.act(db.uow(), world.leader, item, A.REVIEW)
    service.act(db.uow(), world.admin, item, A.APPROVE)
    service.act(db.uow(), world.leader, item, A.CONFIRM)
    service.act(db.uow(), world.leader, item, A.RELAPSE, reason="回头看发现反弹")
    assert audit_actions(db, "ledger_item", item) == [
        "ledger.item.create",
        "ledger.item.progress",
        "ledger.item.submit",
        "ledger.item.reject",
        "ledger.item.progress",
        "ledger.item.submit",
        "ledger.item.review",
        "ledger.item.approve",
        "ledger.item.confirm",
        "ledger.item.relapse",
    ]
    assert audit_actions(db, "ledger", ledger.ledger.id) == ["ledger.create"]
    detail = service.get_item(db.uow(), world.leader, item)
    assert [(e.action, e.to_state) for e in detail.events] == [
        ("create", "open"),
        ("submit", "submitted"),
        ("reject", "returned"),
        ("submit", "submitted"),
        ("review", "reviewed"),
        ("approve", "signed_off"),
        ("confirm", "signed_off"),
        ("relapse", "relapsed"),
    ]
    assert detail.events[2].reason == "照片不清楚"
    assert detail.item.last_reason == "回头看发现反弹"
    assert [len(p.evidence) for p in detail.progress] == [1, 1]


def test_submission_needs_evidence_and_a_resubmission_needs_new_evidence(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    item = ledger.drainage.id
    with pytest.raises(RuleViolation, match="evidence"):
        service.act(db.uow(), world.operator, item, A.SUBMIT)
    service.add_progress(db.uow(), world.operator, item, files=[("a.png", png())], store=store)
    service.act(db.uow(), world.operator, item, A.SUBMIT)
    service.act(db.uow(), world.leader, item, A.REJECT, reason="证据不足")
    with pytest.raises(RuleViolation, match="evidence"):
        service.act(db.uow(), world.operator, item, A.SUBMIT)
    assert service.get_item(db.uow(), world.operator, item).allowed_actions == []


def test_the_reviewer_cannot_approve_and_a_stale_version_is_a_conflict(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    item = ledger.drainage.id
    service.add_progress(db.uow(), world.operator, item, files=[("a.png", png())], store=store)
    submitted = service.act(db.uow(), world.operator, item, A.SUBMIT)
    reviewed = service.act(
        db.uow(), world.leader, item, A.REVIEW, expected_version=submitted.version
    )
    with pytest.raises(PermissionDenied, match="approver"):
        service.act(db.uow(), world.leader, item, A.APPROVE)
    with pytest.raises(Conflict):
        service.act(db.uow(), world.admin, item, A.APPROVE, expected_version=submitted.version)
    approved = service.act(
        db.uow(), world.admin, item, A.APPROVE, expected_version=reviewed.version
    )
    assert approved.signoff_state is SignoffState.SIGNED_OFF


def test_a_signed_off_measure_is_frozen_until_a_look_back_reopens_it(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    item = ledger.drainage.id
    sign_off(db, world, store, item)
    with pytest.raises(RuleViolation):
        service.update_item(db.uow(), world.leader, item, ItemUpdate(content="改写"))
    with pytest.raises(RuleViolation):
        service.add_progress(db.uow(), world.operator, item, text="再报", store=store)
    with pytest.raises(RuleViolation):
        service.update_item(db.uow(), world.operator, item, ItemUpdate(completion="改口径"))
    polished = service.update_item(db.uow(), world.leader, item, ItemUpdate(completion="已完成。"))
    assert polished.completion == "已完成。"
    service.act(db.uow(), world.leader, item, A.RELAPSE, reason="反弹")
    assert (
        service.update_item(db.uow(), world.leader, item, ItemUpdate(content="改写")).content
        == "改写"
    )


def test_a_failed_action_writes_nothing(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    before = audit_actions(db, "ledger_item", ledger.drainage.id)
    with pytest.raises(InvalidInput):
        service.add_progress(
            db.uow(),
            world.operator,
            ledger.drainage.id,
            text="x",
            files=[("x.exe", b"MZ")],
            store=store,
        )
    assert audit_actions(db, "ledger_item", ledger.drainage.id) == before
    assert not (store.root.exists() and any(store.root.rglob("*.*")))


# --- statistics ----------------------------------------------------------------------------


def test_relapse_statistics_after_a_look_back(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    item = ledger.drainage.id
    sign_off(db, world, store, item)
    stats = service.ledger_stats(db.uow(), world.leader, ledger.ledger.id)
    assert (stats.totals.signed_off, stats.totals.relapses) == (1, 0)
    service.act(db.uow(), world.leader, item, A.RELAPSE, reason="积水点复现")
    stats = service.ledger_stats(db.uow(), world.leader, ledger.ledger.id)
    t = stats.totals
    assert (t.signed_off, t.relapses, t.items_relapsed, t.relapsed_now) == (0, 1, 1, 1)
    assert t.relapse_rate == "100.0%"
    drainage_row = next(r for r in stats.by_unit if r.key == str(world.drainage_id))
    assert (drainage_row.relapses, drainage_row.relapsed_now) == (1, 1)
    # Fixed again and signed off again: the relapse stays in the history.
    sign_off(db, world, store, item)
    t = service.ledger_stats(db.uow(), world.leader, ledger.ledger.id).totals
    assert (t.signed_off, t.relapses, t.items_relapsed, t.relapsed_now) == (1, 1, 1, 0)
    with db.uow() as uow:
        relapse_events = uow.session.scalar(
            select(func.count(LedgerItemEvent.id)).where(
                LedgerItemEvent.item_id == item, LedgerItemEvent.action == "relapse"
            )
        )
    assert relapse_events == 1


def test_problem_done_needs_every_measure_and_stats_by_aspect_and_stage(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    sign_off(db, world, store, ledger.drainage.id)
    stats = service.ledger_stats(db.uow(), world.leader, ledger.ledger.id)
    assert (stats.totals.groups_leaf, stats.totals.groups_done) == (1, 0)
    assert stats.by_group[0].label == "强化治理"
    assert [(r.label, r.items, r.signed_off) for r in stats.by_stage] == [
        ("前期准备", 0, 0),
        ("全面推进", 1, 1),
        ("总结评估", 0, 0),
        ("未分阶段", 1, 0),
    ]
    assert "已完成问题整改0个，其余1个正在持续推进" in stats.counts_sentence
    service.add_progress(
        db.uow(), world.outsider, ledger.sanitation.id, files=[("s.png", png())], store=store
    )
    service.act(db.uow(), world.outsider, ledger.sanitation.id, A.SUBMIT)
    service.act(db.uow(), world.leader, ledger.sanitation.id, A.REVIEW)
    service.act(db.uow(), world.admin, ledger.sanitation.id, A.APPROVE)
    stats = service.ledger_stats(db.uow(), world.leader, ledger.ledger.id)
    assert stats.totals.groups_done == 1
    assert "已完成问题整改1个，全部完成整改" in stats.counts_sentence


def test_deadlines_on_the_working_calendar_and_the_overdue_list(
    db: Database, world: World, ledger: Ledger
) -> None:
    drainage = ledger.drainage
    assert drainage.due_on == dt.date(2023, 3, 17)  # 30 working days after Friday 3 Feb
    assert drainage.due_at == dt.datetime(2023, 3, 17, 18, 0, tzinfo=BEIJING)
    march_20 = dt.datetime(2023, 3, 20, 9, 0, tzinfo=BEIJING)
    overdue = service.list_overdue(db.uow(), world.leader, ledger.ledger.id, now=march_20)
    assert [i.id for i in overdue] == [drainage.id]
    july = dt.datetime(2023, 7, 1, 9, 0, tzinfo=BEIJING)
    assert len(service.list_overdue(db.uow(), world.leader, ledger.ledger.id, now=july)) == 2
    # A later feedback date moves the deadline that counts from it, not the fixed date.
    service.update_ledger(
        db.uow(), world.leader, ledger.ledger.id, LedgerUpdate(feedback_on=dt.date(2023, 3, 1))
    )
    moved = service.get_item(db.uow(), world.leader, drainage.id).item
    assert moved.due_on == dt.date(2023, 4, 13)
    fixed = service.get_item(db.uow(), world.leader, ledger.sanitation.id).item
    assert fixed.due_on == dt.date(2023, 6, 30)
    assert "ledger.update" in audit_actions(db, "ledger", ledger.ledger.id)


def test_the_timeline_and_the_chart(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    sign_off(db, world, store, ledger.drainage.id)
    points = service.timeline(db.uow(), world.leader, ledger.ledger.id)
    assert points[-1].signed_off == 1 and points[-1].groups_done == 0
    svg = service.chart_svg(db.uow(), world.leader, ledger.ledger.id, until=None)
    assert svg.startswith("<svg") and "1 / 2" in svg


def test_stages_in_use_cannot_be_removed(db: Database, world: World, ledger: Ledger) -> None:
    with pytest.raises(RuleViolation, match="全面推进"):
        service.update_ledger(
            db.uow(), world.leader, ledger.ledger.id, LedgerUpdate(stages=["准备", "总结"])
        )
    with pytest.raises(InvalidInput, match="stages"):
        service.update_item(db.uow(), world.leader, ledger.drainage.id, ItemUpdate(stage="收尾"))


# --- hazard survey -------------------------------------------------------------------------


def test_a_hazard_survey_from_inspection_to_verified_rectification(
    db: Database, world: World, store: EvidenceStore
) -> None:
    survey = service.create_ledger(
        db.uow(), world.leader, LedgerCreate(kind=LedgerKind.HAZARD, title="隐患排查治理台账")
    )
    inspection = service.add_group(
        db.uow(),
        world.inspector,
        survey.id,
        GroupCreate(
            title="燃气站检查", held_on=dt.date(2023, 4, 18), place="某燃气站", inspector="张三"
        ),
    )
    with pytest.raises(InvalidInput):
        service.add_group(db.uow(), world.inspector, survey.id, GroupCreate(title="无日期"))
    hazard = service.add_item(
        db.uow(),
        world.inspector,
        survey.id,
        ItemCreate(
            group_id=inspection.id,
            content="阀门锈蚀",
            hazard_class="燃气",
            hazard_level="一般隐患",
            location="东侧",
            unit_id=world.drainage_id,
            deadline="2023-04-30",
        ),
    )
    assert hazard.hazard_level == "一般"
    service.add_progress(
        db.uow(), world.operator, hazard.id, text="已更换", files=[("v.png", png())], store=store
    )
    service.act(db.uow(), world.operator, hazard.id, A.SUBMIT)
    service.act(db.uow(), world.inspector, hazard.id, A.REVIEW)  # on-site verification
    service.act(db.uow(), world.leader, hazard.id, A.APPROVE)
    stats = service.ledger_stats(db.uow(), world.leader, survey.id)
    assert stats.hazard is not None
    assert (stats.hazard.inspections, stats.hazard.found, stats.hazard.rectified) == (1, 1, 1)
    assert stats.hazard.sentence == "累计开展检查1次，发现一般安全隐患1项，已整改1项，整改率100.0%"


# --- Excel and bulletin --------------------------------------------------------------------


def workbook_bytes(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(
        [
            "序号",
            "方面",
            "问题",
            "整改措施",
            "责任领导",
            "责任单位",
            "责任人",
            "整改时限",
            "完成情况",
        ]
    )
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def counts(db: Database, ledger_id: int) -> tuple[int, int]:
    with db.uow() as uow:
        groups = uow.session.scalar(
            select(func.count(LedgerGroup.id)).where(LedgerGroup.ledger_id == ledger_id)
        )
        items = uow.session.scalar(
            select(func.count(LedgerItem.id)).where(LedgerItem.ledger_id == ledger_id)
        )
    return int(groups or 0), int(items or 0)


def test_an_import_with_one_bad_row_writes_nothing(db: Database, world: World) -> None:
    target = service.create_ledger(
        db.uow(),
        world.leader,
        LedgerCreate(kind=LedgerKind.RECTIFICATION, title="导入", feedback_on=dt.date(2023, 2, 3)),
    )
    rows: list[list[object]] = [
        [
            1,
            "方面一",
            "问题一",
            "措施一",
            "张三",
            "排水服务中心(演示)",
            "李四",
            "2023年6月30日",
            "",
        ],
        [2, "方面一", "问题二", "措施二", "张三", "drainage", "李四", "30个工作日", ""],
        [3, "方面二", "问题三", "措施三", "张三", "没有这个单位", "李四", "", ""],
    ]
    with pytest.raises(WorkbookRejected) as err:
        service.import_xlsx(db.uow(), world.leader, target.id, workbook_bytes(rows))
    assert [(e.row, e.column) for e in err.value.errors] == [(4, "责任单位")]
    assert counts(db, target.id) == (0, 0)
    assert audit_actions(db, "ledger", target.id) == ["ledger.create"]
    rows[2][5] = "sanitation"
    report = service.import_xlsx(db.uow(), world.leader, target.id, workbook_bytes(rows))
    assert (report.rows, report.groups_created, report.items_created) == (3, 5, 3)
    assert counts(db, target.id) == (5, 3)
    assert audit_actions(db, "ledger", target.id) == ["ledger.create", "ledger.import"]
    with pytest.raises(PermissionDenied):
        service.import_xlsx(db.uow(), world.operator, target.id, workbook_bytes(rows))


def test_export_import_export_round_trips_through_the_database(
    db: Database, world: World, ledger: Ledger
) -> None:
    first = service.export_xlsx(db.uow(), world.leader, ledger.ledger.id)
    copy = service.create_ledger(
        db.uow(),
        world.leader,
        LedgerCreate(
            kind=LedgerKind.RECTIFICATION, title="巡察整改台账", feedback_on=dt.date(2023, 2, 3)
        ),
    )
    service.import_xlsx(db.uow(), world.leader, copy.id, first)
    assert service.export_xlsx(db.uow(), world.leader, copy.id) == first
    imported = service.get_ledger(db.uow(), world.leader, copy.id)
    measure = imported.groups[0].children[0].items[0]
    assert (measure.unit_id, measure.due_on, measure.stage) == (
        world.drainage_id,
        dt.date(2023, 3, 17),
        "全面推进",
    )


def test_the_bulletin_comes_from_the_ledger(db: Database, world: World, ledger: Ledger) -> None:
    data, media = service.render_bulletin(db.uow(), world.leader, ledger.ledger.id, "md")
    text = data.decode()
    assert media == "text/markdown"
    assert (
        "针对巡察反馈的1个方面1个问题，共细化了2条整改措施，已完成问题整改0个，其余1个正在持续推进。"
        in text
    )
    assert "2022年7月19日至9月23日" in text and "2023年2月3日，区委第四巡察组" in text
    docx, _ = service.render_bulletin(db.uow(), world.dispatcher, ledger.ledger.id, "docx")
    assert docx == service.render_bulletin(db.uow(), world.leader, ledger.ledger.id, "docx")[0]


def test_evidence_can_be_downloaded_by_who_may_see_the_item(
    db: Database, world: World, ledger: Ledger, store: EvidenceStore
) -> None:
    data = png()
    entry = service.add_progress(
        db.uow(),
        world.operator,
        ledger.drainage.id,
        text="照片",
        files=[("现场.jpg", data)],
        store=store,
    )
    evidence = entry.evidence[0]
    assert (evidence.content_type, evidence.filename) == ("image/png", "现场.jpg")
    public, content = service.evidence_file(db.uow(), world.leader, evidence.id, store=store)
    assert content == data and public.sha256 == evidence.sha256
    with pytest.raises(NotFound):
        service.evidence_file(db.uow(), world.outsider, evidence.id, store=store)
