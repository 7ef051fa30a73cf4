"""Export of filtered cases to CSV, Excel, GeoJSON and Parquet, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook
from tests.integration.exchange.exchange_support import MONDAY_9, seed, walk
from tests.world import World

from cityloop.cases import service as cases
from cityloop.cases.domain import CaseState, Channel
from cityloop.cases.schemas import CaseCreate, CaseFilters, Location, Reporter
from cityloop.db.engine import Database
from cityloop.errors import InvalidInput
from cityloop.exchange import service
from cityloop.exchange.exporting import NAMES, format_for
from cityloop.exchange.schemas import ExportFormat
from cityloop.grid.coords import CoordSystem
from cityloop.org.domain import Actor

PHONE = "13912345678"
NAME = "李四(演示)"


@pytest.fixture
def city(world: World, db: Database) -> World:
    """Two drainage cases (one closed, one dispatched), one sanitation case (dispatched) and
    a citizen's report with contact details, still in intake."""
    standard = seed(db)
    walk(db, world, standard, until="close")
    walk(db, world, standard, until="dispatch", start=MONDAY_9 + dt.timedelta(days=1))
    walk(
        db,
        world,
        standard,
        until="dispatch",
        start=MONDAY_9 + dt.timedelta(days=2),
        department="sanitation",
    )
    data = CaseCreate(
        channel=Channel.PUBLIC_WEB,
        description="路灯不亮(演示)",
        location=Location(lon=116.31, lat=39.97, system=CoordSystem.WGS84),
        reporter=Reporter(name=NAME, phone=PHONE, email="li@example.cn"),
    )
    cases.report(db.uow(), None, data, now=MONDAY_9 + dt.timedelta(days=3))
    return world


def export(db: Database, actor: Actor, fmt: ExportFormat, out: Path, **filters: object) -> int:
    report = service.export_cases(
        db.uow(), actor, CaseFilters(**filters), fmt, out, now=MONDAY_9 + dt.timedelta(days=5)
    )
    assert Path(report.path) == out and out.exists()
    return report.rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_has_the_fixed_columns_and_never_contact_data(
    city: World, db: Database, tmp_path: Path
) -> None:
    out = tmp_path / "all.csv"
    assert export(db, city.dispatcher, ExportFormat.CSV, out) == 4
    text = out.read_text(encoding="utf-8-sig")
    assert PHONE not in text and NAME not in text and "li@example.cn" not in text
    rows = read_csv(out)
    assert list(rows[0]) == list(NAMES)
    assert not any("reporter" in name for name in NAMES)
    closed = rows[0]
    assert closed["state"] == "closed" and closed["state_label"] == "已结案"
    assert closed["department_code"] == "drainage" and closed["minor_code"] == "0101"
    assert closed["reported_at"] == "2026-11-23T09:00:00+08:00"  # local time with its offset
    assert [r["state"] for r in rows] == ["closed", "dispatched", "dispatched", "reported"]


def test_a_department_exports_only_its_own_cases(city: World, db: Database, tmp_path: Path) -> None:
    assert export(db, city.operator, ExportFormat.CSV, tmp_path / "d.csv") == 2
    assert {r["department_code"] for r in read_csv(tmp_path / "d.csv")} == {"drainage"}
    assert export(db, city.outsider, ExportFormat.CSV, tmp_path / "s.csv") == 1
    assert {r["department_code"] for r in read_csv(tmp_path / "s.csv")} == {"sanitation"}


def test_the_case_list_filters_apply(city: World, db: Database, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    assert export(db, city.dispatcher, ExportFormat.CSV, out, status=[CaseState.DISPATCHED]) == 2
    assert export(db, city.dispatcher, ExportFormat.CSV, out, department_code="sanitation") == 1
    assert export(db, city.dispatcher, ExportFormat.CSV, out, channel=Channel.PUBLIC_WEB) == 1
    day2 = MONDAY_9 + dt.timedelta(days=1)
    assert (
        export(
            db,
            city.dispatcher,
            ExportFormat.CSV,
            out,
            reported_from=day2,
            reported_to=day2 + dt.timedelta(days=1),
        )
        == 1
    )
    assert (
        export(db, city.dispatcher, ExportFormat.CSV, out, family="component", minor_code="0101")
        == 3
    )


def test_excel_geojson_and_parquet_hold_the_same_cases(
    city: World, db: Database, tmp_path: Path
) -> None:
    xlsx = tmp_path / "c.xlsx"
    assert export(db, city.dispatcher, ExportFormat.XLSX, xlsx) == 4
    wb = load_workbook(xlsx, read_only=True)
    sheet = list(wb["cases"].iter_rows(values_only=True))
    assert list(sheet[0]) == list(NAMES) and len(sheet) == 5
    reported = sheet[1][NAMES.index("reported_at")]
    assert reported == dt.datetime(2026, 11, 23, 9, 0)  # local wall-clock time
    assert dict(wb["about"].iter_rows(values_only=True))["timezone"] == "Asia/Shanghai"

    geo = tmp_path / "c.geojson"
    assert export(db, city.dispatcher, ExportFormat.GEOJSON, geo) == 4
    doc = json.loads(geo.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 4
    first = doc["features"][0]
    assert first["geometry"] == {"type": "Point", "coordinates": [116.3, 39.96]}
    assert "lon" not in first["properties"] and first["properties"]["code"]

    parquet = tmp_path / "c.parquet"
    assert export(db, city.dispatcher, ExportFormat.PARQUET, parquet) == 4
    con = duckdb.connect()
    try:
        path = str(parquet)
        assert con.execute("SELECT count(*) FROM read_parquet(?)", [path]).fetchone() == (4,)
        types = dict(
            con.execute(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))",
                [path],
            ).fetchall()
        )
        assert types["reported_at"] == "TIMESTAMP WITH TIME ZONE"
        assert types["lon"] == "DOUBLE" and types["disposal_overdue"] == "BOOLEAN"
        states = con.execute(
            "SELECT state FROM read_parquet(?) ORDER BY reported_at", [path]
        ).fetchall()
        assert [s for (s,) in states] == ["closed", "dispatched", "dispatched", "reported"]
    finally:
        con.close()


def test_bad_requests_write_no_file(city: World, db: Database, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    with pytest.raises(InvalidInput, match="unknown format"):
        format_for(out, "pdf")
    with pytest.raises(InvalidInput, match="unknown format"):
        format_for(tmp_path / "x.docx", None)
    assert format_for(tmp_path / "x.GeoJSON", None) is ExportFormat.GEOJSON
    with pytest.raises(InvalidInput, match="reported_to must be after"):
        export(
            db,
            city.dispatcher,
            ExportFormat.CSV,
            out,
            reported_from=MONDAY_9,
            reported_to=MONDAY_9,
        )
    with pytest.raises(InvalidInput, match="no department"):
        export(db, city.dispatcher, ExportFormat.CSV, out, department_code="nowhere")
    assert list(tmp_path.iterdir()) == []  # not even a temporary file is left
