"""Excel ledgers in and out (openpyxl). Pure: bytes in, rows out; snapshot in, bytes out.

Offices keep their ledgers in Excel, so reading their sheet as they write it is the feature:

- The header row is found, not assumed: a title row ("XX巡察反馈问题整改台账") above it is
  usual. Headers are matched after removing spaces, line breaks and bracketed notes, with the
  usual synonyms (责任单位 = 责任部门 = 牵头单位 …).
- Merged cells carry their value to every row they span (方面 and 问题 are merged over their
  measures). A blank, unmerged 方面/问题 cell continues the one above, as people also write it.
- Import is all or nothing: every row is checked, every problem is reported with its Excel row
  number, and only a workbook without a single error is written (by the service).
- The export writes the same columns, merges 方面/问题 again and round-trips: exporting an
  imported ledger and importing it again gives the same ledger. The sign-off state column is
  informative only; importing never signs anything off (that needs evidence and approval).

One column table per ledger kind (``COLUMNS``): the same reader and writer serve all three.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from cityloop.errors import CityloopError, InvalidInput
from cityloop.ledgers.cn import strip_numbering
from cityloop.ledgers.domain import (
    SHAPES,
    STATE_LABELS_ZH,
    STATUS_LABELS_ZH,
    DeadlineKind,
    DeadlineSpec,
    ItemFacts,
    ItemStatus,
    LedgerKind,
    LedgerSnapshot,
    normalise_hazard_level,
    parse_deadline,
    parse_status,
    resolve_deadline,
)
from cityloop.workcal.domain import WorkingCalendar

MAX_WORKBOOK_BYTES = 10 * 1024 * 1024
MAX_DATA_ROWS = 5000
HEADER_SEARCH_ROWS = 15
MAX_REPORTED_ERRORS = 10

# Where the bytes of an export come from: fixed, so the same ledger exports to the same file.
FIXED_TIMESTAMP = dt.datetime(2000, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a ledger sheet.

    ``field``: where the value goes — ``g1.title`` / ``g2.title`` (group levels), ``g1.held_on``
    etc., or an item field. ``importable`` False for columns the export writes for people only
    (序号, 销号状态). ``width`` in Excel character units.
    """

    header: str
    field: str
    synonyms: tuple[str, ...] = ()
    required: bool = False
    importable: bool = True
    width: float = 14


_SEQ = Column("序号", "seq", ("编号", "序"), importable=False, width=6)
_LEADER = Column(
    "责任领导", "responsible_leader", ("牵头领导", "分管领导", "责任领导同志"), width=10
)
_UNIT = Column(
    "责任单位", "unit", ("责任部门", "牵头单位", "责任科室", "牵头部门", "责任处室"), width=14
)
_PERSON = Column("责任人", "responsible_person", ("具体责任人", "经办人"), width=10)
_DEADLINE = Column("整改时限", "deadline", ("完成时限", "时限", "整改期限", "完成时间"), width=14)
_STAGE = Column("整改阶段", "stage", ("阶段",), width=10)
_STATUS = Column("整改状态", "status", ("状态", "进度"), width=10)
_SIGNOFF = Column("销号状态", "signoff", ("销号情况", "是否销号"), importable=False, width=10)

COLUMNS: Mapping[LedgerKind, tuple[Column, ...]] = {
    LedgerKind.RECTIFICATION: (
        _SEQ,
        Column(
            "方面", "g1.title", ("问题方面", "反馈方面", "问题类别", "方面问题"), True, width=22
        ),
        Column(
            "问题", "g2.title", ("具体问题", "反馈问题", "存在问题", "问题表现"), True, width=30
        ),
        Column("整改措施", "content", ("措施", "整改举措", "具体措施"), True, width=40),
        _LEADER,
        _UNIT,
        _PERSON,
        _DEADLINE,
        Column(
            "完成情况", "completion", ("整改情况", "进展情况", "整改进展", "落实情况"), width=36
        ),
        _STAGE,
        _STATUS,
        _SIGNOFF,
    ),
    LedgerKind.HAZARD: (
        _SEQ,
        Column("检查日期", "g1.held_on", ("排查日期", "检查时间", "排查时间"), True, width=12),
        Column(
            "检查地点或企业",
            "g1.place",
            ("检查地点", "检查单位", "被检查单位", "企业名称", "检查对象", "排查地点"),
            True,
            width=24,
        ),
        Column("检查人", "g1.inspector", ("检查人员", "排查人", "检查组"), width=10),
        Column(
            "隐患描述", "content", ("隐患内容", "存在隐患", "隐患情况", "问题描述"), True, width=36
        ),
        Column("隐患类别", "hazard_class", ("隐患类型", "类别", "行业"), width=10),
        Column("隐患等级", "hazard_level", ("等级", "隐患级别"), width=8),
        Column("隐患位置", "location", ("位置", "具体位置", "隐患部位"), width=18),
        _UNIT,
        _PERSON,
        _DEADLINE,
        Column("整改情况", "completion", ("完成情况", "整改措施及进展"), width=30),
        _STATUS,
        _SIGNOFF,
    ),
    LedgerKind.CHECKLIST: (
        _SEQ,
        Column("分类", "g1.title", ("类别", "项目", "板块"), True, width=20),
        Column("事项", "content", ("工作事项", "任务", "清单事项", "内容"), True, width=40),
        _LEADER,
        _UNIT,
        _PERSON,
        _DEADLINE,
        Column("完成情况", "completion", ("进展情况", "落实情况"), width=30),
        _STAGE,
        _STATUS,
        _SIGNOFF,
    ),
}

GROUP_FIELDS = ("title", "held_on", "place", "inspector")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # the Excel row number (1-based, as Excel shows it); 0 for the workbook itself
    column: str  # the header, or "" for the whole row
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "workbook"
        col = f" {self.column}" if self.column else ""
        return f"{where}{col}: {self.message}"


class WorkbookRejected(InvalidInput):
    """The workbook has errors; nothing was imported. ``errors`` lists every one."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        shown = "; ".join(str(e) for e in errors[:MAX_REPORTED_ERRORS])
        more = f" (and {len(errors) - MAX_REPORTED_ERRORS} more)" if len(errors) > 10 else ""
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        super().__init__(f"nothing was imported, the workbook has {count}: {shown}{more}")
        self.errors = list(errors)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(super().to_dict())
        body["errors"] = [
            {"row": e.row, "column": e.column, "message": e.message} for e in self.errors
        ]
        return body


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row as read: field -> cell value (merged and continued cells filled in)."""

    row: int
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SheetRows:
    kind: LedgerKind
    header_row: int
    columns: tuple[Column, ...]  # the importable columns found, in sheet order
    rows: tuple[RawRow, ...]


def _norm_header(value: object) -> str:
    text = "" if value is None else str(value)
    text = re.sub(r"[（(][^）)]*[）)]", "", text)  # 责任单位（牵头） -> 责任单位
    return re.sub(r"[\s*＊:：]+", "", text)


def _match(header: str, column: Column) -> bool:
    return header == column.header or header in column.synonyms


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_sheet(data: bytes, kind: LedgerKind) -> SheetRows:
    """The data rows of the first sheet, or ``WorkbookRejected`` when the sheet cannot be
    read as a ledger of ``kind`` (not an .xlsx, no header row, a required column missing)."""
    if len(data) > MAX_WORKBOOK_BYTES:
        raise WorkbookRejected(
            [RowError(0, "", f"the file has {len(data)} bytes; at most 10 MiB are allowed")]
        )
    try:
        workbook = load_workbook(io.BytesIO(data), data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError):
        raise WorkbookRejected(
            [RowError(0, "", "not a readable .xlsx workbook (save it as Excel 2007+ .xlsx)")]
        ) from None
    sheet = workbook.worksheets[0]
    filled = _merged_values(sheet)
    spec = COLUMNS[kind]

    def value(row: int, col: int) -> Any:
        if (row, col) in filled:
            return filled[(row, col)]
        return sheet.cell(row=row, column=col).value

    header_row, found = _find_header(sheet, spec, value)
    if header_row == 0:
        wanted = "、".join(c.header for c in spec if c.required)
        raise WorkbookRejected(
            [
                RowError(
                    0,
                    "",
                    f"no header row with the columns {wanted} in the first "
                    f"{HEADER_SEARCH_ROWS} rows",
                )
            ]
        )
    missing = [c.header for c in spec if c.required and c.field not in found]
    if missing:
        raise WorkbookRejected(
            [RowError(header_row, c, "this required column is missing") for c in missing]
        )
    columns = tuple(c for c in spec if c.field in found)
    group_fields = [c.field for c in columns if c.field.startswith("g")]
    rows: list[RawRow] = []
    carried: dict[str, Any] = {}
    errors: list[RowError] = []
    for r in range(header_row + 1, sheet.max_row + 1):
        values = {c.field: value(r, found[c.field]) for c in columns}
        if all(_cell_text(v) == "" for v in values.values()):
            continue
        if len(rows) >= MAX_DATA_ROWS:
            errors.append(RowError(r, "", f"more than {MAX_DATA_ROWS} data rows"))
            break
        # A blank group cell continues the group above, unless a group above it changed on
        # this row: a new 方面 with a blank 问题 is a missing 问题, not the last aspect's one.
        changed_above = False
        for level in (1, 2):
            names = [n for n in group_fields if n.startswith(f"g{level}.")]
            if not names:
                continue
            blank = all(_cell_text(values[n]) == "" for n in names)
            if blank and not changed_above:
                for n in names:
                    values[n] = carried.get(n)
            elif any(carried.get(n) != values[n] for n in names):
                changed_above = True
        for name in group_fields:
            carried[name] = values[name]
        rows.append(RawRow(r, values))
    if errors:
        raise WorkbookRejected(errors)
    return SheetRows(kind, header_row, columns, tuple(rows))


def _merged_values(sheet: Worksheet) -> dict[tuple[int, int], Any]:
    filled: dict[tuple[int, int], Any] = {}
    for merged in sheet.merged_cells.ranges:
        top = sheet.cell(row=merged.min_row, column=merged.min_col).value
        for r in range(merged.min_row, merged.max_row + 1):
            for c in range(merged.min_col, merged.max_col + 1):
                filled[(r, c)] = top
    return filled


def _find_header(
    sheet: Worksheet, spec: Sequence[Column], value: Any
) -> tuple[int, dict[str, int]]:
    best_row, best = 0, dict[str, int]()
    required = {c.field for c in spec if c.required}
    for r in range(1, min(sheet.max_row, HEADER_SEARCH_ROWS) + 1):
        found: dict[str, int] = {}
        for col in range(1, sheet.max_column + 1):
            header = _norm_header(value(r, col))
            if not header:
                continue
            for column in spec:
                if column.importable and column.field not in found and _match(header, column):
                    found[column.field] = col
                    break
        # The row with the most required columns wins; ties go to the first such row.
        if len(required & found.keys()) > len(required & best.keys()):
            best_row, best = r, found
    return best_row, best


# --------------------------------------------------------------------------------------------
# Validating
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupKey:
    """A group's identity in a sheet: its title (and, for an inspection, date/place/person)."""

    title: str
    held_on: dt.date | None = None
    place: str = ""
    inspector: str = ""


@dataclass(frozen=True, slots=True)
class ValidRow:
    """A checked row: its groups, and the item (None for a row declaring a group only)."""

    row: int
    groups: tuple[GroupKey, ...]  # from the top level down
    item: ItemValues | None


@dataclass(frozen=True, slots=True)
class ItemValues:
    content: str
    responsible_leader: str = ""
    unit_id: int | None = None
    co_units: str = ""
    responsible_person: str = ""
    deadline_text: str = ""
    due_on: dt.date | None = None
    due_at: dt.datetime | None = None
    stage: str = ""
    status: ItemStatus = ItemStatus.NOT_STARTED
    completion: str = ""
    hazard_class: str = ""
    hazard_level: str = ""
    location: str = ""


@dataclass
class ImportContext:
    """What validation needs from outside the sheet: departments, stages, feedback date, the
    calendar. ``units`` maps a department's name and its code to its id."""

    units: Mapping[str, int]
    stages: Sequence[str]
    feedback_on: dt.date | None
    calendar: WorkingCalendar
    limits: Mapping[str, int] = field(
        default_factory=lambda: {
            "content": 4000,
            "title": 1000,
            "responsible_leader": 64,
            "responsible_person": 64,
            "completion": 8000,
            "hazard_class": 64,
            "location": 200,
            "place": 200,
            "inspector": 64,
            "co_units": 200,
        }
    )


_UNIT_SPLIT_RE = re.compile(r"[、,，;；/\n]+")


def split_units(text: str) -> list[str]:
    return [u.strip() for u in _UNIT_SPLIT_RE.split(text) if u.strip()]


def _as_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _cell_text(value)
    m = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text)
    if m is None:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


class _RowCheck:
    """Reads one raw row's fields, collecting every error with the row number and header."""

    def __init__(self, raw: RawRow, headers: Mapping[str, str], context: ImportContext) -> None:
        self.raw = raw
        self.headers = headers
        self.context = context
        self.errors: list[RowError] = []

    def err(self, name: str, message: str) -> None:
        self.errors.append(RowError(self.raw.row, self.headers.get(name, name), message))

    def has(self, name: str) -> bool:
        return name in self.headers

    def text(self, name: str, limit_key: str | None = None) -> str:
        value = _cell_text(self.raw.values.get(name))
        limit = self.context.limits.get(limit_key or name.split(".")[-1])
        if limit is not None and len(value) > limit:
            self.err(name, f"has {len(value)} characters; at most {limit} are allowed")
        return value

    def group(self, level: int) -> GroupKey:
        prefix = f"g{level}."
        title = strip_numbering(self.text(prefix + "title", "title"))
        held_on: dt.date | None = None
        if self.has(prefix + "held_on"):
            cell = self.raw.values.get(prefix + "held_on")
            held_on = _as_date(cell)
            if held_on is None:
                shown = _cell_text(cell)
                message = f"'{shown}' is not a date (write 2023-04-18)" if shown else "is empty"
                self.err(prefix + "held_on", message)
        place = self.text(prefix + "place", "place")
        inspector = self.text(prefix + "inspector", "inspector")
        if self.has(prefix + "place") and not place:
            self.err(prefix + "place", "is empty")
        if self.has(prefix + "title") and not title:
            self.err(prefix + "title", "is empty")
        return GroupKey(title or place, held_on, place, inspector)

    def item(self, content: str, requires_unit: bool) -> ItemValues:
        context = self.context
        unit_id: int | None = None
        co_units = ""
        units = split_units(self.text("unit", "co_units"))
        if units:
            unit_id = context.units.get(units[0])
            if unit_id is None:
                self.err("unit", f"'{units[0]}' is not a department (use its name or code)")
            co_units = "、".join(units[1:])
        elif requires_unit:
            self.err("unit", "is empty; every measure needs a responsible unit")
        spec = DeadlineSpec(DeadlineKind.NONE, "")
        due_on: dt.date | None = None
        due_at: dt.datetime | None = None
        cell = self.raw.values.get("deadline")
        try:
            spec = parse_deadline(
                cell if isinstance(cell, dt.date) else _cell_text(cell),
                reference=context.feedback_on,
            )
            due_on, due_at = resolve_deadline(
                spec, start=context.feedback_on, calendar=context.calendar
            )
        except CityloopError as exc:
            self.err("deadline", exc.message)
        stage = self.text("stage")
        if stage and stage not in context.stages:
            known = "、".join(context.stages)
            self.err("stage", f"'{stage}' is not one of this ledger's stages ({known})")
        long_term = spec.kind is DeadlineKind.LONG_TERM
        status = ItemStatus.LONG_TERM if long_term else ItemStatus.NOT_STARTED
        status_text = self.text("status")
        if status_text:
            try:
                status = parse_status(status_text)
            except InvalidInput as exc:
                self.err("status", exc.message)
        level = self.text("hazard_level")
        if level:
            try:
                level = normalise_hazard_level(level)
            except InvalidInput as exc:
                self.err("hazard_level", exc.message)
        return ItemValues(
            content=content,
            responsible_leader=self.text("responsible_leader"),
            unit_id=unit_id,
            co_units=co_units,
            responsible_person=self.text("responsible_person"),
            deadline_text=spec.text,
            due_on=due_on,
            due_at=due_at,
            stage=stage,
            status=status,
            completion=self.text("completion"),
            hazard_class=self.text("hazard_class"),
            hazard_level=level,
            location=self.text("location"),
        )


def validate_rows(sheet: SheetRows, context: ImportContext) -> list[ValidRow]:
    """Check every row; ``WorkbookRejected`` with all errors, or the rows ready to write."""
    shape = SHAPES[sheet.kind]
    headers = {c.field: c.header for c in sheet.columns}
    item_fields = [n for n in headers if not n.startswith("g") and n != "content"]
    errors: list[RowError] = []
    valid: list[ValidRow] = []
    for raw in sheet.rows:
        check = _RowCheck(raw, headers, context)
        groups = tuple(check.group(level) for level in range(1, shape.item_level + 1))
        content = check.text("content")
        item: ItemValues | None = None
        if content:
            item = check.item(content, shape.requires_unit)
        elif any(_cell_text(raw.values.get(n)) for n in item_fields):
            check.err("content", "is empty, but the row has other item columns filled in")
        if check.errors:
            errors.extend(check.errors)
        else:
            valid.append(ValidRow(raw.row, groups, item))
    if errors:
        raise WorkbookRejected(errors)
    return valid


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="center")
_CENTRE = Alignment(wrap_text=True, vertical="center", horizontal="center")
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")


def _item_cell(item: ItemFacts, name: str) -> object:
    if name == "unit":
        return "、".join(u for u in (item.unit_name, item.co_units) if u)
    if name == "deadline":
        return item.deadline_text
    if name == "status":
        return STATUS_LABELS_ZH[item.status]
    if name == "signoff":
        return STATE_LABELS_ZH[item.state]
    return getattr(item, name)


def export_workbook(snapshot: LedgerSnapshot) -> bytes:
    """The ledger as an .xlsx: a title row, the header, one row per item, merged groups.

    Deterministic: the same ledger gives the same bytes (fixed document properties and
    timestamps inside the ZIP), so an export can be compared or checksummed.
    """
    kind = snapshot.ledger.kind
    columns = COLUMNS[kind]
    shape = SHAPES[kind]
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = shape.label[:31]
    last_col = get_column_letter(len(columns))
    sheet.merge_cells(f"A1:{last_col}1")
    title = sheet.cell(row=1, column=1, value=snapshot.ledger.title)
    title.font = Font(bold=True, size=16)
    title.alignment = _CENTRE
    sheet.row_dimensions[1].height = 32
    for index, column in enumerate(columns, start=1):
        cell = sheet.cell(row=2, column=index, value=column.header)
        cell.font = Font(bold=True)
        cell.alignment = _CENTRE
        cell.border = _BORDER
        cell.fill = _HEADER_FILL
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A3"
    col_of = {c.field: i for i, c in enumerate(columns, start=1)}

    row = 3
    merges: list[tuple[int, int, int]] = []  # (column, first row, last row)
    seq = 0
    for top in snapshot.top_groups():
        top_first = row
        leafs = [top] if shape.item_level == 1 else snapshot.children(top.id)
        if not leafs:
            leafs = []
            _write_group_row(sheet, row, col_of, top, None)
            row += 1
        for leaf in leafs:
            leaf_first = row
            items = snapshot.items_of(leaf.id)
            if shape.item_level == 2:
                seq += 1
            entries: list[ItemFacts | None] = list(items) or [None]
            for item in entries:
                if shape.item_level == 1 and item is not None:
                    seq += 1
                _write_group_row(sheet, row, col_of, top, leaf if shape.item_level == 2 else None)
                if item is not None:
                    for name, col in col_of.items():
                        if name in ("seq",) or name.startswith("g"):
                            continue
                        _set(sheet, row, col, _item_cell(item, name))
                if "seq" in col_of and (item is not None or shape.item_level == 2):
                    sheet.cell(row=row, column=col_of["seq"], value=seq)
                row += 1
            if shape.item_level == 2 and row - 1 > leaf_first:
                merges.append((col_of["g2.title"], leaf_first, row - 1))
                merges.append((col_of["seq"], leaf_first, row - 1))
        if row - 1 > top_first:
            for name in ("g1.title", "g1.held_on", "g1.place", "g1.inspector"):
                if name in col_of:
                    merges.append((col_of[name], top_first, row - 1))
    for r in range(3, row):
        for c in range(1, len(columns) + 1):
            styled = sheet.cell(row=r, column=c)
            styled.border = _BORDER
            styled.alignment = _CENTRE if columns[c - 1].width <= 14 else _WRAP
    for col, first, last in merges:
        letter = get_column_letter(col)
        sheet.merge_cells(f"{letter}{first}:{letter}{last}")
    props = workbook.properties
    props.creator = "cityloop"
    props.lastModifiedBy = "cityloop"
    props.created = FIXED_TIMESTAMP
    props.modified = FIXED_TIMESTAMP
    buffer = io.BytesIO()
    # ExcelWriter, not Workbook.save: save() stamps "modified" with the clock.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(workbook, archive).save()
    return normalise_zip(buffer.getvalue())


def _set(sheet: Worksheet, row: int, col: int, value: Any) -> Cell:
    """Write a value; text is always stored as text. openpyxl would store "=…" as a formula,
    and a ledger's words must never run in someone's Excel."""
    cell = sheet.cell(row=row, column=col)
    assert isinstance(cell, Cell), "ledger rows are written before any merge"
    cell.value = value
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"
    return cell


def _write_group_row(
    sheet: Worksheet, row: int, col_of: Mapping[str, int], top: Any, leaf: Any
) -> None:
    for name, col in col_of.items():
        if name.startswith("g1."):
            attr = name[3:]
            value = getattr(top, attr)
            cell = _set(sheet, row, col, value)
            if isinstance(value, dt.date):
                cell.number_format = "yyyy-mm-dd"
        elif name.startswith("g2.") and leaf is not None:
            _set(sheet, row, col, getattr(leaf, name[3:]))


def normalise_zip(data: bytes) -> bytes:
    """Rewrite a ZIP with fixed entry timestamps, so identical content gives identical bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()
