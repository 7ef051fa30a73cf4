"""Bulk import of historical cases, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from tests.integration.exchange.exchange_support import (
    HEADER,
    MAPPING,
    SH,
    counts,
    report,
    row,
    seed,
    write_csv,
    write_mapping,
)
from tests.world import World

from cityloop.cases.models import Case, CaseCodeSerial, CaseEvent
from cityloop.catalog.models import MinorClass
from cityloop.db.engine import Database
from cityloop.errors import InvalidInput, PermissionDenied
from cityloop.exchange import service
from cityloop.exchange.models import ImportedCase, ImportRun
from cityloop.exchange.schemas import ImportMapping, ImportReport
from cityloop.grid.coords import to_wgs84

UTC = dt.UTC


@pytest.fixture
def seeded(world: World, db: Database) -> World:
    seed(db)
    return world


def mapping(tmp_path: Path, text: str = MAPPING) -> ImportMapping:
    return service.load_mapping(write_mapping(tmp_path / "mapping.toml", text))


def run(
    db: Database,
    w: World,
    path: Path,
    m: ImportMapping,
    *,
    partial: bool = False,
    parallel: bool | None = None,
) -> ImportReport:
    return service.import_file(db.uow(), w.admin, path, m, partial=partial, parallel=parallel)


def case_by_code(db: Database, code: str) -> Case:
    with db.uow() as uow:
        case = uow.session.scalar(select(Case).where(Case.code == code))
        assert case is not None, code
        uow.session.expunge(case)
        return case


def events_of(db: Database, case_id: int) -> list[CaseEvent]:
    with db.uow() as uow:
        rows = list(
            uow.session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
        )
        for r in rows:
            uow.session.expunge(r)
        return rows


def test_a_csv_becomes_cases_with_their_history(
    seeded: World, db: Database, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "cases.csv",
        [
            row("SZ0001"),
            row("SZ0002", 来源="监督员上报", 状态="处置中", 处置时间="", 结案时间=""),
            row(
                "SZ0003",
                状态="不予立案",
                立案时间="",
                派遣时间="",
                处置时间="",
                部门="",
                结案时间="2019-03-04 10:00:00",
            ),
        ],
    )
    result = run(db, seeded, path, mapping(tmp_path))
    assert result.committed and result.created == 3 and result.rejected == 0
    assert result.summary == "3 new, 0 already imported, 0 rejected (3 rows read)"

    closed = case_by_code(db, "SZ0001")
    assert closed.state == "closed" and closed.channel == "hotline_12345"
    assert closed.reported_at == dt.datetime(2019, 3, 4, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert closed.dispatched_at == dt.datetime(2019, 3, 4, 1, 30, tzinfo=UTC)  # 2019/03/04 09:30
    assert closed.closed_at == dt.datetime(2019, 3, 5, 2, 0, tzinfo=UTC)
    assert closed.department_id == seeded.drainage_id
    assert closed.family == "component"
    with db.uow() as uow:
        minor = uow.session.get(MinorClass, closed.minor_id)
        assert minor is not None and minor.code == "0101"
    # GCJ-02 in the file, WGS-84 in storage.
    lon, lat = to_wgs84(116.306, 39.961, "gcj02")
    assert closed.lon == pytest.approx(lon, abs=1e-9) and closed.lat == pytest.approx(lat, abs=1e-9)
    assert closed.coord_system == "gcj02"
    # 上水井盖: 2 urgent working hours from the dispatch (continuous): 11:30 in Shanghai.
    assert closed.disposal_deadline == dt.datetime(2019, 3, 4, 11, 30, tzinfo=SH)
    assert closed.disposal_overdue  # disposed at 15:00
    assert closed.reporter_phone is None and closed.reporter_name is None  # never imported
    assert closed.step is None and closed.version == 5

    events = events_of(db, closed.id)
    assert [(e.action, e.from_state, e.to_state) for e in events] == [
        ("report", None, "reported"),
        ("file", "reported", "filed"),
        ("dispatch", "filed", "dispatched"),
        ("dispose", "dispatched", "disposed"),
        ("close", "disposed", "closed"),
    ]
    assert {e.actor_name for e in events} == {"import:szcg"}
    assert events[2].step == "dispose" and events[2].deadline == closed.disposal_deadline
    assert events[2].department_id == seeded.drainage_id and events[0].department_id is None
    assert events[0].detail["import"] == {"source": "szcg", "row": 2, "run": result.run_id}
    assert events[-1].at == closed.closed_at == closed.updated_at

    open_case = case_by_code(db, "SZ0002")
    assert open_case.state == "dispatched" and open_case.step == "dispose"
    assert open_case.step_deadline == open_case.disposal_deadline is not None
    assert open_case.step_started_at == open_case.dispatched_at
    # Long overdue before the import: the worker will not urge it as if it just turned red.
    assert open_case.step_overdue and open_case.step_warned

    declined = case_by_code(db, "SZ0003")
    assert [e.action for e in events_of(db, declined.id)] == ["report", "decline"]
    assert declined.closed_at is None and declined.department_id is None

    with db.uow() as uow:
        keys = uow.session.scalars(select(ImportedCase.external_key).order_by("external_key"))
        assert list(keys) == ["SZ0001", "SZ0002", "SZ0003"]
        run_row = uow.session.get(ImportRun, result.run_id)
        assert run_row is not None and run_row.created == 3 and run_row.source == "szcg"


def test_a_rerun_adds_nothing(seeded: World, db: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cases.csv", [row("SZ0001"), row("SZ0002")])
    m = mapping(tmp_path)
    assert run(db, seeded, path, m).created == 2
    before = counts(db)
    again = run(db, seeded, path, m)
    assert again.committed
    assert again.summary == "0 new, 2 already imported, 0 rejected (2 rows read)"
    assert counts(db) == {**before, "exchange_import_run": before["exchange_import_run"] + 1}
    # A later file with one new row and the two old ones adds exactly the new one.
    bigger = write_csv(tmp_path / "more.csv", [row("SZ0001"), row("SZ0002"), row("SZ0003")])
    third = run(db, seeded, bigger, m)
    assert (third.created, third.already_imported) == (1, 2)


def test_every_bad_row_is_listed_and_nothing_is_written(
    seeded: World, db: Database, tmp_path: Path
) -> None:
    rows = [
        row("SZ0001"),  # row 2: good
        row("SZ0002", 上报时间="2019-02-30 10:00:00"),  # 3: bad date
        row("SZ0003", 小类="9999"),  # 4: unknown class
        row("SZ0004", 部门="区水务局"),  # 5: unknown department
        row("SZ0005", 经度="", 纬度="", 地址=""),  # 6: missing location
        row("SZ0006", 经度="abc"),  # 7: bad coordinates
        row("SZ0001"),  # 8: duplicate code within the file
        row("SZ0008", 来源="微信"),  # 9: unknown channel
        row("SZ0009", 结案时间=""),  # 10: closed without closed_at
        row("SZ0010")[:5],  # 11: a malformed row (5 fields)
        row("SZ0011", 经度="39.96", 纬度="116.3"),  # 12: lon and lat swapped
        row("SZ0012", 派遣时间="2019-03-03 09:00:00"),  # 13: dispatched before reported
        row("SZ0013", 上报时间="04.03.2019"),  # 14: a date in no listed format
        row("", 上报时间="2019-03-04 09:00:00"),  # 15: no key
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    before = counts(db)
    result = run(db, seeded, path, mapping(tmp_path))
    assert not result.committed and result.created == 0
    assert counts(db) == before  # all-or-nothing: not even the good row
    found = [(r.row, r.field) for r in result.rejections]
    assert found == [
        (3, "reported_at"),
        (4, "minor_code"),
        (5, "department"),
        (6, "location"),
        (7, "lon"),
        (9, "channel"),
        (10, "closed_at"),
        (11, "row"),
        (12, "lon"),
        (13, "dispatched_at"),
        (14, "reported_at"),
        (15, "code"),
        (8, "code"),  # duplicates are found when the batch is checked
    ]
    reasons = {r.row: r.reason for r in result.rejections}
    assert "bad date" in reasons[3] and "not a real date" in reasons[3]
    assert "unknown class" in reasons[4]
    assert "unknown department '区水务局'" in reasons[5]
    assert "missing location" in reasons[6]
    assert "bad coordinates" in reasons[7]
    assert reasons[8] == "duplicate code within the file (first at row 2)"
    assert "5 fields, the header has 16" in reasons[11]
    assert "swapped" in reasons[12]
    assert result.rejected == 13 and result.rows_read == 14

    partial = run(db, seeded, path, mapping(tmp_path), partial=True)
    assert partial.committed and partial.created == 1 and partial.rejected == 13
    after = counts(db)
    assert after["case_file"] == before["case_file"] + 1
    assert after["case_event"] == before["case_event"] + 5


def test_a_code_already_used_by_a_live_case_is_refused(
    seeded: World, db: Database, tmp_path: Path
) -> None:
    live = report(db, seeded)
    with db.uow() as uow:
        case = uow.session.get(Case, live)
        assert case is not None
        code = case.code
    path = write_csv(tmp_path / "cases.csv", [row(code)])
    result = run(db, seeded, path, mapping(tmp_path))
    assert [(r.field, r.reason) for r in result.rejections] == [
        ("code", f"code {code} is already used by another case")
    ]


def test_without_a_code_column_codes_are_generated_and_serials_move_on(
    seeded: World, db: Database, tmp_path: Path
) -> None:
    text = MAPPING.replace('"案卷号" = "code"', '"案卷号" = "external_id"')
    path = write_csv(tmp_path / "cases.csv", [row("T-1"), row("T-2")])
    result = run(db, seeded, path, mapping(tmp_path, text))
    assert result.created == 2
    first = case_by_code(db, "2019030400001")
    second = case_by_code(db, "2019030400002")
    assert (first.external_id, second.external_id) == ("T-1", "T-2")
    with db.uow() as uow:
        serial = uow.session.get(CaseCodeSerial, dt.date(2019, 3, 4))
        assert serial is not None and serial.last == 2
    # The key is the external id: a re-run recognises the rows although their codes are new.
    assert run(db, seeded, path, mapping(tmp_path, text)).already_imported == 2


def test_an_excel_workbook_imports_with_cells_as_excel_types(
    seeded: World, db: Database, tmp_path: Path
) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "案卷"
    ws.append(["说明: 2019 年历史案卷"])  # a title row above the header
    ws.append(HEADER)
    values: list[object] = row("0")
    values[0] = 20190304001.0  # Excel stores a numeric code as a float
    values[1] = dt.datetime(2019, 3, 4, 9, 0)
    values[13], values[14] = 116.306, 39.961
    ws.append(values)
    path = tmp_path / "cases.xlsx"
    wb.save(path)
    text = 'sheet = "案卷"\nheader_row = 2\n' + MAPPING
    result = run(db, seeded, path, mapping(tmp_path, text))
    assert result.committed and result.created == 1, result.rejections
    case = case_by_code(db, "20190304001")
    assert case.reported_at == dt.datetime(2019, 3, 4, 1, 0, tzinfo=UTC)


def test_problems_with_the_file_itself_stop_before_anything_is_written(
    seeded: World, db: Database, tmp_path: Path
) -> None:
    m = mapping(tmp_path)
    before = counts(db)
    no_column = write_csv(tmp_path / "a.csv", [row("X")[1:]], header=HEADER[1:])
    with pytest.raises(InvalidInput, match="'案卷号'") as err:
        run(db, seeded, no_column, m)
    assert err.value.field == "columns"

    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((",".join(HEADER) + "\n" + ",".join(row("X")) + "\n").encode("gb18030"))
    with pytest.raises(InvalidInput, match="gb18030") as err:
        run(db, seeded, gbk, m)
    assert err.value.field in ("encoding", "columns")

    quote = tmp_path / "quote.csv"
    lines = ",".join(HEADER) + "\n" + ",".join(row("X")) + "\n" + 'Y,"unterminated\n'
    quote.write_text(lines, encoding="utf-8")
    with pytest.raises(InvalidInput, match="malformed CSV at row 3"):
        run(db, seeded, quote, m)

    with pytest.raises(InvalidInput, match="unknown format"):
        run(db, seeded, write_csv(tmp_path / "cases.dat", [row("X")]), m)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no header row"):
        run(db, seeded, empty, m)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match=r"not a readable \.xlsx"):
        run(db, seeded, broken, m)
    assert counts(db) == before


def test_only_an_admin_imports(seeded: World, db: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cases.csv", [row("SZ0001")])
    with pytest.raises(PermissionDenied):
        service.import_file(db.uow(), seeded.dispatcher, path, mapping(tmp_path))


def test_imported_points_get_their_cell_and_points_outside_are_refused(
    world: World, db: Database, tmp_path: Path
) -> None:
    from tests.integration.grid.grid_support import OUTSIDE, P_A1, build_district

    territory, _ = build_district(db, world, tmp_path)
    text = MAPPING.replace('coord_system = "gcj02"', 'coord_system = "wgs84"')
    inside = row("G1", 经度=str(P_A1[0]), 纬度=str(P_A1[1]))
    outside = row("G2", 经度=str(OUTSIDE[0]), 纬度=str(OUTSIDE[1]))
    path = write_csv(tmp_path / "cases.csv", [inside, outside])
    result = run(db, world, path, mapping(tmp_path, text), partial=True)
    assert result.created == 1
    assert [(r.row, r.field) for r in result.rejections] == [(3, "location")]
    assert "outside the city's grid" in result.rejections[0].reason
    case = case_by_code(db, "G1")
    assert case.cell_code is not None and case.cell_code.startswith("110199001001")
    assert (case.subdistrict_id, case.community_id) == (territory.sd_a, territory.comm_a1)


def test_a_parallel_run_gives_the_same_result_and_errors(
    seeded: World, db: Database, tmp_path: Path
) -> None:
    """Large files are parsed in a forked process; forced here on a small one."""
    rows = [row(f"P{i:05d}") for i in range(12_000)]
    rows[7_000] = row("P07000", 上报时间="2019-02-30 10:00:00")
    path = write_csv(tmp_path / "big.csv", rows)
    m = mapping(tmp_path)
    before = counts(db)
    refused = run(db, seeded, path, m, parallel=True)
    assert not refused.committed and counts(db) == before
    assert [(r.row, r.field) for r in refused.rejections] == [(7_002, "reported_at")]
    result = run(db, seeded, path, m, partial=True, parallel=True)
    assert (result.created, result.rejected, result.rows_read) == (11_999, 1, 12_000)
    assert counts(db)["case_event"] == before["case_event"] + 5 * 11_999
    again = run(db, seeded, path, m, parallel=True)
    assert (again.created, again.already_imported, again.rejected) == (0, 11_999, 1)

    broken = tmp_path / "broken.csv"
    text = path.read_text(encoding="utf-8")
    broken.write_text(text + 'Z,"unterminated\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="malformed CSV at row 12002"):
        run(db, seeded, broken, m, parallel=True)
