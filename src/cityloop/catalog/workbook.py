"""Read and write a city's filing-standard workbook (立结案标准表), the form cities maintain.

The shape, as ``yuncheng-case-standard.xlsx`` shows it: one sheet per family (部件, 事件), a
title row, a header row 大类代码/大类名称/小类代码/小类名称/处置单位/主管部门/立案条件/结案条件/
处置时限, then one row per filing criterion. Class cells are merged (or left blank) over the
criterion rows below them; codes are written as numbers (1) or text ('03').

Reading is all or nothing: every row the reader cannot understand is collected, and the caller
gets either a complete ``CatalogSpec`` or one ``WorkbookRejected`` listing every problem with its
sheet and row, so a city fixes its file in one pass instead of one error at a time.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.worksheet import Worksheet

from cityloop.catalog.domain import (
    DEFAULT_EXTENSION_FLOOR,
    FAMILY_LABELS_ZH,
    CatalogSpec,
    Family,
    FamilySpec,
    MajorSpec,
    MinorSpec,
    StandardSpec,
    clean_name,
    clean_text,
    family_from_word,
    is_extension_code,
    read_code,
)
from cityloop.errors import InvalidInput
from cityloop.workcal.domain import DEFAULT_UNIT_MAP, TimeLimit, UnitMeaning, parse_time_limit

# Column keys, in the order the export writes them, with the header label the export uses and
# the labels the reader accepts (cities vary the wording a little).
COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("major_code", "大类代码", ("大类代码", "大类编码", "大类编号")),
    ("major_name", "大类名称", ("大类名称", "大类")),
    ("minor_code", "小类代码", ("小类代码", "小类编码", "小类编号")),
    ("minor_name", "小类名称", ("小类名称", "小类")),
    ("handling_units", "处置单位", ("处置单位", "责任单位", "处置责任单位")),
    ("supervising_authority", "主管部门", ("主管部门", "监管部门")),
    ("filing_criterion", "立案条件", ("立案条件", "立案标准")),
    ("closing_criterion", "结案条件", ("结案条件", "结案标准")),
    ("limit", "处置时限", ("处置时限", "处理时限")),
)
OPTIONAL_COLUMNS = frozenset({"handling_units", "supervising_authority"})
COLUMN_WIDTHS = {
    "major_code": 9,
    "major_name": 14,
    "minor_code": 9,
    "minor_name": 20,
    "handling_units": 40,
    "supervising_authority": 32,
    "filing_criterion": 52,
    "closing_criterion": 22,
    "limit": 14,
}
HEADER_SEARCH_ROWS = 30  # the header is near the top; titles and notes may come first
MAX_NAME_LENGTH = 128
MAX_LIMIT_LENGTH = 64
DEFAULT_TITLE = "数字化城市管理部件事件立案、处置和结案标准"

_LABEL_TO_KEY = {label: key for key, _, labels in COLUMNS for label in labels}
_TITLE_FAMILY_RE = re.compile(r"[(（]\s*(部件|事件)类?\s*[)）]")


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Something the reader could not understand, and where."""

    sheet: str
    row: int | None
    message: str

    def __str__(self) -> str:
        where = f"sheet {self.sheet}" if self.row is None else f"sheet {self.sheet}, row {self.row}"
        return f"{where}: {self.message}"


class WorkbookRejected(InvalidInput):
    """The workbook has rows the reader cannot understand; nothing was imported.

    The message lists every problem, one per line, so the CLI's one-sentence error shows them
    all; ``problems`` keeps them structured for the web layer.
    """

    def __init__(self, source: str, problems: list[RowProblem]) -> None:
        self.problems = problems
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{source} was not imported ({count} {noun}; nothing was changed):\n{lines}"
        )


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _label(value: object) -> str:
    return re.sub(r"\s+", "", str(value)) if value is not None else ""


# --- reading ------------------------------------------------------------------------------


def open_workbook(path: Path) -> Workbook:
    """Open an .xlsx file, or say in one sentence why it cannot be opened."""
    if not path.exists():
        raise InvalidInput(f"file not found: {path}", field="file")
    if path.is_dir():
        raise InvalidInput(f"expected an .xlsx file, got a directory: {path}", field="file")
    if path.suffix.lower() not in {".xlsx", ".xlsm"}:
        raise InvalidInput(
            f"{path.name} is not an Excel workbook: expected an .xlsx file "
            "(save older .xls files as .xlsx first)",
            field="file",
        )
    try:
        # Not read-only: merged-cell ranges are only available on a fully loaded sheet.
        return load_workbook(path, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise InvalidInput(
            f"{path.name} cannot be read as an .xlsx workbook ({type(exc).__name__}: {exc})",
            field="file",
        ) from None


@dataclass(frozen=True, slots=True)
class _Cell:
    value: Any  # with merged ranges resolved to their top-left value
    fresh: bool  # written in this row (not blank, not the continuation of a merged range)

    @property
    def blank(self) -> bool:
        return _is_blank(self.value)


def _merged_anchors(ws: Worksheet) -> dict[tuple[int, int], tuple[int, int]]:
    """(row, col) of every non-top-left cell of a merged range -> its range's top-left."""
    anchors: dict[tuple[int, int], tuple[int, int]] = {}
    for rng in ws.merged_cells.ranges:
        top = (rng.min_row, rng.min_col)
        for row in range(rng.min_row, rng.max_row + 1):
            for col in range(rng.min_col, rng.max_col + 1):
                if (row, col) != top:
                    anchors[(row, col)] = top
    return anchors


def _last_value_row(ws: Worksheet) -> int:
    """The last row that holds a value.

    Not ``ws.max_row``: that also counts rows that carry only formatting, which some workbooks
    have down to row 1,048,576, and reading those would create millions of empty cells.
    """
    return max(
        (row for (row, _), cell in ws._cells.items() if not _is_blank(cell.value)), default=0
    )


def _find_header(ws: Worksheet) -> tuple[int | None, dict[str, int], list[str]]:
    """The header row and each column key's 1-based column, found by the labels.

    Returns (None, {}, missing labels) when a row looks like a header (three labels or more) but
    lacks required ones, and (None, {}, []) when the sheet has no header-like row at all.
    """
    labels = {key: label for key, label, _ in COLUMNS}
    required = [key for key, _, _ in COLUMNS if key not in OPTIONAL_COLUMNS]
    best_missing: list[str] = []
    rows = ws.iter_rows(min_row=1, max_row=min(ws.max_row, HEADER_SEARCH_ROWS), values_only=True)
    for row_no, values in enumerate(rows, start=1):
        found: dict[str, int] = {}
        for col, value in enumerate(values, start=1):
            key = _LABEL_TO_KEY.get(_label(value))
            if key is not None and key not in found:
                found[key] = col
        missing = [labels[key] for key in required if key not in found]
        if not missing:
            return row_no, found, []
        if len(found) >= 3 and not best_missing:
            best_missing = missing
    return None, {}, best_missing


def _sheet_family(ws: Worksheet, header_row: int) -> Family | None:
    """The family from the sheet name (部件/事件/components/events), else from the title rows."""
    family = family_from_word(ws.title)
    if family is not None:
        return family
    words = {f for w, f in (("部件", Family.COMPONENT), ("事件", Family.EVENT)) if w in ws.title}
    lowered = ws.title.lower()
    words |= {
        f for w, f in (("component", Family.COMPONENT), ("event", Family.EVENT)) if w in lowered
    }
    if len(words) == 1:
        return words.pop()
    title = " ".join(
        str(cell.value)
        for row in ws.iter_rows(min_row=1, max_row=header_row - 1)
        for cell in row
        if isinstance(cell.value, str)
    )
    match = _TITLE_FAMILY_RE.search(title)
    if match is not None:
        return family_from_word(match.group(1))
    in_title = {f for w, f in (("部件", Family.COMPONENT), ("事件", Family.EVENT)) if w in title}
    return in_title.pop() if len(in_title) == 1 else None


class _SheetReader:
    """Walks one sheet's rows, carrying classes down, collecting specs and problems.

    After a class cell it cannot read, the reader skips the rows of that class silently: they
    would otherwise land in the class above and bury the real problem under follow-on ones.
    """

    def __init__(
        self,
        ws: Worksheet,
        header_row: int,
        columns: dict[str, int],
        unit_map: Mapping[str, UnitMeaning],
        extension_floor: int,
    ) -> None:
        self.ws = ws
        self.header_row = header_row
        self.columns = columns
        self.unit_map = unit_map
        self.extension_floor = extension_floor
        self.problems: list[RowProblem] = []
        self.majors: list[MajorSpec] = []
        # The class being read, and what has been read into it so far.
        self._major: tuple[str, str, int] | None = None  # code, name, first row
        self._minors: list[MinorSpec] = []
        self._minor: tuple[str, str, int] | None = None  # 4-digit code, name, first row
        self._standards: list[StandardSpec] = []
        self._rows_attempted = 0  # criterion rows seen for the minor class, readable or not
        self._major_broken = False  # the current major class's code cell was unreadable
        self._minor_broken = False
        self._handling = ""
        self._authority = ""
        self._seen_majors: dict[str, tuple[str, int]] = {}
        self._seen_minors: dict[str, tuple[str, int]] = {}

    def problem(self, row: int | None, message: str) -> None:
        self.problems.append(RowProblem(self.ws.title, row, message))

    # --- class cells

    def _code(self, cell: _Cell, row: int, what: str) -> str | None:
        try:
            return read_code(cell.value)
        except ValueError:
            self.problem(row, f"{what} code {cell.value!r} is not a number from 01 to 99")
            return None

    def _name(self, cell: _Cell, row: int, what: str) -> str | None:
        if cell.blank:
            return None
        name = clean_name(cell.value)
        if len(name) > MAX_NAME_LENGTH:
            self.problem(row, f"{what} name is longer than {MAX_NAME_LENGTH} characters")
        return name

    def _close_minor(self) -> None:
        if self._minor is not None:
            code, name, first_row = self._minor
            if not self._standards and not self._rows_attempted:
                self.problem(
                    first_row, f"minor class {code} {name} has no filing criterion (立案条件) row"
                )
            self._minors.append(
                MinorSpec(
                    code=code,
                    name=name,
                    is_extension=is_extension_code(code, self.extension_floor),
                    standards=tuple(self._standards),
                    source_row=first_row,
                )
            )
        self._minor = None
        self._minor_broken = False
        self._standards = []
        self._rows_attempted = 0

    def _close_major(self) -> None:
        self._close_minor()
        if self._major is not None:
            code, name, first_row = self._major
            self.majors.append(
                MajorSpec(
                    code=code,
                    name=name,
                    is_extension=is_extension_code(code, self.extension_floor),
                    minors=tuple(self._minors),
                    source_row=first_row,
                )
            )
        self._major = None
        self._major_broken = False
        self._minors = []

    def _conflict(self, what: str, code: str, first: tuple[str, int], name: str, row: int) -> None:
        first_name, first_row = first
        if first_name != name:
            self.problem(
                row,
                f"{what} {code} is named {first_name!r} at row {first_row} and {name!r} here",
            )
        else:
            self.problem(
                row,
                f"{what} {code} {name} appears again (first at row {first_row}); "
                f"list each {what}'s rows together",
            )

    def _major_cells(self, row: int, code_cell: _Cell, name_cell: _Cell) -> bool:
        """Read the major-class cells of a row. True when the row starts a major class."""
        if not code_cell.fresh:
            name = self._name(name_cell, row, "major class") if name_cell.fresh else None
            current = self._major[1] if self._major is not None else None
            if name is not None and name != current and not self._major_broken:
                self.problem(row, f"major class name {name!r} has no major class code")
            return False
        code = self._code(code_cell, row, "major class")
        if code is not None and (len(code) != 2 or code == "00"):
            self.problem(row, f"major class code {code_cell.value!r} is not a number from 01 to 99")
            code = None
        if code is None:
            self._close_major()
            self._major_broken = True
            return False
        name = self._name(name_cell, row, "major class")
        if self._major is not None and code == self._major[0]:
            # The same code written again inside its block (workbooks without merged cells).
            if name is not None and name != self._major[1]:
                self._conflict("major class", code, self._major[1:], name, row)
            return False
        if name is None:
            self.problem(row, f"major class {code} has no name (大类名称)")
            name = ""
        if code in self._seen_majors:
            self._conflict("major class", code, self._seen_majors[code], name, row)
        self._close_major()
        self._seen_majors.setdefault(code, (name, row))
        self._major = (code, name, row)
        return True

    def _minor_cells(self, row: int, code_cell: _Cell, name_cell: _Cell, new_major: bool) -> bool:
        """Read the minor-class cells of a row. True when the row starts a minor class."""
        if self._major_broken:
            return False
        if not code_cell.fresh:
            if new_major and self._major is not None:
                self.problem(
                    row, f"major class {self._major[0]} starts here but the row has no minor class"
                )
                self._minor_broken = True  # its criterion rows belong to no class: skip them
            name = self._name(name_cell, row, "minor class") if name_cell.fresh else None
            current = self._minor[1] if self._minor is not None else None
            if name is not None and name != current and not self._minor_broken:
                self.problem(row, f"minor class name {name!r} has no minor class code")
            return False
        if self._major is None:
            self.problem(row, f"minor class {code_cell.value!r} comes before any major class")
            return False
        code = self._code(code_cell, row, "minor class")
        major_code = self._major[0]
        if code is not None and len(code) == 4:
            if code[:2] != major_code:
                self.problem(
                    row, f"minor class code {code} does not belong to major class {major_code}"
                )
                code = None
            else:
                code = code[2:]
        if code is not None and (len(code) != 2 or code == "00"):
            self.problem(row, f"minor class code {code_cell.value!r} is not a number from 01 to 99")
            code = None
        if code is None:
            self._close_minor()
            self._minor_broken = True
            return False
        code = major_code + code
        name = self._name(name_cell, row, "minor class")
        if self._minor is not None and code == self._minor[0]:
            if name is not None and name != self._minor[1]:
                self._conflict("minor class", code, self._minor[1:], name, row)
            return False
        if name is None:
            self.problem(row, f"minor class {code} has no name (小类名称)")
            name = ""
        if code in self._seen_minors:
            self._conflict("minor class", code, self._seen_minors[code], name, row)
        self._close_minor()
        self._seen_minors.setdefault(code, (name, row))
        self._minor = (code, name, row)
        self._handling = ""
        self._authority = ""
        return True

    # --- criterion cells

    def _limit(self, cell: _Cell, row: int) -> tuple[bool, TimeLimit | None]:
        """(readable, limit). An empty cell is readable and has no limit."""
        if cell.blank:
            return True, None
        try:
            limit = parse_time_limit(str(cell.value), self.unit_map)
        except InvalidInput as exc:
            self.problem(row, exc.message)
            return False, None
        if len(limit.text) > MAX_LIMIT_LENGTH:
            self.problem(row, f"the time limit is longer than {MAX_LIMIT_LENGTH} characters")
            return False, None
        return True, limit

    def _criterion_row(self, row: int, cells: dict[str, _Cell]) -> None:
        filing = cells["filing_criterion"]
        closing = cells["closing_criterion"]
        if self._minor is None:
            self.problem(row, "a filing criterion row comes before any minor class")
            return
        if filing.blank:
            self.problem(row, "the filing criterion (立案条件) is empty")
            return
        readable, limit = self._limit(cells["limit"], row)
        if not readable:
            return
        self._standards.append(
            StandardSpec(
                filing_criterion=clean_text(filing.value),
                closing_criterion="" if closing.blank else clean_text(closing.value),
                limit=limit,
                handling_units=self._handling,
                supervising_authority=self._authority,
                source_row=row,
            )
        )

    def read(self) -> None:
        anchors = _merged_anchors(self.ws)

        def cell(row_no: int, key: str) -> _Cell:
            col = self.columns.get(key)
            if col is None:
                return _Cell(None, False)
            top = anchors.get((row_no, col))
            if top is not None:
                return _Cell(self.ws.cell(row=top[0], column=top[1]).value, False)
            value = self.ws.cell(row=row_no, column=col).value
            return _Cell(value, not _is_blank(value))

        for row_no in range(self.header_row + 1, _last_value_row(self.ws) + 1):
            cells = {key: cell(row_no, key) for key, _, _ in COLUMNS}
            if not any(c.fresh for c in cells.values()):
                continue  # blank, or only the continuation of merged cells above
            new_major = self._major_cells(row_no, cells["major_code"], cells["major_name"])
            new_minor = self._minor_cells(
                row_no, cells["minor_code"], cells["minor_name"], new_major
            )
            # Blank or merged 处置单位/主管部门 cells carry down within the minor class.
            if not cells["handling_units"].blank:
                self._handling = clean_text(cells["handling_units"].value)
            if not cells["supervising_authority"].blank:
                self._authority = clean_text(cells["supervising_authority"].value)
            has_criterion = any(
                cells[key].fresh for key in ("filing_criterion", "closing_criterion", "limit")
            )
            if self._major_broken or self._minor_broken:
                continue
            if has_criterion:
                if self._minor is not None:
                    self._rows_attempted += 1
                self._criterion_row(row_no, cells)
            elif not (new_major or new_minor):
                self.problem(row_no, "the row has values but no filing criterion (立案条件)")
        self._close_major()
        if not self.majors and not self.problems:
            self.problem(None, "the sheet has a header but no classes below it")


def read_workbook(
    path: Path,
    *,
    unit_map: Mapping[str, UnitMeaning] = DEFAULT_UNIT_MAP,
    extension_floor: int = DEFAULT_EXTENSION_FLOOR,
) -> CatalogSpec:
    """Read a city's workbook into a ``CatalogSpec`` (one ``FamilySpec`` per family sheet).

    Sheets without the header row (notes, covers) are ignored. Raises ``InvalidInput`` when the
    file cannot be opened or has no catalog sheet, and ``WorkbookRejected`` listing every row it
    cannot understand.
    """
    workbook = open_workbook(path)
    try:
        return read_sheets(
            workbook.worksheets,
            source=path.name,
            unit_map=unit_map,
            extension_floor=extension_floor,
        )
    finally:
        workbook.close()


def read_sheets(
    sheets: Iterable[Worksheet],
    *,
    source: str,
    unit_map: Mapping[str, UnitMeaning] = DEFAULT_UNIT_MAP,
    extension_floor: int = DEFAULT_EXTENSION_FLOOR,
) -> CatalogSpec:
    problems: list[RowProblem] = []
    families: dict[Family, FamilySpec] = {}
    sheet_names: list[str] = []
    for ws in sheets:
        sheet_names.append(ws.title)
        header_row, found, missing = _find_header(ws)
        if header_row is None:
            if missing:
                problems.append(
                    RowProblem(ws.title, None, f"the header row lacks {'/'.join(missing)}")
                )
            continue
        family = _sheet_family(ws, header_row)
        if family is None:
            problems.append(
                RowProblem(
                    ws.title,
                    None,
                    "cannot tell whether the sheet lists components or events; "
                    "name it 部件 or 事件",
                )
            )
            continue
        if family in families:
            problems.append(
                RowProblem(
                    ws.title,
                    None,
                    f"sheet {families[family].sheet} already lists the {family.value}s "
                    f"({family.label_zh}); one sheet per family",
                )
            )
            continue
        reader = _SheetReader(ws, header_row, found, unit_map, extension_floor)
        reader.read()
        problems.extend(reader.problems)
        families[family] = FamilySpec(family=family, majors=tuple(reader.majors), sheet=ws.title)
    if problems:
        raise WorkbookRejected(source, problems)
    if not families:
        labels = "/".join(label for _, label, _ in COLUMNS)
        raise InvalidInput(
            f"{source} has no catalog sheet: none of its sheets ({', '.join(sheet_names)}) "
            f"has the header row {labels}",
            field="file",
        )
    ordered = tuple(families[f] for f in Family if f in families)
    return CatalogSpec(families=ordered)


# --- writing ------------------------------------------------------------------------------

_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", start_color="DDE7F0", end_color="DDE7F0")
_CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)
_LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)
_CENTRED_KEYS = frozenset({"major_code", "major_name", "minor_code", "minor_name", "limit"})


def _write_sheet(ws: Worksheet, spec: FamilySpec, title: str) -> None:
    col = {key: index for index, (key, _, _) in enumerate(COLUMNS, start=1)}
    last_col = get_column_letter(len(COLUMNS))
    ws.cell(row=1, column=1, value=f"{title}({spec.family.label_zh}类)")
    ws.merge_cells(f"A1:{last_col}1")
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    ws.cell(row=1, column=1).alignment = _CENTRE
    ws.row_dimensions[1].height = 32
    for key, label, _ in COLUMNS:
        header = ws.cell(row=2, column=col[key], value=label)
        header.font = Font(bold=True)
        header.fill = _HEADER_FILL
        header.alignment = _CENTRE
        header.border = _BORDER
        ws.column_dimensions[get_column_letter(col[key])].width = COLUMN_WIDTHS[key]
    ws.row_dimensions[2].height = 22

    def merge_down(key: str, first: int, last: int) -> None:
        if last > first:
            letter = get_column_letter(col[key])
            ws.merge_cells(f"{letter}{first}:{letter}{last}")

    row = 3
    for major in spec.majors:
        major_first = row
        for minor in major.minors:
            minor_first = row
            shared = {
                key: len({getattr(s, key) for s in minor.standards}) == 1
                for key in ("handling_units", "supervising_authority")
            }
            for index, standard in enumerate(minor.standards):
                values: dict[str, str | None] = {
                    "filing_criterion": standard.filing_criterion,
                    "closing_criterion": standard.closing_criterion or None,
                    "limit": standard.limit_text,
                }
                if index == 0:
                    values["minor_code"] = minor.code[2:]
                    values["minor_name"] = minor.name
                    if row == major_first:
                        values["major_code"] = major.code
                        values["major_name"] = major.name
                for key in ("handling_units", "supervising_authority"):
                    if index == 0 or not shared[key]:
                        values[key] = getattr(standard, key) or None
                for key, _, _ in COLUMNS:
                    target = ws.cell(row=row, column=col[key], value=values.get(key))
                    target.border = _BORDER
                    target.alignment = _CENTRE if key in _CENTRED_KEYS else _LEFT
                    if key in ("major_code", "minor_code"):
                        target.number_format = "@"  # keep the leading zero: "01", not 1
                row += 1
            minor_last = row - 1
            for key in ("minor_code", "minor_name"):
                merge_down(key, minor_first, minor_last)
            for key in ("handling_units", "supervising_authority"):
                if shared[key]:
                    merge_down(key, minor_first, minor_last)
        for key in ("major_code", "major_name"):
            merge_down(key, major_first, row - 1)
    ws.freeze_panes = "A3"
    ws.print_title_rows = "1:2"


def check_export_path(path: Path) -> None:
    """Refuse a target the export cannot write, before any work is done."""
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory; give a file name ending in .xlsx", field="file")
    if path.suffix.lower() != ".xlsx":
        raise InvalidInput(f"the export file must end in .xlsx, got {path.name}", field="file")
    if not path.parent.is_dir():
        raise InvalidInput(f"the folder {path.parent} does not exist", field="file")


def write_workbook(path: Path, catalog: CatalogSpec, *, title: str = DEFAULT_TITLE) -> None:
    """Write the catalog in the shape ``read_workbook`` reads: one sheet per family.

    Written to a temporary file beside ``path`` and moved into place, so a failed export never
    leaves a half-written workbook where the old one was.
    """
    check_export_path(path)
    workbook = Workbook()
    default_sheet = workbook.active
    if default_sheet is not None:
        workbook.remove(default_sheet)
    for spec in catalog.families:
        _write_sheet(workbook.create_sheet(FAMILY_LABELS_ZH[spec.family]), spec, title)
    handle, temp_name = tempfile.mkstemp(suffix=".xlsx", dir=path.parent, prefix=".cityloop-")
    os.close(handle)
    try:
        workbook.save(temp_name)
        # mkstemp makes the file private (0600); give it the mode a plain save would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
