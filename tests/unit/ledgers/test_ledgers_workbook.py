"""Excel ledgers: reading sheets as offices write them, row-numbered rejections, round trips."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence

import pytest
from openpyxl import Workbook, load_workbook
from tests.unit.ledgers.ledger_builders import haidian, haidian_ledger, hazard_survey

from cityloop.ledgers.domain import (
    GroupFacts,
    ItemFacts,
    ItemStatus,
    LedgerFacts,
    LedgerKind,
    LedgerSnapshot,
    SignoffState,
)
from cityloop.ledgers.workbook import (
    COLUMNS,
    ImportContext,
    RowError,
    ValidRow,
    WorkbookRejected,
    export_workbook,
    read_sheet,
    validate_rows,
)
from cityloop.workcal.domain import WorkingCalendar

UNITS = {"市容科": 1, "环卫科": 2, "交通科": 3, "traffic": 3}
CAL = WorkingCalendar()
FEEDBACK = dt.date(2023, 2, 3)
HEADER = [
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


def context(**overrides: object) -> ImportContext:
    values: dict[str, object] = {
        "units": UNITS,
        "stages": ["前期准备", "全面推进", "总结评估"],
        "feedback_on": FEEDBACK,
        "calendar": CAL,
    }
    values.update(overrides)
    return ImportContext(**values)  # type: ignore[arg-type]


def sheet_bytes(
    rows: Sequence[Sequence[object]],
    *,
    header: Sequence[str] = HEADER,
    title: str | None = "区城市管理委巡察反馈问题整改台账",
    merges: Sequence[str] = (),
) -> bytes:
    """A workbook: an optional title row, the header, then ``rows``."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    if title is not None:
        ws.append([title])
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    for ref in merges:
        ws.merge_cells(ref)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def parse(
    data: bytes, kind: LedgerKind = LedgerKind.RECTIFICATION, **ctx: object
) -> list[ValidRow]:
    return validate_rows(read_sheet(data, kind), context(**ctx))


def errors_of(
    data: bytes, kind: LedgerKind = LedgerKind.RECTIFICATION, **ctx: object
) -> list[RowError]:
    with pytest.raises(WorkbookRejected) as err:
        parse(data, kind, **ctx)
    return err.value.errors


# --- reading -------------------------------------------------------------------------------

MERGED_ROWS = [
    [
        1,
        "一、聚焦“三治五化”",
        "（一）强化城市治理理念",
        "深化理论学习",
        "张三",
        "市容科",
        "李四",
        "2023年6月30日",
        "已学习15次",
    ],
    [None, None, None, "加强规划研究", "张三", "环卫科、交通科", "王五", "30个工作日", ""],
    [
        2,
        None,
        "（二）提升环境建设精细化水平",
        "修订考评方案",
        "赵六",
        "traffic",
        "",
        "长期坚持",
        "",
    ],
    [3, "二、加强监督教育力度", "强化派驻监督", "加强制度建设", "", "市容科", "", "6月底前", ""],
]


def test_merged_cells_carry_aspect_and_problem_down_and_titles_lose_their_numbers() -> None:
    # Title row 1, header row 2, data rows 3-6; 方面 merged over 3-5, 问题 over 3-4, 序号 3-4.
    data = sheet_bytes(MERGED_ROWS, merges=["B3:B5", "C3:C4", "A3:A4"])
    rows = parse(data)
    assert [r.row for r in rows] == [3, 4, 5, 6]
    assert [tuple(g.title for g in r.groups) for r in rows] == [
        ("聚焦“三治五化”", "强化城市治理理念"),
        ("聚焦“三治五化”", "强化城市治理理念"),
        ("聚焦“三治五化”", "提升环境建设精细化水平"),
        ("加强监督教育力度", "强化派驻监督"),
    ]
    items = [r.item for r in rows]
    assert all(i is not None for i in items)
    first, second, third, fourth = items  # type: ignore[misc]
    assert (first.unit_id, first.due_on, first.completion) == (
        1,
        dt.date(2023, 6, 30),
        "已学习15次",
    )
    assert (second.unit_id, second.co_units) == (2, "交通科")
    assert second.due_on == dt.date(2023, 3, 17)  # 30 working days after 3 Feb 2023
    assert (third.unit_id, third.status, third.due_on) == (3, ItemStatus.LONG_TERM, None)
    assert (fourth.deadline_text, fourth.due_on) == ("6月底前", dt.date(2023, 6, 30))


def test_blank_unmerged_aspect_and_problem_cells_continue_the_row_above() -> None:
    rows = parse(sheet_bytes(MERGED_ROWS))  # the same rows without merges
    assert [tuple(g.title for g in r.groups) for r in rows][:3] == [
        ("聚焦“三治五化”", "强化城市治理理念"),
        ("聚焦“三治五化”", "强化城市治理理念"),
        ("聚焦“三治五化”", "提升环境建设精细化水平"),
    ]


def test_headers_are_found_below_titles_with_synonyms_spaces_and_notes() -> None:
    header = [
        "编号",
        "问题\n类别",
        "具体问题",
        "整改 措施",
        "牵头领导",
        "责任单位（牵头）",
        "责任人",
        "完成时限",
        "进展情况",
    ]
    data = sheet_bytes([[1, "方面", "问题", "措施", "", "市容科", "", "", ""]], header=header)
    sheet = read_sheet(data, LedgerKind.RECTIFICATION)
    assert sheet.header_row == 2
    assert {c.field for c in sheet.columns} >= {
        "g1.title",
        "g2.title",
        "content",
        "unit",
        "deadline",
    }


def test_a_sheet_without_a_title_row_works_too() -> None:
    rows = parse(sheet_bytes([[1, "方面", "问题", "措施", "", "市容科", "", "", ""]], title=None))
    assert rows[0].row == 2


def test_a_problem_row_without_measures_declares_the_problem_only() -> None:
    rows = parse(sheet_bytes([[1, "方面", "尚未细化措施的问题", "", "", "", "", "", ""]]))
    assert rows[0].item is None
    assert rows[0].groups[1].title == "尚未细化措施的问题"


def test_stage_and_status_columns_are_read_when_present() -> None:
    header = [*HEADER, "整改阶段", "整改状态"]
    data = sheet_bytes(
        [[1, "方面", "问题", "措施", "", "市容科", "", "", "", "全面推进", "已完成"]], header=header
    )
    item = parse(data)[0].item
    assert item is not None
    assert (item.stage, item.status) == ("全面推进", ItemStatus.DONE)


# --- rejections ----------------------------------------------------------------------------


def test_not_an_xlsx_is_refused_as_a_whole() -> None:
    errors = errors_of(b"this is not a workbook")
    assert errors == [
        RowError(0, "", "not a readable .xlsx workbook (save it as Excel 2007+ .xlsx)")
    ]
    assert str(errors[0]).startswith("workbook:")


def test_a_missing_required_column_names_the_header_row() -> None:
    header = ["序号", "方面", "问题", "责任单位", "整改时限"]
    errors = errors_of(sheet_bytes([[1, "a", "b", "市容科", ""]], header=header))
    # 整改措施 is missing in header row 2.
    assert [(e.row, e.column) for e in errors] == [(2, "整改措施")]


def test_no_header_row_at_all() -> None:
    errors = errors_of(sheet_bytes([["x", "y"]], header=["甲", "乙"]))
    assert errors[0].row == 0
    assert "no header row" in errors[0].message


def test_every_bad_row_is_reported_with_its_excel_row_number_and_column() -> None:
    rows = [
        [1, "方面一", "问题一", "措施", "", "市容科", "", "2023年6月30日", ""],  # row 3: fine
        [2, None, None, "措施", "", "排水所", "", "", ""],  # row 4: unknown unit
        [3, None, None, "措施", "", "市容科", "", "尽快", ""],  # row 5: unreadable deadline
        [4, None, None, "", "张三", "市容科", "", "", ""],  # row 6: no measure but a unit
        [5, "方面二", None, "措施", "", "市容科", "", "", ""],  # row 7: new aspect, no problem
        [6, "方面二", "问题", "措施", "", "", "", "", ""],  # row 8: no unit
        [7, "方面二", "问题", "措" * 4001, "", "市容科", "", "", ""],  # row 9: too long
    ]
    errors = errors_of(sheet_bytes(rows))
    assert [(e.row, e.column) for e in errors] == [
        (4, "责任单位"),
        (5, "整改时限"),
        (6, "整改措施"),
        (7, "问题"),
        (8, "责任单位"),
        (9, "整改措施"),
    ]
    assert "'排水所' is not a department" in errors[0].message
    assert "尽快" in errors[1].message


def test_unknown_stage_and_status_are_rejected() -> None:
    header = [*HEADER, "整改阶段", "整改状态"]
    rows = [
        [1, "方面", "问题", "措施", "", "市容科", "", "", "", "收尾阶段", ""],
        [2, "方面", "问题", "措施", "", "市容科", "", "", "", "", "差不多了"],
    ]
    errors = errors_of(sheet_bytes(rows, header=header))
    assert [(e.row, e.column) for e in errors] == [(3, "整改阶段"), (4, "整改状态")]


def test_a_relative_deadline_without_a_feedback_date_is_a_row_error() -> None:
    rows = [[1, "方面", "问题", "措施", "", "市容科", "", "30个工作日", ""]]
    errors = errors_of(sheet_bytes(rows), feedback_on=None)
    assert [(e.row, e.column) for e in errors] == [(3, "整改时限")]


def test_the_rejection_message_lists_the_first_ten_and_counts_the_rest() -> None:
    rows = [[n, "方面", "问题", "措施", "", "无此单位", "", "", ""] for n in range(1, 13)]
    with pytest.raises(WorkbookRejected) as err:
        parse(sheet_bytes(rows))
    assert len(err.value.errors) == 12
    assert "12 errors" in err.value.message and "(and 2 more)" in err.value.message
    body = err.value.to_dict()
    assert body["errors"][0] == {
        "row": 3,
        "column": "责任单位",
        "message": body["errors"][0]["message"],
    }


# --- hazard sheets -------------------------------------------------------------------------


def test_a_hazard_sheet_groups_hazards_by_inspection() -> None:
    header = [
        "序号",
        "检查日期",
        "检查地点或企业",
        "检查人",
        "隐患描述",
        "隐患类别",
        "隐患等级",
        "隐患位置",
        "整改时限",
    ]
    rows = [
        [
            1,
            dt.datetime(2023, 4, 18),
            "某燃气站",
            "张三",
            "阀门锈蚀",
            "燃气",
            "一般隐患",
            "东侧",
            "2023-04-30",
        ],
        [2, None, None, None, "警示标识缺失", "燃气", "一般", "", ""],
        [3, "2023-04-19", "某环卫站", "李四", "消防通道堵塞", "消防", "重大事故隐患", "", ""],
        [4, "四月", "某站", "李四", "x", "", "", "", ""],
    ]
    errors = errors_of(sheet_bytes(rows, header=header, title=None), LedgerKind.HAZARD)
    assert [(e.row, e.column) for e in errors] == [(5, "检查日期")]
    good = parse(sheet_bytes(rows[:3], header=header, title=None), LedgerKind.HAZARD)
    keys = [r.groups[0] for r in good]
    assert keys[0] == keys[1]
    assert (keys[0].held_on, keys[0].place, keys[0].inspector) == (
        dt.date(2023, 4, 18),
        "某燃气站",
        "张三",
    )
    assert [r.item.hazard_level for r in good if r.item] == ["一般", "一般", "重大"]


# --- export and round trip -----------------------------------------------------------------


def snapshot_from_rows(rows: Sequence[ValidRow], ledger: LedgerFacts) -> LedgerSnapshot:
    """What the service writes for validated rows (groups by key, items in order)."""
    names = {v: k for k, v in UNITS.items() if k != "traffic"}
    groups: dict[tuple[int | None, object], GroupFacts] = {}
    items: list[ItemFacts] = []
    counts: dict[int | None, int] = {}
    for row in rows:
        parent: int | None = None
        for level, key in enumerate(row.groups, start=1):
            if (parent, key) not in groups:
                counts[parent] = counts.get(parent, 0) + 1
                groups[(parent, key)] = GroupFacts(
                    id=len(groups) + 1,
                    parent_id=parent,
                    level=level,
                    position=counts[parent],
                    title=key.title,
                    held_on=key.held_on,
                    place=key.place,
                    inspector=key.inspector,
                )
            parent = groups[(parent, key)].id
        if row.item is not None:
            assert parent is not None
            v = row.item
            items.append(
                ItemFacts(
                    id=len(items) + 1,
                    group_id=parent,
                    position=len(items) + 1,
                    content=v.content,
                    status=v.status,
                    responsible_leader=v.responsible_leader,
                    unit_id=v.unit_id,
                    unit_name=names.get(v.unit_id or 0, ""),
                    co_units=v.co_units,
                    responsible_person=v.responsible_person,
                    deadline_text=v.deadline_text,
                    due_on=v.due_on,
                    due_at=v.due_at,
                    stage=v.stage,
                    completion=v.completion,
                    hazard_class=v.hazard_class,
                    hazard_level=v.hazard_level,
                    location=v.location,
                )
            )
    return LedgerSnapshot(ledger, tuple(groups.values()), tuple(items))


def all_open(snapshot: LedgerSnapshot) -> LedgerSnapshot:
    """The snapshot with nothing signed off (imports never sign off)."""
    items = tuple(
        ItemFacts(**{**{n: getattr(i, n) for n in i.__slots__}, "state": SignoffState.OPEN})
        for i in snapshot.items
    )
    return LedgerSnapshot(snapshot.ledger, snapshot.groups, items)


def test_export_then_import_then_export_gives_the_same_bytes() -> None:
    original = all_open(haidian())
    first = export_workbook(original)
    rows = parse(first)
    assert len(rows) == 100
    again = export_workbook(snapshot_from_rows(rows, haidian_ledger()))
    assert again == first


def test_the_export_has_the_usual_columns_and_merges_aspects_and_problems() -> None:
    ws = load_workbook(io.BytesIO(export_workbook(haidian()))).worksheets[0]
    assert [c.value for c in ws[2]] == [c.header for c in COLUMNS[LedgerKind.RECTIFICATION]]
    assert [c.value for c in ws[2]][:9] == HEADER
    merged = {str(m) for m in ws.merged_cells.ranges}
    assert "A1:L1" in merged  # the title row
    assert "B3:B62" in merged  # aspect 1: 20 problems x 3 measures
    assert "C3:C5" in merged and "A3:A5" in merged  # problem 1 and its 序号
    assert ws["A3"].value == 1 and ws["A6"].value == 2
    assert ws["L3"].value == "已销号"
    assert ws.max_row == 2 + 100


def test_the_export_is_deterministic_and_carries_no_clock() -> None:
    first, second = export_workbook(haidian()), export_workbook(haidian())
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = archive.read("docProps/core.xml").decode()
    assert "2000-01-01T00:00:00Z" in core


def test_text_that_looks_like_a_formula_stays_text() -> None:
    base = haidian()
    item = base.items[0]
    poisoned = ItemFacts(**{**{n: getattr(item, n) for n in item.__slots__}, "content": "=1+1"})
    snapshot = LedgerSnapshot(base.ledger, base.groups, (poisoned, *base.items[1:]))
    ws = load_workbook(io.BytesIO(export_workbook(snapshot))).worksheets[0]
    assert ws["D3"].value == "=1+1"
    assert ws["D3"].data_type == "s"


def test_a_hazard_ledger_round_trips_with_dates_and_merged_inspections() -> None:
    original = all_open(hazard_survey())
    data = export_workbook(original)
    rows = parse(data, LedgerKind.HAZARD)
    assert len(rows) == 213  # 182 hazards and 31 inspections without one
    assert sum(1 for r in rows if r.item is not None) == 182
    assert export_workbook(snapshot_from_rows(rows, original.ledger)) == data
