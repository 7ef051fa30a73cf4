"""The workbook reader and writer, without a database.

The Yuncheng workbook (a copy of ``shared/domain/yuncheng-case-standard.xlsx`` beside this file)
is the real thing a city maintains; the counts asserted here were taken by hand from its sheets:

- 部件: rows 3-377, all 375 of them criterion rows; major classes 01 公用设施 (rows 3-148),
  02 道路交通设施 (149-237), 03 市容环境设施 (238-286), 04 园林绿化设施 (287-355),
  05 其他部件 (356-377); 40 + 20 + 10 + 16 + 6 = 92 minor classes.
- 事件: rows 3-149, of which 52, 54 and 55 are blank continuations of merged criterion cells
  (G51:I52, G53:I55), so 147 - 3 = 144 criterion rows; major classes 01-06 with
  47 + 8 + 16 + 13 + 10 + 4 = 98 minor classes.

The Yuncheng file leaves no time limit empty; empty limits are exercised on small workbooks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

from cityloop.catalog.domain import CatalogSpec, Family, FamilySpec, MinorSpec
from cityloop.catalog.workbook import (
    WorkbookRejected,
    read_workbook,
    write_workbook,
)
from cityloop.errors import InvalidInput
from cityloop.workcal.domain import DEFAULT_UNIT_MAP, Clock, Unit, UnitMeaning

YUNCHENG = Path(__file__).with_name("yuncheng-case-standard.xlsx")
HEADER = [
    "大类代码",
    "大类名称",
    "小类代码",
    "小类名称",
    "处置单位",
    "主管部门",
    "立案条件",
    "结案条件",
    "处置时限",
]


def make_book(
    tmp_path: Path,
    sheets: dict[str, list[list[object]]],
    merges: dict[str, list[str]] | None = None,
    name: str = "city.xlsx",
) -> Path:
    """A workbook with the given rows (row 1 first) and merged ranges per sheet."""
    workbook = Workbook()
    default = workbook.active
    assert default is not None
    workbook.remove(default)
    for title, rows in sheets.items():
        ws = workbook.create_sheet(title)
        for row in rows:
            ws.append(row)
        for cell_range in (merges or {}).get(title, []):
            ws.merge_cells(cell_range)
    path = tmp_path / name
    workbook.save(path)
    return path


def minor(spec: CatalogSpec, family: Family, code: str) -> MinorSpec:
    family_spec = spec.get(family)
    assert family_spec is not None
    for major in family_spec.majors:
        for candidate in major.minors:
            if candidate.code == code:
                return candidate
    raise AssertionError(f"no minor class {code}")


def family_of(spec: CatalogSpec, family: Family) -> FamilySpec:
    result = spec.get(family)
    assert result is not None
    return result


# --- the real Yuncheng workbook -------------------------------------------------------------


@pytest.fixture(scope="module")
def yuncheng() -> CatalogSpec:
    return read_workbook(YUNCHENG)


def test_yuncheng_counts_per_family(yuncheng: CatalogSpec) -> None:
    components = family_of(yuncheng, Family.COMPONENT)
    events = family_of(yuncheng, Family.EVENT)
    assert (len(components.majors), components.minor_count, components.standard_count) == (
        5,
        92,
        375,
    )
    assert (len(events.majors), events.minor_count, events.standard_count) == (6, 98, 144)
    assert [len(m.minors) for m in components.majors] == [40, 20, 10, 16, 6]
    assert [len(m.minors) for m in events.majors] == [47, 8, 16, 13, 10, 4]
    assert components.sheet == "部件" and events.sheet == "事件"


def test_yuncheng_major_classes(yuncheng: CatalogSpec) -> None:
    assert [(m.code, m.name) for m in family_of(yuncheng, Family.COMPONENT).majors] == [
        ("01", "公用设施"),
        ("02", "道路交通设施"),
        ("03", "市容环境设施"),
        ("04", "园林绿化设施"),
        ("05", "其他部件"),
    ]
    # "街面秩序\n" in the sheet: the cell's line break is layout, not part of the name.
    assert [(m.code, m.name) for m in family_of(yuncheng, Family.EVENT).majors] == [
        ("01", "市容环境"),
        ("02", "宣传广告"),
        ("03", "施工管理"),
        ("04", "街面秩序"),
        ("05", "突发事件"),
        ("06", "其他事件"),
    ]


def test_yuncheng_first_row_of_each_sheet(yuncheng: CatalogSpec) -> None:
    well_cover = minor(yuncheng, Family.COMPONENT, "0101")
    assert well_cover.name == "上水井盖"
    assert [s.limit_text for s in well_cover.standards] == ["2紧急工作时", "4小时", "2天", "5天"]
    first = well_cover.standards[0]
    assert first.source_row == 3
    assert first.filing_criterion == "缺失、移位、开裂，存在安全隐患的"
    assert first.closing_criterion == "恢复"
    assert first.handling_units == "运城市城市节约用水中心、各产权单位"
    assert first.supervising_authority == "运城市城市管理局、盐湖区政府、运城市经济开发区"
    assert first.limit is not None
    assert (first.limit.amount, first.limit.unit, first.limit.clock) == (
        2,
        Unit.HOUR,
        Clock.URGENT,
    )
    # Merged handling-unit cells carry down to every row of the class.
    assert {s.handling_units for s in well_cover.standards} == {first.handling_units}

    building = minor(yuncheng, Family.EVENT, "0101")
    assert building.name == "私搭乱建"
    assert building.standards[0].source_row == 3
    limit = building.standards[0].limit
    assert limit is not None
    assert (limit.amount, limit.unit, limit.clock) == (2, Unit.DAY, Clock.URGENT)  # 2紧急工作日


def test_yuncheng_last_row_of_each_sheet(yuncheng: CatalogSpec) -> None:
    signs = minor(yuncheng, Family.COMPONENT, "0598")
    assert signs.name == "其他指示牌、标识牌"
    last = signs.standards[-1]
    assert (last.source_row, last.filing_criterion, last.closing_criterion, last.limit_text) == (
        377,
        "废弃",
        "拆除",
        "3天",
    )
    sand = minor(yuncheng, Family.EVENT, "0696")
    assert sand.name == "非法采砂、取土"
    last = sand.standards[-1]
    assert (last.source_row, last.filing_criterion, last.limit_text) == (
        149,
        "私自在耕地、城市河道挖砂",
        "1天",
    )


def test_yuncheng_limit_with_a_trailing_remark(yuncheng: CatalogSpec) -> None:
    tree = minor(yuncheng, Family.EVENT, "0122")  # 非法伐树: "1紧急工作时制止"
    limit = tree.standards[0].limit
    assert limit is not None
    assert (limit.amount, limit.unit, limit.clock) == (1, Unit.HOUR, Clock.URGENT)
    assert (limit.text, limit.remark) == ("1紧急工作时制止", "制止")


def test_yuncheng_limit_with_a_trailing_line_break(yuncheng: CatalogSpec) -> None:
    pipe = minor(yuncheng, Family.EVENT, "0501")  # "1紧急工作时\n" in the cell
    limit = pipe.standards[0].limit
    assert limit is not None
    assert (limit.text, limit.remark, limit.clock) == ("1紧急工作时", "", Clock.URGENT)


def test_yuncheng_has_no_empty_limit_and_skips_merged_blank_rows(yuncheng: CatalogSpec) -> None:
    rows = [
        s
        for family in yuncheng.families
        for major in family.majors
        for m in major.minors
        for s in m.standards
    ]
    assert all(s.limit is not None for s in rows)
    # 违法农村自建房: criterion cells merged over rows 51-52 and 53-55 make two rows, not five.
    village = minor(yuncheng, Family.EVENT, "0198")
    assert [s.source_row for s in village.standards] == [51, 53]
    assert [s.limit_text for s in village.standards] == ["2紧急工作日", "15天"]


def test_yuncheng_codes_written_as_numbers_and_text(yuncheng: CatalogSpec) -> None:
    assert minor(yuncheng, Family.COMPONENT, "0101").name == "上水井盖"  # written 1, 1
    assert minor(yuncheng, Family.COMPONENT, "0103").name == "雨水井盖"  # written '03'
    assert minor(yuncheng, Family.EVENT, "0199").name == "违规小产权房"  # written 99
    assert minor(yuncheng, Family.EVENT, "0183").name == "外立面裂缝"  # written 83


def test_yuncheng_extensions_are_flagged(yuncheng: CatalogSpec) -> None:
    assert minor(yuncheng, Family.COMPONENT, "0199").is_extension  # 爱心驿站
    assert minor(yuncheng, Family.COMPONENT, "0178").is_extension  # 桥体、楼体亮化
    assert not minor(yuncheng, Family.COMPONENT, "0157").is_extension  # 露天燃气管道
    assert not any(m.is_extension for m in family_of(yuncheng, Family.EVENT).majors)
    strict = read_workbook(YUNCHENG, extension_floor=90)
    assert not minor(strict, Family.COMPONENT, "0178").is_extension


def test_yuncheng_names_lose_cell_line_breaks(yuncheng: CatalogSpec) -> None:
    assert minor(yuncheng, Family.COMPONENT, "0397").name == "烟头收集器或灭烟处"
    # Free text keeps its inner line break but not the leading one ("\n运城市园林绿化服务中心").
    assert minor(yuncheng, Family.COMPONENT, "0199").standards[0].handling_units == (
        "运城市园林绿化服务中心"
    )


def test_a_unit_mapping_changes_the_clock(tmp_path: Path) -> None:
    unit_map = dict(DEFAULT_UNIT_MAP)
    unit_map["天"] = UnitMeaning(Clock.CALENDAR, Unit.DAY)
    spec = read_workbook(YUNCHENG, unit_map=unit_map)
    limit = minor(spec, Family.COMPONENT, "0101").standards[2].limit  # "2天"
    assert limit is not None and limit.clock is Clock.CALENDAR
    other = minor(spec, Family.COMPONENT, "0101").standards[1].limit  # "4小时"
    assert other is not None and other.clock is Clock.WORKING


def test_yuncheng_round_trips_through_an_export(yuncheng: CatalogSpec, tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    write_workbook(path, yuncheng)
    assert read_workbook(path) == yuncheng


# --- the exported file is readable ------------------------------------------------------------


def test_the_export_has_the_workbook_shape(yuncheng: CatalogSpec, tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    write_workbook(path, yuncheng, title="某市立结案标准")
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["部件", "事件"]
    ws = workbook["部件"]
    assert ws["A1"].value == "某市立结案标准(部件类)"
    assert [c.value for c in ws[2]] == HEADER
    # Codes are text with their leading zero; classes merged down over their rows.
    assert (ws["A3"].value, ws["B3"].value, ws["C3"].value, ws["D3"].value) == (
        "01",
        "公用设施",
        "01",
        "上水井盖",
    )
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:I1", "A3:A148", "B3:B148", "C3:C6", "D3:D6", "E3:E6", "F3:F6"} <= merged
    assert ws.column_dimensions["G"].width >= 40
    assert ws.freeze_panes == "A3"
    assert ws.max_row == 2 + 375
    assert workbook["事件"].max_row == 2 + 144


def test_export_refuses_a_name_that_is_not_xlsx(yuncheng: CatalogSpec, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"\.xlsx"):
        write_workbook(tmp_path / "export.csv", yuncheng)
    with pytest.raises(InvalidInput, match="does not exist"):
        write_workbook(tmp_path / "missing" / "export.xlsx", yuncheng)


# --- small workbooks: layouts that must be read -----------------------------------------------


def test_merged_class_cells_carry_down(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {
            "部件": [
                ["标题"],
                HEADER,
                [1, "公用设施", 1, "上水井盖", "供水", "城管局", "缺失", "恢复", "2紧急工作时"],
                [None, None, None, None, None, None, "破损", "修复", "4小时"],
                [None, None, 2, "污水井盖", "排水", "城管局", "缺失", "恢复", "2紧急工作时"],
            ]
        },
        {"部件": ["A3:A5", "B3:B5", "C3:C4", "D3:D4", "E3:E4", "F3:F4"]},
    )
    spec = family_of(read_workbook(path), Family.COMPONENT)
    (major,) = spec.majors
    assert [(m.code, m.name, len(m.standards)) for m in major.minors] == [
        ("0101", "上水井盖", 2),
        ("0102", "污水井盖", 1),
    ]
    second = major.minors[0].standards[1]
    assert (second.handling_units, second.supervising_authority, second.source_row) == (
        "供水",
        "城管局",
        4,
    )


def test_blank_class_cells_carry_down_without_merges(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {
            "事件": [
                HEADER,
                [
                    "01",
                    "市容环境",
                    "01",
                    "私搭乱建",
                    "街道",
                    "区政府",
                    "正在建设",
                    "制止",
                    "2紧急工作日",
                ],
                [None, None, None, None, None, None, "已形成", "拆除", "15天"],
                [None, None, "12", "道路不洁", "环卫", "城管局", "散落垃圾", "清理", "2小时"],
                ["02", "宣传广告", "01", "非法小广告", "街道", "区政府", "小广告", "清除", "1天"],
            ]
        },
    )
    spec = family_of(read_workbook(path), Family.EVENT)
    assert [(m.code, [n.code for n in m.minors]) for m in spec.majors] == [
        ("01", ["0101", "0112"]),
        ("02", ["0201"]),
    ]
    assert minor(read_workbook(path), Family.EVENT, "0101").standards[1].handling_units == "街道"


def test_every_row_written_out_in_full_is_one_class(tmp_path: Path) -> None:
    row = ["01", "公用设施", "01", "上水井盖", "供水", "城管局"]
    path = make_book(
        tmp_path,
        {
            "components": [
                HEADER,
                [*row, "缺失", "恢复", "2紧急工作时"],
                [*row, "破损", "修复", "4小时"],
                ["01", "公用设施", "0102", "污水井盖", "排水", "城管局", "缺失", "恢复", "2天"],
            ]
        },
    )
    spec = family_of(read_workbook(path), Family.COMPONENT)
    assert [(m.code, len(m.standards)) for m in spec.majors[0].minors] == [
        ("0101", 2),
        ("0102", 1),
    ]


def test_header_found_by_label_below_notes_with_columns_moved(tmp_path: Path) -> None:
    header = ["小类代码", "小类名称", "大类代码", "大类名称", "立案条件", "结案条件", "处置时限"]
    path = make_book(
        tmp_path,
        {
            "说明": [["本表说明"], ["无表头"]],
            "Sheet1": [
                ["某市立结案标准（事件类）"],
                ["2024年版"],
                [],
                header,
                [1, "私搭乱建", 1, "市容环境", "正在建设", "制止", "2紧急工作日"],
            ],
        },
    )
    spec = read_workbook(path)
    events = family_of(spec, Family.EVENT)
    assert events.sheet == "Sheet1"
    standard = minor(spec, Family.EVENT, "0101").standards[0]
    assert (standard.handling_units, standard.supervising_authority, standard.source_row) == (
        "",
        "",
        5,
    )
    assert spec.get(Family.COMPONENT) is None


def test_an_empty_time_limit_is_kept_as_none(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {
            "事件": [
                HEADER,
                [1, "市容环境", 1, "私搭乱建", "街道", "区政府", "正在建设", "制止", None],
                [None, None, None, None, None, None, "已形成", None, "  "],
            ]
        },
    )
    spec = read_workbook(path)
    rows = minor(spec, Family.EVENT, "0101").standards
    assert [(s.limit, s.closing_criterion) for s in rows] == [(None, "制止"), (None, "")]
    out = tmp_path / "out.xlsx"
    write_workbook(out, spec)
    assert read_workbook(out) == spec


def test_codes_as_floats_and_four_digit_minor_codes(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {
            "部件": [
                HEADER,
                [3.0, "市容环境", "0305", "垃圾箱", "环卫", "城管局", "倾倒", "恢复", "1天"],
                [None, None, 6.0, "户外广告", "执法", "城管局", "倾斜", "恢复", "1天"],
            ]
        },
    )
    spec = read_workbook(path)
    assert [m.code for m in family_of(spec, Family.COMPONENT).majors[0].minors] == [
        "0305",
        "0306",
    ]


# --- small workbooks: what is refused, with where ---------------------------------------------


def rejected(path: Path) -> list[tuple[str, int | None, str]]:
    with pytest.raises(WorkbookRejected) as caught:
        read_workbook(path)
    problems = caught.value.problems
    # The one-sentence error names every problem with its sheet and row.
    for p in problems:
        assert str(p) in caught.value.message
    assert "nothing was changed" in caught.value.message
    return [(p.sheet, p.row, p.message) for p in problems]


GOOD = [1, "公用设施", 1, "上水井盖", "供水", "城管局", "缺失", "恢复", "2紧急工作时"]


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        (["A1", "公用设施", 2, "污水井盖", "", "", "缺失", "恢复", "1天"], "major class code"),
        ([0, "公用设施", 2, "污水井盖", "", "", "缺失", "恢复", "1天"], "from 01 to 99"),
        ([None, None, "1.5", "污水井盖", "", "", "缺失", "恢复", "1天"], "minor class code"),
        ([None, None, 100, "污水井盖", "", "", "缺失", "恢复", "1天"], "from 01 to 99"),
        ([None, None, "0202", "污水井盖", "", "", "缺失", "恢复", "1天"], "does not belong"),
        ([None, None, None, None, None, None, "破损", "修复", "3周"], "unknown unit"),
        ([None, None, None, None, None, None, "破损", "修复", "尽快"], "cannot read time limit"),
        ([None, None, None, None, None, None, "破损", "修复", 4], "cannot read time limit"),
        ([None, None, None, None, None, None, None, "修复", "1天"], "filing criterion"),
        ([None, None, 2, None, "", "", "缺失", "恢复", "1天"], "has no name"),
        (
            [None, None, None, "污水井盖", None, None, "缺失", "恢复", "1天"],
            "has no minor class code",
        ),
        (
            [None, "道路交通", None, None, None, None, "缺失", "恢复", "1天"],
            "has no major class code",
        ),
        ([2, None, 1, "停车场", "", "", "破损", "修复", "5天"], "has no name"),
        ([2, "道路交通", None, None, None, None, "破损", "修复", "5天"], "no minor class"),
        ([None, None, None, None, "另一单位", None, None, None, None], "no filing criterion"),
        ([None, None, 1, "下水井盖", "", "", "破损", "修复", "1天"], "is named '上水井盖'"),
        ([1, "道路", None, None, None, None, "破损", "修复", "1天"], "is named '公用设施'"),
    ],
)
def test_each_rejection_names_its_row(tmp_path: Path, bad_row: list[object], expected: str) -> None:
    path = make_book(tmp_path, {"部件": [["标题"], HEADER, GOOD, bad_row]})
    problems = rejected(path)
    assert len(problems) == 1, problems
    sheet, row, message = problems[0]
    assert (sheet, row) == ("部件", 4)
    assert expected in message


def test_a_criterion_row_before_any_class_is_refused(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {"事件": [HEADER, [None, None, None, None, None, None, "乱贴", "清除", "1天"]]},
    )
    assert rejected(path) == [("事件", 2, "a filing criterion row comes before any minor class")]


def test_a_class_listed_twice_is_refused(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {
            "部件": [
                HEADER,
                GOOD,
                [None, None, 2, "污水井盖", "排水", "城管局", "缺失", "恢复", "1天"],
                [None, None, 1, "上水井盖", "供水", "城管局", "破损", "修复", "1天"],
                [2, "道路交通", 1, "停车场", "", "", "破损", "修复", "5天"],
                [1, "公用设施", 3, "雨水井盖", "", "", "破损", "修复", "5天"],
            ]
        },
    )
    problems = rejected(path)
    assert [(row, "appears again" in msg) for _, row, msg in problems] == [(4, True), (6, True)]


def test_a_minor_class_without_criteria_is_refused(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {
            "部件": [
                HEADER,
                [1, "公用设施", 1, "上水井盖", "供水", "城管局", None, None, None],
                [None, None, 2, "污水井盖", "排水", "城管局", "缺失", "恢复", "1天"],
            ]
        },
    )
    assert rejected(path) == [
        ("部件", 2, "minor class 0101 上水井盖 has no filing criterion (立案条件) row")
    ]


def test_all_problems_of_all_sheets_are_listed_at_once(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {
            "部件": [
                HEADER,
                GOOD,
                [None, None, None, None, None, None, "破损", "修复", "3周"],
                [None, None, "x", "污水井盖", "", "", "缺失", "恢复", "1天"],
                [None, None, None, None, None, None, "破损", "修复", "3周"],  # skipped: 'x' class
                [None, None, 4, "雨水箅子", "", "", "堵塞", "疏通", "1天"],
                [None, None, None, None, None, None, "破损", "修复", "2个月"],
            ],
            "事件": [
                HEADER,
                ["01", "市容环境", "01", "私搭乱建", "", "", "在建", "制止", "2紧急工作日"],
                [None, None, None, None, None, None, "已形成", "拆除", "十五天"],
            ],
        },
    )
    problems = rejected(path)
    assert [(sheet, row) for sheet, row, _ in problems] == [
        ("部件", 3),
        ("部件", 4),
        ("部件", 7),
        ("事件", 3),
    ]


def test_a_sheet_whose_family_cannot_be_told_is_refused(tmp_path: Path) -> None:
    path = make_book(tmp_path, {"Sheet1": [["立结案标准"], HEADER, GOOD]})
    ((sheet, row, message),) = rejected(path)
    assert (sheet, row) == ("Sheet1", None)
    assert "部件 or 事件" in message


def test_two_sheets_of_one_family_are_refused(tmp_path: Path) -> None:
    path = make_book(tmp_path, {"部件": [HEADER, GOOD], "Components": [HEADER, GOOD]})
    ((sheet, _, message),) = rejected(path)
    assert sheet == "Components" and "one sheet per family" in message


def test_a_header_missing_a_column_is_named(tmp_path: Path) -> None:
    path = make_book(tmp_path, {"部件": [HEADER[:8], GOOD[:8]]})
    ((_, _, message),) = rejected(path)
    assert "处置时限" in message


# --- files that are not workbooks -------------------------------------------------------------


def test_a_missing_file_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="file not found"):
        read_workbook(tmp_path / "nope.xlsx")


def test_a_file_that_is_not_xlsx_is_a_sentence(tmp_path: Path) -> None:
    csv = tmp_path / "catalog.csv"
    csv.write_text("大类代码,大类名称\n")
    with pytest.raises(InvalidInput, match="not an Excel workbook"):
        read_workbook(csv)
    fake = tmp_path / "fake.xlsx"
    fake.write_text("not a zip file")
    with pytest.raises(InvalidInput, match=r"cannot be read as an \.xlsx workbook"):
        read_workbook(fake)


def test_a_workbook_with_no_catalog_sheet_is_a_sentence(tmp_path: Path) -> None:
    path = make_book(tmp_path, {"说明": [["只有说明"]], "数据": [["a", "b"], [1, 2]]})
    with pytest.raises(InvalidInput, match="has no catalog sheet") as caught:
        read_workbook(path)
    assert not isinstance(caught.value, WorkbookRejected)
    assert "说明, 数据" in caught.value.message


def test_a_class_whose_only_row_is_unreadable_is_one_problem(tmp_path: Path) -> None:
    path = make_book(
        tmp_path,
        {
            "部件": [
                HEADER,
                [1, "公用设施", 1, "上水井盖", "供水", "城管局", "缺失", "恢复", "两天"],
            ]
        },
    )
    ((_, row, message),) = rejected(path)
    assert row == 2 and "两天" in message


def test_rows_that_only_carry_formatting_are_not_walked(tmp_path: Path) -> None:
    workbook = Workbook()
    ws = workbook.active
    assert ws is not None
    ws.title = "部件"
    ws.append(HEADER)
    ws.append(GOOD)
    ws.cell(row=1_000_000, column=9).font = Font(bold=True)  # formatted, empty
    path = tmp_path / "formatted.xlsx"
    workbook.save(path)
    assert load_workbook(path)["部件"].max_row == 1_000_000
    spec = read_workbook(path)
    assert family_of(spec, Family.COMPONENT).standard_count == 1
