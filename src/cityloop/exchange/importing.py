"""Bulk import of historical cases from CSV or Excel, driven by a mapping file.

Why a separate writer and not ``cases.service.report`` per row: intake validates, routes and
clocks one live case per transaction, which is right for a citizen and hopeless for ten years
of history (a million rows would take hours). Here every row is read and checked in Python,
then written in batches straight to the driver (``exec_driver_sql`` executemany with values
already in storage form, the path ``demo.writer`` uses), all inside ONE transaction: by default
a run is all-or-nothing, so a file with one bad row leaves the database untouched and the
operator gets every rejection listed by row, field and reason. ``partial`` imports the good rows
and lists the bad ones.

Each imported case carries its historical timestamps, final state, class, department and
location (converted to WGS-84, with the grid cell when a grid is stored), and a synthetic event
history (``domain.plan_events``) written by ``import:<source>``, so the KPIs read it like live
history. A re-run is idempotent: ``exchange_imported_case`` keys every case by (source,
external key), and a key already there is counted as "already imported", never written again.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import time
import zipfile
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
from sqlalchemy import Connection, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityloop.cases.clocks import Context, start_step
from cityloop.cases.domain import WAIT_POINTS, CaseState, Channel, Step
from cityloop.cases.models import Case, CaseCodeSerial
from cityloop.cases.settings import OutsidePolicy
from cityloop.catalog.domain import read_code
from cityloop.catalog.models import FilingStandard, MinorClass
from cityloop.db.base import utcnow
from cityloop.demo.history import SimCase
from cityloop.errors import ConfigurationError, InvalidInput
from cityloop.exchange.domain import (
    Field,
    date_parser,
    milestone_problem,
    plan_events,
)
from cityloop.exchange.models import ImportedCase, ImportRun
from cityloop.exchange.schemas import ImportMapping, ImportRejection, ImportReport
from cityloop.grid.coords import (
    CHINA_LAT_MAX,
    CHINA_LAT_MIN,
    CHINA_LON_MAX,
    CHINA_LON_MIN,
    CoordSystem,
    parse_coord_system,
    to_wgs84_array,
)
from cityloop.grid.service import cell_infos, loaded_grids, locate_all
from cityloop.org.models import Department
from cityloop.workcal.domain import LimitArrays, TimeLimit, parse_time_limit

BATCH = 5_000  # rows per executemany: large enough to amortise, small enough to stream
MAX_LISTED = 1_000  # rejections kept in the report; every one still goes to ``on_reject``
_IN_CHUNK = 900  # values per IN (...) query: under every backend's parameter limit

_FAMILY_WORDS = {
    "component": "component",
    "部件": "component",
    "部件类": "component",
    "event": "event",
    "事件": "event",
    "事件类": "event",
}
_FAMILY_LETTER = {"C": "component", "E": "event", "B": "component", "S": "event"}


class ImportProgress(Protocol):
    """Where the importer reports progress (the CLI draws a rich progress bar)."""

    def start(self, total: int | None) -> None: ...

    def advance(self, rows: int) -> None: ...


# --------------------------------------------------------------------------------------------
# Reading the source file
# --------------------------------------------------------------------------------------------


@dataclass
class Source:
    """The header and the data rows of a file, with each row's number as a spreadsheet shows
    it (so an operator finds "row 1234" where Excel puts it)."""

    header: list[str]
    rows: Iterator[tuple[int, Sequence[object]]]
    total: int | None  # an estimate for the progress bar
    strict_width: bool  # CSV: a row with fewer fields than the header is malformed
    closer: Callable[[], None]


def source_format(path: Path, mapping: ImportMapping) -> str:
    if mapping.format is not None:
        return mapping.format
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    raise InvalidInput(
        f"unknown format of '{path.name}': name it .csv or .xlsx, or set format in the mapping",
        field="format",
    )


def open_source(path: Path, mapping: ImportMapping) -> Source:
    """Open a CSV or Excel file and read its header (refusing a header that lacks a mapped
    column, before anything is written)."""
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    kind = source_format(path, mapping)
    source = _csv_source(path, mapping) if kind == "csv" else _xlsx_source(path, mapping)
    try:
        _check_header(source.header, mapping)
    except BaseException:
        source.closer()
        raise
    return source


def _check_header(header: list[str], mapping: ImportMapping) -> None:
    seen: set[str] = set()
    for name in header:
        if name and name in seen and name in mapping.columns:
            raise InvalidInput(f"column '{name}' appears twice in the header", field="columns")
        seen.add(name)
    missing = [c for c in mapping.columns if c not in seen]
    if missing:
        shown = ", ".join(f"'{h}'" for h in header if h) or "(nothing)"
        raise InvalidInput(
            f"the mapping names column(s) {', '.join(repr(m) for m in missing)} that the file's "
            f"header (row {mapping.header_row}) does not have; the header has: {shown}",
            field="columns",
        )


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _csv_source(path: Path, mapping: ImportMapping) -> Source:
    total = max(0, _count_lines(path) - mapping.header_row)
    fh: IO[str] = path.open(encoding=mapping.encoding, newline="")
    reader = csv.reader(fh, delimiter=mapping.delimiter, strict=True)
    number = 0

    def fail(exc: Exception) -> InvalidInput:
        if isinstance(exc, UnicodeDecodeError):
            return InvalidInput(
                f"'{path.name}' is not valid {mapping.encoding} near row {number + 1}; set "
                "encoding in the mapping (files saved by Chinese Excel are usually gb18030)",
                field="encoding",
            )
        return InvalidInput(f"malformed CSV at row {number + 1}: {exc}", field="file")

    header: list[str] | None = None
    try:
        for values in reader:
            number += 1
            if number == mapping.header_row:
                header = [v.strip().lstrip("\ufeff") for v in values]
                break
    except (csv.Error, UnicodeDecodeError) as exc:
        fh.close()
        raise fail(exc) from None
    if header is None:
        fh.close()
        raise InvalidInput(f"'{path.name}' has no header row {mapping.header_row}", field="file")

    def rows() -> Iterator[tuple[int, Sequence[object]]]:
        nonlocal number
        try:
            for values in reader:
                number += 1
                if values and any(values):
                    yield number, values
        except (csv.Error, UnicodeDecodeError) as exc:
            raise fail(exc) from None

    return Source(header, rows(), total, True, fh.close)


def _xlsx_source(path: Path, mapping: ImportMapping) -> Source:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # read_only streams the sheet: a million-row workbook never sits in memory at once.
        wb = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InvalidInput(f"'{path.name}' is not a readable .xlsx workbook: {exc}") from None
    if mapping.sheet is not None and mapping.sheet not in wb.sheetnames:
        wb.close()
        raise InvalidInput(
            f"no sheet named '{mapping.sheet}'; the workbook has: {', '.join(wb.sheetnames)}",
            field="sheet",
        )
    ws = wb[mapping.sheet] if mapping.sheet is not None else wb.worksheets[0]
    total = ws.max_row - mapping.header_row if ws.max_row else None
    it = ws.iter_rows(values_only=True)
    number = 0
    header: list[str] | None = None
    for values in it:
        number += 1
        if number == mapping.header_row:
            header = [_text(v) or "" for v in values]
            break
    if header is None:
        wb.close()
        raise InvalidInput(f"'{path.name}' has no header row {mapping.header_row}", field="file")

    def rows() -> Iterator[tuple[int, Sequence[object]]]:
        nonlocal number
        for values in it:
            number += 1
            if any(v is not None and v != "" for v in values):
                yield number, values

    return Source(header, rows(), total, False, wb.close)


def _text(value: object) -> str | None:
    """A cell as text: stripped, empty as None, whole floats without ".0" (Excel stores
    numeric codes as floats)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------------------------
# Parsing rows
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Parsed:
    """One good row, resolved to our ids and UTC instants."""

    row: int
    key: str
    code: str | None
    external_id: str | None
    channel: str
    state: CaseState
    family: str | None
    minor_id: int | None
    limit_text: str | None
    department_id: int | None
    description: str
    address: str | None
    lon: float | None
    lat: float | None
    system: CoordSystem
    reported_at: dt.datetime
    filed_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    deadline: dt.datetime | None
    disposed_at: dt.datetime | None
    closed_at: dt.datetime | None
    # Filled by the batch stage.
    wlon: float | None = None
    wlat: float | None = None
    cell_code: str | None = None
    subdistrict_id: int | None = None
    community_id: int | None = None
    outside: bool = False


@dataclass(frozen=True, slots=True)
class ClassInfo:
    minor_id: int
    family: str
    limit_text: str | None  # the first active filing-standard row's disposal limit


class Lookups:
    """Every department and class of the city, read once per run.

    A city has a few hundred of each and a million rows name them over and over; holding them
    in two dictionaries also keeps the parser free of the session, so it can run in a forked
    process. The rules are those of ``org.service.department_by_code`` (the exact code) and
    ``catalog.service.minor_by_code`` (a 4-digit code as ``read_code`` reads it, retired
    classes included: old cases still name them).
    """

    def __init__(self, session: Session) -> None:
        self._departments: dict[str, int] = {
            code: int(dept_id)
            for code, dept_id in session.execute(select(Department.code, Department.id))
        }
        limits: dict[int, str] = {}
        for minor_id, limit in session.execute(
            select(FilingStandard.minor_id, FilingStandard.limit_text)
            .where(FilingStandard.active.is_(True), FilingStandard.limit_text.is_not(None))
            .order_by(FilingStandard.position.desc(), FilingStandard.id.desc())
        ):
            limits[int(minor_id)] = str(limit)  # the lowest position is written last: it wins
        self._classes: dict[tuple[str, str], ClassInfo] = {
            (family, code): ClassInfo(int(minor_id), family, limits.get(int(minor_id)))
            for minor_id, family, code in session.execute(
                select(MinorClass.id, MinorClass.family, MinorClass.code)
            )
        }

    def department(self, code: str) -> int | None:
        return self._departments.get(code)

    def minor(self, family: str, code: str) -> ClassInfo | None:
        try:
            digits = read_code(code)
        except ValueError:
            return None
        return self._classes.get((family, digits)) if len(digits) == 4 else None


class _Reject(Exception):
    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.value = None if value is None else str(value)[:200]
        self.reason = reason


_CHANNELS = frozenset(c.value for c in Channel)


class RowParser:
    """Turns one source row into ``Parsed`` or a rejection. Built once per run: column
    indices, value maps and the date parser are resolved up front, so the per-row work is a
    few dictionary lookups."""

    def __init__(self, mapping: ImportMapping, header: list[str], lookups: Lookups) -> None:
        self.mapping = mapping
        self.lookups = lookups
        self.width = len(header)
        self.index: dict[Field, int] = {f: header.index(c) for c, f in mapping.columns.items()}
        self.needed = max(self.index.values()) + 1
        self.values = {f: dict(t) for f, t in mapping.values.items()}
        self.defaults = dict(mapping.defaults)
        self.parse_date = date_parser(mapping.date_formats, mapping.timezone)
        assert mapping.key is not None
        self.key_field = mapping.key

    def _raw(self, values: Sequence[object], f: Field) -> object:
        i = self.index.get(f)
        return values[i] if i is not None and i < len(values) else None

    def _get(self, values: Sequence[object], f: Field) -> str | None:
        value = _text(self._raw(values, f))
        if value is not None:
            table = self.values.get(f)
            if table is not None:
                value = table.get(value, value)
        if value is None:
            value = self.defaults.get(f)
        return value

    def key_of(self, values: Sequence[object]) -> str | None:
        """The row's re-run key alone: a re-run skips known rows without parsing them."""
        return self._get(values, self.key_field)

    def _time(self, values: Sequence[object], f: Field) -> dt.datetime | None:
        raw = self._raw(values, f)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        try:
            return self.parse_date(raw)
        except ValueError as exc:
            raise _Reject(f.value, raw, f"bad date: {exc}") from None

    def parse(self, row: int, values: Sequence[object], strict_width: bool) -> Parsed | _Reject:
        n = len(values)
        if (strict_width and n < self.width) or n < self.needed:
            return _Reject("row", None, f"the row has {n} fields, the header has {self.width}")
        if n > self.width and any(v not in (None, "") for v in values[self.width :]):
            return _Reject("row", None, f"the row has {n} fields, the header has {self.width}")
        try:
            return self._parse(row, values)
        except _Reject as rejection:
            return rejection

    def _parse(self, row: int, values: Sequence[object]) -> Parsed:
        get = self._get
        key = get(values, self.key_field)
        if key is None:
            raise _Reject(self.key_field.value, None, f"missing {self.key_field.value} (the key)")
        if len(key) > 128:
            raise _Reject(self.key_field.value, key, "longer than 128 characters")
        code = get(values, Field.CODE)
        if code is not None and len(code) > 32:
            raise _Reject("code", code, "a case code has at most 32 characters")
        external_id = get(values, Field.EXTERNAL_ID)

        reported_at = self._time(values, Field.REPORTED_AT)
        if reported_at is None:
            raise _Reject("reported_at", None, "reported_at is empty")
        filed_at = self._time(values, Field.FILED_AT)
        dispatched_at = self._time(values, Field.DISPATCHED_AT)
        deadline = self._time(values, Field.DISPOSAL_DEADLINE)
        disposed_at = self._time(values, Field.DISPOSED_AT)
        closed_at = self._time(values, Field.CLOSED_AT)

        channel = get(values, Field.CHANNEL)
        if channel not in _CHANNELS:
            raise _Reject(
                "channel", channel, f"unknown channel '{channel}'; map it under [values.channel]"
            )
        state_text = get(values, Field.STATE)
        try:
            state = CaseState(state_text or "")
        except ValueError:
            raise _Reject(
                "state", state_text, f"unknown state '{state_text}'; map it under [values.state]"
            ) from None
        problem = milestone_problem(
            state,
            {
                Field.REPORTED_AT: reported_at,
                Field.FILED_AT: filed_at,
                Field.DISPATCHED_AT: dispatched_at,
                Field.DISPOSAL_DEADLINE: deadline,
                Field.DISPOSED_AT: disposed_at,
                Field.CLOSED_AT: closed_at,
            },
        )
        if problem is not None:
            raise _Reject(problem.field, None, problem.reason)

        family, minor_id, limit_text = self._class(values)
        department_id: int | None = None
        dept = get(values, Field.DEPARTMENT)
        if dept is not None:
            department_id = self.lookups.department(dept)
            if department_id is None:
                raise _Reject(
                    "department",
                    dept,
                    f"unknown department '{dept}'; map it under [values.department] to a "
                    "department code",
                )
        description = get(values, Field.DESCRIPTION)
        if description is None:
            raise _Reject("description", None, "description is empty")
        address = get(values, Field.ADDRESS)
        if address is not None and len(address) > 255:
            raise _Reject("address", address, "an address has at most 255 characters")
        lon, lat, system = self._location(values, address)
        return Parsed(
            row=row,
            key=key,
            code=code,
            external_id=external_id[:128] if external_id else None,
            channel=channel,
            state=state,
            family=family,
            minor_id=minor_id,
            limit_text=limit_text,
            department_id=department_id,
            description=description,
            address=address,
            lon=lon,
            lat=lat,
            system=system,
            reported_at=reported_at,
            filed_at=filed_at,
            dispatched_at=dispatched_at,
            deadline=deadline,
            disposed_at=disposed_at,
            closed_at=closed_at,
        )

    def _class(self, values: Sequence[object]) -> tuple[str | None, int | None, str | None]:
        family_text = self._get(values, Field.FAMILY)
        family = _FAMILY_WORDS.get(family_text.lower()) if family_text else None
        if family_text is not None and family is None:
            raise _Reject(
                "family", family_text, f"unknown family '{family_text}' (部件/事件, or map it)"
            )
        code = self._get(values, Field.MINOR_CODE)
        if code is None:
            return family, None, None
        letter = code[:1].upper()
        if len(code) == 5 and letter in _FAMILY_LETTER and code[1:].isdigit():
            implied = _FAMILY_LETTER[letter]
            if family is not None and family != implied:
                raise _Reject("minor_code", code, f"{code} is a {implied} code, family is {family}")
            family, code = implied, code[1:]
        if family is None:
            raise _Reject(
                "minor_code",
                code,
                f"class {code} needs a family: map a family column, or write C{code} / E{code}",
            )
        info = self.lookups.minor(family, code)
        if info is None:
            raise _Reject("minor_code", code, f"unknown class: no {family} class with code {code}")
        return family, info.minor_id, info.limit_text

    def _location(
        self, values: Sequence[object], address: str | None
    ) -> tuple[float | None, float | None, CoordSystem]:
        lon_text = self._get(values, Field.LON)
        lat_text = self._get(values, Field.LAT)
        system_text = self._get(values, Field.COORD_SYSTEM)
        system = self.mapping.coord_system
        if system_text is not None:
            try:
                system = parse_coord_system(system_text)
            except InvalidInput:
                raise _Reject("coord_system", system_text, "unknown coordinate system") from None
        if lon_text is None and lat_text is None:
            if address is None:
                raise _Reject("location", None, "missing location: no lon/lat and no address")
            return None, None, system
        if lon_text is None or lat_text is None:
            raise _Reject("lon" if lon_text is None else "lat", None, "bad coordinates: half")
        try:
            lon, lat = float(lon_text), float(lat_text)
        except ValueError:
            raise _Reject(
                "lon", f"{lon_text}, {lat_text}", "bad coordinates: not numbers"
            ) from None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or lon != lon or lat != lat:
            swapped = " (lon and lat swapped?)" if -90 <= lon <= 90 and -180 <= lat <= 180 else ""
            raise _Reject(
                "lon", f"{lon_text}, {lat_text}", f"bad coordinates: out of range{swapped}"
            )
        if lon == 0 and lat == 0:
            raise _Reject("lon", f"{lon_text}, {lat_text}", "bad coordinates: 0, 0")
        if system in (CoordSystem.GCJ02, CoordSystem.BD09) and not (
            CHINA_LON_MIN < lon < CHINA_LON_MAX and CHINA_LAT_MIN < lat < CHINA_LAT_MAX
        ):
            raise _Reject(
                "lon",
                f"{lon_text}, {lat_text}",
                f"bad coordinates: a {system.value} point outside China",
            )
        return lon, lat, system


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

CASE_COLUMNS: tuple[str, ...] = tuple(c.key for c in Case.__table__.columns)
EVENT_COLUMNS: tuple[str, ...] = (
    "case_id",
    "at",
    "actor_user_id",
    "actor_name",
    "actor_role",
    "action",
    "from_state",
    "to_state",
    "reason",
    "department_id",
    "step",
    "deadline",
    "detail",
)
_SET_BY_IMPORT = frozenset(
    {
        "id",
        "code",
        "version",
        "state",
        "channel",
        "external_id",
        "family",
        "minor_id",
        "description",
        "lon",
        "lat",
        "coord_system",
        "address",
        "cell_code",
        "community_id",
        "subdistrict_id",
        "outside_jurisdiction",
        "department_id",
        "step",
        "step_started_at",
        "step_limit",
        "step_pauses",
        "step_deadline",
        "step_warn_at",
        "paused_at",
        "paused_step",
        "reported_at",
        "filed_at",
        "dispatched_at",
        "disposal_deadline",
        "disposed_at",
        "disposal_overdue",
        "step_warned",
        "step_overdue",
        "closed_at",
        "updated_at",
    }
)


_Clock = tuple[
    str | None,
    dt.datetime | None,
    str | None,
    dt.datetime | None,
    dt.datetime | None,
    dt.datetime | None,
    str | None,
]
_NO_CLOCK: _Clock = (None, None, None, None, None, None, None)
_CLOSED_STATES = frozenset(
    {CaseState.CLOSED, CaseState.DECLINED, CaseState.NOT_ACCEPTED, CaseState.VOIDED}
)


def _insert_sql(dialect: str, table: str, columns: Sequence[str]) -> str:
    mark = "%s" if dialect == "postgresql" else "?"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def _case_template() -> list[Any]:
    """Every case_file column's value for an imported case before the row's own values: the
    column's scalar default, or NULL. A NOT NULL column without one is a bug to fix here."""
    out: list[Any] = []
    for column in Case.__table__.columns:
        if column.key in _SET_BY_IMPORT:
            out.append(None)
            continue
        default = column.default
        if default is not None and getattr(default, "is_scalar", False):
            out.append(default.arg)
        elif column.nullable:
            out.append(None)
        else:  # pragma: no cover - caught by the tests the day a column is added
            raise RuntimeError(f"case_file.{column.key} needs a value in the importer")
    return out


class BulkWriter:
    """Writes parsed rows as case, event and key rows through the driver's executemany.

    Values are converted to what the column types would bind (UTC text on SQLite, aware
    datetimes on PostgreSQL, JSON as text), because SQLAlchemy's per-value processing would
    cost more than everything else at this volume.
    """

    def __init__(
        self, conn: Connection, ctx: Context, *, source: str, run_id: int, now: dt.datetime
    ) -> None:
        self.now = now
        self.conn = conn
        self.ctx = ctx
        self.dialect = conn.dialect.name
        self.sqlite = self.dialect == "sqlite"
        self.source = source
        self.run_id = run_id
        self.actor_name = f"import:{source}"[:64]
        self.case_sql = _insert_sql(self.dialect, "case_file", CASE_COLUMNS)
        self.event_sql = _insert_sql(self.dialect, "case_event", EVENT_COLUMNS)
        self.key_sql = _insert_sql(
            self.dialect, "exchange_imported_case", ("source", "external_key", "case_id", "run_id")
        )
        self.template = _case_template()
        self.pos = {name: i for i, name in enumerate(CASE_COLUMNS)}
        self.next_id = 0
        if self.sqlite:
            # The write lock is held from BEGIN IMMEDIATE to the commit: max + 1 cannot race.
            self.next_id = (
                int(
                    conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM case_file").scalar() or 0
                )
                + 1
            )
        self.source_json = json.dumps(source, ensure_ascii=False)
        self.created = 0
        self.events = 0

    def _t(self, value: dt.datetime | None) -> Any:
        if value is None or not self.sqlite:
            return value
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def _ids(self, n: int) -> list[int]:
        if self.sqlite:
            start = self.next_id
            self.next_id += n
            return list(range(start, start + n))
        # PostgreSQL: ids from the sequence, so concurrent intake never collides with them.
        rows = self.conn.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('case_file', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": n},
        ).scalars()
        return sorted(int(r) for r in rows)

    def write(self, batch: Sequence[Parsed], codes: Sequence[str]) -> None:
        if not batch:
            return
        ids = self._ids(len(batch))
        pos = self.pos
        t = self._t
        case_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        key_rows: list[tuple[Any, ...]] = []
        actor = self.actor_name
        for p, case_id, code in zip(batch, ids, codes, strict=True):
            # Each instant is converted to storage form once; the events reuse the strings.
            reported, filed, dispatched = t(p.reported_at), t(p.filed_at), t(p.dispatched_at)
            disposed, closed, deadline_s = t(p.disposed_at), t(p.closed_at), t(p.deadline)
            plan = plan_events(p.state, reported, filed, dispatched, disposed, closed)
            last = plan[-1]
            clock = _NO_CLOCK if p.state in _CLOSED_STATES else self._clock(p)
            row = self.template.copy()
            row[pos["id"]] = case_id
            row[pos["code"]] = code
            row[pos["version"]] = len(plan)
            row[pos["state"]] = p.state.value
            row[pos["channel"]] = p.channel
            row[pos["external_id"]] = p.external_id
            row[pos["family"]] = p.family
            row[pos["minor_id"]] = p.minor_id
            row[pos["description"]] = p.description
            row[pos["lon"]] = p.wlon
            row[pos["lat"]] = p.wlat
            row[pos["coord_system"]] = p.system.value if p.lon is not None else None
            row[pos["address"]] = p.address
            row[pos["cell_code"]] = p.cell_code
            row[pos["community_id"]] = p.community_id
            row[pos["subdistrict_id"]] = p.subdistrict_id
            row[pos["outside_jurisdiction"]] = p.outside
            row[pos["department_id"]] = p.department_id
            row[pos["step"]] = clock[0]
            row[pos["step_started_at"]] = t(clock[1])
            row[pos["step_limit"]] = clock[2]
            row[pos["step_pauses"]] = "[]"
            row[pos["step_deadline"]] = t(clock[3])
            row[pos["step_warn_at"]] = t(clock[4])
            # A light that was already yellow or red before the import counts as handled:
            # otherwise the worker's next pass would urge and notify every historical open
            # case at once. Lights that turn later are the worker's, as for any case.
            row[pos["step_warned"]] = clock[4] is not None and clock[4] <= self.now
            row[pos["step_overdue"]] = clock[3] is not None and clock[3] <= self.now
            row[pos["paused_at"]] = t(clock[5])
            row[pos["paused_step"]] = clock[6]
            row[pos["reported_at"]] = reported
            row[pos["filed_at"]] = filed
            row[pos["dispatched_at"]] = dispatched
            row[pos["disposal_deadline"]] = deadline_s
            row[pos["disposed_at"]] = disposed
            row[pos["disposal_overdue"]] = (
                p.disposed_at is not None and p.deadline is not None and p.disposed_at > p.deadline
            )
            row[pos["closed_at"]] = (
                closed if p.state in (CaseState.CLOSED, CaseState.VOIDED) else None
            )
            row[pos["updated_at"]] = last.at
            case_rows.append(tuple(row))
            dept_after = None
            for ev in plan:
                if ev.action == "dispatch":
                    dept_after = p.department_id
                step = deadline = None
                if ev.clocked:
                    step, deadline = Step.DISPOSE.value, deadline_s
                if ev is last and clock[0] is not None:
                    step, deadline = clock[0], t(clock[3])
                detail = (
                    f'{{"channel": "{p.channel}", "import": {{"source": {self.source_json}, '
                    f'"row": {p.row}, "run": {self.run_id}}}}}'
                    if ev.from_state is None
                    else "{}"
                )
                event_rows.append(
                    (
                        case_id,
                        ev.at,
                        None,
                        actor,
                        None,
                        ev.action,
                        ev.from_state,
                        ev.to_state,
                        None,
                        dept_after,
                        step,
                        deadline,
                        detail,
                    )
                )
            key_rows.append((self.source, p.key, case_id, self.run_id))
        self.conn.exec_driver_sql(self.case_sql, case_rows)
        self.conn.exec_driver_sql(self.event_sql, event_rows)
        self.conn.exec_driver_sql(self.key_sql, key_rows)
        self.created += len(case_rows)
        self.events += len(event_rows)

    def _clock(self, p: Parsed) -> _Clock:
        """The running step of an open imported case (step, started, limit, deadline, warn at,
        paused at, paused step), as the loop would have it after the last event."""
        last = plan_events(
            p.state, p.reported_at, p.filed_at, p.dispatched_at, p.disposed_at, p.closed_at
        )[-1]
        step = WAIT_POINTS[p.state].step
        if step is None:
            paused_step = Step.DISPOSE.value if p.state is CaseState.SUSPENDED else None
            return None, None, None, None, None, last.at, paused_step
        limit = p.limit_text or self.ctx.settings.default_disposal_limit
        sim = SimCase(id=0, code="", channel=p.channel, description="", reported_at=p.reported_at)
        started = p.dispatched_at if step is Step.DISPOSE and p.dispatched_at else last.at
        try:
            start_step(sim, step, self.ctx, started, limit)
        except (ConfigurationError, InvalidInput):
            sim.step_deadline = sim.step_warn_at = None
        deadline = sim.step_deadline
        warn = sim.step_warn_at
        if step is Step.DISPOSE and p.deadline is not None:
            deadline = p.deadline
            warn = started + (p.deadline - started) * 0.8
        return step.value, started, sim.step_limit, deadline, warn, None, None

    def store_serials(self, serials: dict[dt.date, int]) -> None:
        if not serials:
            return
        insert_fn = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = insert_fn(CaseCodeSerial)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CaseCodeSerial.day],
            set_={"last": stmt.excluded.last},
            where=CaseCodeSerial.last < stmt.excluded.last,
        )
        self.conn.execute(stmt, [{"day": d, "last": n} for d, n in serials.items()])


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """State of one import across batches."""

    report: ImportReport
    partial: bool
    max_listed: int
    on_reject: Callable[[ImportRejection], None] | None
    known_keys: set[str]
    key_name: str
    seen_keys: dict[str, int] = field(default_factory=dict)
    seen_codes: dict[str, int] = field(default_factory=dict)
    cells: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    serials: dict[dt.date, int] = field(default_factory=dict)
    serials_changed: dict[dt.date, int] = field(default_factory=dict)
    limits: dict[str, TimeLimit | None] = field(default_factory=dict)

    @property
    def writing(self) -> bool:
        return self.partial or self.report.rejected == 0

    def reject(self, row: int, fld: str, value: str | None, reason: str) -> None:
        rejection = ImportRejection(row=row, field=fld, value=value, reason=reason)
        self.report.rejected += 1
        if len(self.report.rejections) < self.max_listed:
            self.report.rejections.append(rejection)
        if self.on_reject is not None:
            self.on_reject(rejection)


SQLITE_CACHE_KIB = 512 * 1024


@contextmanager
def _sqlite_cache(conn: Connection) -> Iterator[None]:
    """A large page cache for the import's connection, restored afterwards.

    With SQLite's default 2 MB cache, a million cases and their five million events spill and
    re-read index pages at every batch (the indexes on times are filled in random order); with
    512 MB they mostly stay in memory until the commit writes them once.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    old = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(old or -2000)}")


PARALLEL_MIN_ROWS = 50_000


@dataclass
class Chunk:
    """What ``BATCH`` consecutive rows of the file gave: parsed rows, rejections (row, field,
    value, reason) and how many rows were already imported (skipped unparsed)."""

    rows_read: int = 0
    known: int = 0
    parsed: list[Parsed] = field(default_factory=list)
    rejected: list[tuple[int, str, str | None, str]] = field(default_factory=list)


def _chunks(source: Source, parser: RowParser, known: set[str]) -> Iterator[Chunk]:
    chunk = Chunk()
    for number, values in source.rows:
        chunk.rows_read += 1
        if parser.key_of(values) in known:
            chunk.known += 1  # a re-run skips known rows without parsing them
        else:
            parsed = parser.parse(number, values, source.strict_width)
            if isinstance(parsed, _Reject):
                chunk.rejected.append((number, parsed.field, parsed.value, parsed.reason))
            else:
                chunk.parsed.append(parsed)
        if chunk.rows_read >= BATCH:
            yield chunk
            chunk = Chunk()
    if chunk.rows_read:
        yield chunk


def _produce(sender: PipeEnd, source: Source, parser: RowParser, known: set[str]) -> None:
    """The forked parser: sends chunks, then None; a problem with the file as a message."""
    try:
        for chunk in _chunks(source, parser, known):
            sender.send(chunk)
        sender.send(None)
    except InvalidInput as exc:
        sender.send(("error", exc.message, exc.field))
    finally:
        sender.close()


def _chunk_stream(
    source: Source, parser: RowParser, known: set[str], parallel: bool
) -> Generator[Chunk, None, None]:
    """The file's chunks, parsed here or in a forked process.

    In parallel, the child reads and parses chunk k+1 while this process checks and writes
    chunk k: parsing and writing each take about half of an import, so the import takes about
    the time of the writing alone. The child never touches the database (the parser holds
    dictionaries, not a session) and a pipe carries one chunk at a time, which bounds memory.
    The fork start method is what makes this cheap: the parser, the known keys and the open
    file are inherited, not pickled.
    """
    if not parallel:
        yield from _chunks(source, parser, known)
        return
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_produce, args=(sender, source, parser, known), name="cityloop-import-parser"
    )
    child.daemon = True
    child.start()
    sender.close()
    try:
        while True:
            try:
                item = receiver.recv()
            except EOFError:
                child.join(timeout=10)
                raise RuntimeError(
                    f"the import's parsing process ended unexpectedly (exit code {child.exitcode})"
                ) from None
            if item is None:
                return
            if isinstance(item, Chunk):
                yield item
                continue
            _, message, fld = item
            raise InvalidInput(message, field=fld)
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_import(
    session: Session,
    ctx: Context,
    path: Path,
    mapping: ImportMapping,
    *,
    actor_name: str,
    partial: bool = False,
    progress: ImportProgress | None = None,
    on_reject: Callable[[ImportRejection], None] | None = None,
    max_listed: int = MAX_LISTED,
    parallel: bool | None = None,
    now: dt.datetime,
) -> ImportReport:
    """Import ``path`` inside the caller's transaction and report. The caller commits only
    when ``report.committed`` is true (all rows good, or ``partial``).

    ``parallel`` reads and parses the file in a forked process while this one writes (by
    default for files of ``PARALLEL_MIN_ROWS`` rows or more on a machine with several CPUs).
    """
    started = time.perf_counter()
    report = ImportReport(source=mapping.source, file=path.name, partial=partial)
    source = open_source(path, mapping)
    stack = ExitStack()
    try:
        parser = RowParser(mapping, source.header, Lookups(session))
        known = set(
            session.scalars(
                select(ImportedCase.external_key).where(ImportedCase.source == mapping.source)
            )
        )
        run = _Run(report, partial, max_listed, on_reject, known, parser.key_field.value)
        serials = session.execute(select(CaseCodeSerial.day, CaseCodeSerial.last)).all()
        run.serials = {day: last for day, last in serials}
        record = ImportRun(
            source=mapping.source,
            file_name=path.name[:255],
            file_sha256=file_sha256(path),
            actor_name=actor_name[:64],
            partial=partial,
            started_at=now,
        )
        session.add(record)
        session.flush()
        conn = session.connection()
        stack.enter_context(_sqlite_cache(conn))
        writer = BulkWriter(conn, ctx, source=mapping.source, run_id=record.id, now=now)
        grids = loaded_grids(session)
        if progress is not None:
            progress.start(source.total)
        if parallel is None:
            parallel = (source.total or 0) >= PARALLEL_MIN_ROWS and (os.cpu_count() or 1) > 1
        chunks = stack.enter_context(closing(_chunk_stream(source, parser, known, parallel)))
        for chunk in chunks:
            report.rows_read += chunk.rows_read
            report.already_imported += chunk.known
            for number, fld, value, reason in chunk.rejected:
                run.reject(number, fld, value, reason)
            _flush(session, run, writer, grids, chunk.parsed)
            if progress is not None:
                progress.advance(chunk.rows_read)
        report.committed = run.writing
        if run.writing:
            writer.store_serials(run.serials_changed)
            record.rows_read = report.rows_read
            record.created = report.created = writer.created
            record.already_imported = report.already_imported
            record.rejected = report.rejected
            record.finished_at = utcnow()
            report.run_id = record.id
            session.flush()
        else:
            report.created = 0
    finally:
        stack.close()
        source.closer()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _flush(
    session: Session,
    run: _Run,
    writer: BulkWriter,
    grids: Sequence[Any],
    batch: list[Parsed],
) -> None:
    """Check one batch against the run and the database, locate it, and write it."""
    report = run.report
    fresh: list[Parsed] = []
    for p in batch:
        if p.key in run.known_keys:
            report.already_imported += 1
            continue
        first = run.seen_keys.get(p.key)
        if first is not None:
            run.reject(
                p.row,
                run.key_name,
                p.key,
                f"duplicate {run.key_name} within the file (first at row {first})",
            )
            continue
        run.seen_keys[p.key] = p.row
        if p.code is not None:
            first = run.seen_codes.get(p.code)
            if first is not None:
                run.reject(
                    p.row, "code", p.code, f"duplicate code within the file (first at row {first})"
                )
                continue
            run.seen_codes[p.code] = p.row
        fresh.append(p)
    if not fresh:
        return
    taken = _existing_codes(session, [p.code for p in fresh if p.code is not None])
    if taken:
        kept = []
        for p in fresh:
            if p.code is not None and p.code in taken:
                run.reject(p.row, "code", p.code, f"code {p.code} is already used by another case")
            else:
                kept.append(p)
        fresh = kept
    fresh = _locate(session, run, grids, writer.ctx, fresh)
    _deadlines(run, writer.ctx, fresh)
    if not run.writing or not fresh:
        return
    codes = _codes(session, run, writer.ctx, fresh)
    writer.write(fresh, codes)


def _existing_codes(session: Session, codes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(codes), _IN_CHUNK):
        chunk = codes[start : start + _IN_CHUNK]
        found.update(session.scalars(select(Case.code).where(Case.code.in_(chunk))))
    return found


def _locate(
    session: Session, run: _Run, grids: Sequence[Any], ctx: Context, batch: list[Parsed]
) -> list[Parsed]:
    """WGS-84 coordinates and grid cells for the batch (vectorised per coordinate system);
    a point outside the stored grid is refused or flagged as the city's policy says."""
    with_point = [p for p in batch if p.lon is not None and p.lat is not None]
    if not with_point:
        return batch
    by_system: dict[CoordSystem, list[Parsed]] = {}
    for p in with_point:
        by_system.setdefault(p.system, []).append(p)
    for system, group in by_system.items():
        lons, lats = to_wgs84_array(
            [p.lon or 0.0 for p in group], [p.lat or 0.0 for p in group], system
        )
        for p, x, y in zip(group, lons.tolist(), lats.tolist(), strict=True):
            p.wlon, p.wlat = x, y
    if not grids:
        return batch
    lons = np.fromiter((p.wlon for p in with_point), dtype=np.float64, count=len(with_point))
    lats = np.fromiter((p.wlat for p in with_point), dtype=np.float64, count=len(with_point))
    cells = locate_all(grids, lons, lats)
    unknown = {c for c in cells if c is not None and c not in run.cells}
    if unknown:
        for code, info in cell_infos(session, unknown).items():
            run.cells[code] = (info.subdistrict_id, info.community_id)
        for code in unknown:
            run.cells.setdefault(code, (None, None))
    refused: set[int] = set()
    refuse = ctx.settings.outside_jurisdiction is OutsidePolicy.REFUSE
    for p, cell in zip(with_point, cells, strict=True):
        if cell is None:
            if refuse:
                run.reject(
                    p.row,
                    "location",
                    f"{p.lon}, {p.lat} {p.system.value}",
                    "bad coordinates: outside the city's grid (check the coordinate system)",
                )
                refused.add(id(p))
            else:
                p.outside = True
            continue
        p.cell_code = cell
        p.subdistrict_id, p.community_id = run.cells[cell]
    if refused:
        return [p for p in batch if id(p) not in refused]
    return batch


def _limit(run: _Run, text_: str) -> TimeLimit | None:
    if text_ not in run.limits:
        try:
            run.limits[text_] = parse_time_limit(text_)
        except InvalidInput:
            run.limits[text_] = None
    return run.limits[text_]


def _deadlines(run: _Run, ctx: Context, batch: list[Parsed]) -> None:
    """The disposal deadline of dispatched cases the file gives none for: the class's
    filing-standard limit (or the city's default) from the dispatch, on the working calendar,
    in one vectorised call. A year the calendar does not cover leaves the deadline empty (and
    counted in the report) rather than guessing."""
    todo: list[Parsed] = []
    limits: list[TimeLimit] = []
    for p in batch:
        if p.dispatched_at is None or p.deadline is not None:
            continue
        limit = _limit(run, p.limit_text or ctx.settings.default_disposal_limit)
        if limit is None:
            limit = _limit(run, ctx.settings.default_disposal_limit)
        if limit is None:
            run.report.without_deadline += 1
            continue
        todo.append(p)
        limits.append(limit)
    if not todo:
        return
    distinct = list(dict.fromkeys(limits))
    index = {lim: i for i, lim in enumerate(distinct)}
    indices = np.fromiter((index[lim] for lim in limits), dtype=np.intp, count=len(limits))
    starts = np.fromiter(
        (p.dispatched_at.timestamp() for p in todo if p.dispatched_at is not None),
        dtype=np.float64,
        count=len(todo),
    )
    try:
        ends = ctx.calendar.deadlines_batch(starts, LimitArrays.take(distinct, indices))
    except ConfigurationError:
        for p, limit in zip(todo, limits, strict=True):
            assert p.dispatched_at is not None
            try:
                p.deadline = ctx.calendar.deadline(p.dispatched_at, limit)
            except ConfigurationError:
                run.report.without_deadline += 1
        return
    for p, end in zip(todo, ends.tolist(), strict=True):
        p.deadline = dt.datetime.fromtimestamp(end, dt.UTC)


def _codes(session: Session, run: _Run, ctx: Context, batch: list[Parsed]) -> list[str]:
    """The case codes: the file's own, or date + per-day serial as intake makes them (the
    serial counters move on, so a later live case never takes an imported code)."""
    prefix = ctx.settings.code_prefix
    codes: list[str] = []
    generated: list[int] = []
    for i, p in enumerate(batch):
        if p.code is not None:
            codes.append(p.code)
            continue
        codes.append(_next_code(run, ctx, p, prefix))
        generated.append(i)
    pending = generated
    while pending:
        candidates = [codes[i] for i in pending]
        clash = _existing_codes(session, candidates)
        clash.update(c for c in candidates if c in run.seen_codes)
        for i in pending:
            if codes[i] not in clash:
                run.seen_codes[codes[i]] = batch[i].row
        pending = [i for i in pending if codes[i] in clash]
        for i in pending:
            codes[i] = _next_code(run, ctx, batch[i], prefix)
    return codes


def _next_code(run: _Run, ctx: Context, p: Parsed, prefix: str) -> str:
    day = ctx.calendar.to_local(p.reported_at).date()
    serial = run.serials.get(day, 0) + 1
    run.serials[day] = run.serials_changed[day] = serial
    return f"{prefix}{day:%Y%m%d}{serial:05d}"
