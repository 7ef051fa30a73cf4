"""Export of filtered cases to CSV, Excel, GeoJSON and Parquet.

The rows come from the case list's own query (``cases.service.filtered_cases``), so the filters and
the visibility rules are exactly those of the list: a department operator exports its own
cases, never another department's. The columns are a fixed list without any reporter contact
field, whoever exports: an export is a file that leaves the system and is mailed around.

Every writer streams (``yield_per``), and writes to a temporary file renamed over the target at
the end, so a failed export never leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from cityloop.cases.domain import STATE_LABELS_ZH
from cityloop.cases.models import Case
from cityloop.cases.schemas import CaseFilters
from cityloop.cases.service import filtered_cases
from cityloop.catalog.models import MinorClass
from cityloop.errors import InvalidInput
from cityloop.exchange.schemas import ExportFormat
from cityloop.org.domain import Actor
from cityloop.org.models import Department
from cityloop.workcal.service import calendar_in

# (name, DuckDB type) in output order. No reporter_* column, ever.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "VARCHAR"),
    ("state", "VARCHAR"),
    ("state_label", "VARCHAR"),
    ("channel", "VARCHAR"),
    ("family", "VARCHAR"),
    ("minor_code", "VARCHAR"),
    ("minor_name", "VARCHAR"),
    ("department_code", "VARCHAR"),
    ("department_name", "VARCHAR"),
    ("description", "VARCHAR"),
    ("address", "VARCHAR"),
    ("lon", "DOUBLE"),
    ("lat", "DOUBLE"),
    ("cell_code", "VARCHAR"),
    ("outside_jurisdiction", "BOOLEAN"),
    ("reported_at", "TIMESTAMPTZ"),
    ("filed_at", "TIMESTAMPTZ"),
    ("dispatched_at", "TIMESTAMPTZ"),
    ("disposal_deadline", "TIMESTAMPTZ"),
    ("disposed_at", "TIMESTAMPTZ"),
    ("closed_at", "TIMESTAMPTZ"),
    ("disposal_overdue", "BOOLEAN"),
    ("extension_count", "INTEGER"),
    ("rework_count", "INTEGER"),
    ("return_count", "INTEGER"),
    ("urge_count", "INTEGER"),
    ("satisfaction", "VARCHAR"),
    ("external_id", "VARCHAR"),
)
NAMES: tuple[str, ...] = tuple(n for n, _ in COLUMNS)
EXCEL_MAX_ROWS = 1_048_575  # one sheet, below the header
_YIELD = 5_000

Row = tuple[Any, ...]


def _query(session: Session, actor: Actor, filters: CaseFilters, now: dt.datetime) -> Any:
    minor = aliased(MinorClass)
    dept = aliased(Department)
    base = filtered_cases(session, actor, filters, now).order_by(None)
    return (
        base.with_only_columns(
            Case.code,
            Case.state,
            Case.state.label("state_label"),  # replaced by its label below
            Case.channel,
            Case.family,
            minor.code,
            minor.name,
            dept.code,
            dept.name,
            Case.description,
            Case.address,
            Case.lon,
            Case.lat,
            Case.cell_code,
            Case.outside_jurisdiction,
            Case.reported_at,
            Case.filed_at,
            Case.dispatched_at,
            Case.disposal_deadline,
            Case.disposed_at,
            Case.closed_at,
            Case.disposal_overdue,
            Case.extension_count,
            Case.rework_count,
            Case.return_count,
            Case.urge_count,
            Case.satisfaction,
            Case.external_id,
            maintain_column_froms=True,
        )
        .outerjoin(minor, minor.id == Case.minor_id)
        .outerjoin(dept, dept.id == Case.department_id)
        .order_by(Case.reported_at, Case.id)
    )


_STATE = NAMES.index("state_label")
_LABELS = {s.value: label for s, label in STATE_LABELS_ZH.items()}


def _rows(session: Session, stmt: Select[Any]) -> Iterator[Row]:
    for partition in session.execute(stmt.execution_options(yield_per=_YIELD)).partitions():
        for row in partition:
            values = list(row)
            values[_STATE] = _LABELS.get(values[1], values[1])
            yield tuple(values)


def export(
    session: Session,
    actor: Actor,
    filters: CaseFilters,
    fmt: ExportFormat,
    out: Path,
    *,
    now: dt.datetime,
) -> int:
    """Write the export to ``out`` (replaced atomically) and return the number of cases."""
    tz = calendar_in(session).tz
    stmt = _query(session, actor, filters, now)
    if fmt is ExportFormat.XLSX:
        total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        if (total or 0) > EXCEL_MAX_ROWS:
            raise InvalidInput(
                f"{total} cases do not fit one Excel sheet ({EXCEL_MAX_ROWS} rows); narrow the "
                "filters or export csv or parquet",
                field="format",
            )
    writer = _WRITERS[fmt]
    with _atomic(out) as tmp:
        return writer(_rows(session, stmt), tmp, tz)


@contextmanager
def _atomic(out: Path) -> Iterator[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _local(value: dt.datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat(timespec="seconds") if value is not None else None


_TIME_INDEXES = tuple(i for i, (_, t) in enumerate(COLUMNS) if t == "TIMESTAMPTZ")


def _write_csv(rows: Iterator[Row], path: Path, tz: ZoneInfo) -> int:
    """UTF-8 with a BOM (Excel then opens Chinese text correctly); times local with offset."""
    n = 0
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(NAMES)
        for row in rows:
            values = list(row)
            for i in _TIME_INDEXES:
                values[i] = _local(values[i], tz)
            writer.writerow(values)
            n += 1
    return n


def _write_xlsx(rows: Iterator[Row], path: Path, tz: ZoneInfo) -> int:
    """Excel has no time zones: times are written as local (city) wall-clock times."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("cases")
    ws.append(list(NAMES))
    n = 0
    for row in rows:
        values = list(row)
        for i in _TIME_INDEXES:
            v = values[i]
            values[i] = v.astimezone(tz).replace(tzinfo=None) if v is not None else None
        ws.append(values)
        n += 1
    info = wb.create_sheet("about")
    info.append(["timezone", str(tz)])
    info.append(["rows", n])
    wb.save(path)
    return n


def _write_geojson(rows: Iterator[Row], path: Path, tz: ZoneInfo) -> int:
    """RFC 7946: WGS-84 points; a case without coordinates has a null geometry."""
    lon_i, lat_i = NAMES.index("lon"), NAMES.index("lat")
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"type": "FeatureCollection", "features": [\n')
        for row in rows:
            props: dict[str, Any] = {}
            for i, name in enumerate(NAMES):
                if i in (lon_i, lat_i):
                    continue
                value = row[i]
                props[name] = _local(value, tz) if i in _TIME_INDEXES else value
            lon, lat = row[lon_i], row[lat_i]
            geometry = (
                {"type": "Point", "coordinates": [lon, lat]}
                if lon is not None and lat is not None
                else None
            )
            feature = {"type": "Feature", "geometry": geometry, "properties": props}
            fh.write(("" if n == 0 else ",\n") + json.dumps(feature, ensure_ascii=False))
            n += 1
        fh.write("\n]}\n")
    return n


def _column(values: Sequence[Any], kind: str) -> Any:
    if kind == "TIMESTAMPTZ":
        return np.array(
            [None if v is None else v.astimezone(dt.UTC).replace(tzinfo=None) for v in values],
            dtype="datetime64[us]",
        )
    if kind in ("DOUBLE", "INTEGER"):
        mask = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        dtype = np.float64 if kind == "DOUBLE" else np.int64
        data = np.array([0 if v is None else v for v in values], dtype=dtype)
        return np.ma.masked_array(data, mask=mask) if mask.any() else data
    if kind == "BOOLEAN":
        return np.array([bool(v) for v in values], dtype=bool)
    return np.array(values, dtype=object)


def _write_parquet(rows: Iterator[Row], path: Path, tz: ZoneInfo) -> int:
    """Batches of rows become numpy columns that DuckDB appends to a table, which it then
    writes as Parquet (zstd); instants are TIMESTAMP WITH TIME ZONE (UTC)."""
    import duckdb

    del tz  # Parquet carries UTC instants; readers convert
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        ddl = ", ".join(f"{n} {t}" for n, t in COLUMNS)
        con.execute(f"CREATE TABLE cases ({ddl})")
        select_list = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in COLUMNS)
        n = 0
        batch: list[Row] = []

        def flush() -> None:
            columns = list(zip(*batch, strict=True))
            chunk = {name: _column(columns[i], kind) for i, (name, kind) in enumerate(COLUMNS)}
            con.register("chunk", chunk)
            con.execute(f"INSERT INTO cases SELECT {select_list} FROM chunk")
            con.unregister("chunk")

        for row in rows:
            batch.append(row)
            n += 1
            if len(batch) >= 50_000:
                flush()
                batch = []
        if batch:
            flush()
        target = str(path).replace("'", "''")
        con.execute(f"COPY cases TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    finally:
        con.close()
    return n


_WRITERS: dict[ExportFormat, Callable[[Iterator[Row], Path, ZoneInfo], int]] = {
    ExportFormat.CSV: _write_csv,
    ExportFormat.XLSX: _write_xlsx,
    ExportFormat.GEOJSON: _write_geojson,
    ExportFormat.PARQUET: _write_parquet,
}


def format_for(path: Path, given: str | None) -> ExportFormat:
    """The format named, or the one the file name's extension implies."""
    name = given or {
        ".csv": "csv",
        ".xlsx": "xlsx",
        ".geojson": "geojson",
        ".json": "geojson",
        ".parquet": "parquet",
    }.get(path.suffix.lower())
    try:
        return ExportFormat(name or "")
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        shown = given if given is not None else f"of '{path.name}'"
        raise InvalidInput(f"unknown format {shown}; use one of: {known}", field="format") from None
