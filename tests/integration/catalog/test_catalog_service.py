"""The catalog service against real databases (SQLite and PostgreSQL, via the ``db`` fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from tests.world import World

from cityloop.audit.models import AuditEntry
from cityloop.catalog import service as catalog
from cityloop.catalog.defaults import default_catalog
from cityloop.catalog.domain import Family
from cityloop.catalog.models import FilingStandard, MajorClass, MinorClass
from cityloop.catalog.schemas import ImportReport
from cityloop.catalog.workbook import COLUMNS, WorkbookRejected, read_workbook
from cityloop.db.engine import Database
from cityloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, DepartmentKind
from cityloop.org.schemas import DepartmentCreate
from cityloop.workcal.domain import DEFAULT_UNIT_MAP, Clock, Unit, UnitMeaning

YUNCHENG = Path(__file__).parents[2] / "unit" / "catalog" / "yuncheng-case-standard.xlsx"
HEADER = [label for _, label, _ in COLUMNS]  # 大类代码 ... 处置时限


def make_book(tmp_path: Path, name: str, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    ws = workbook.active
    assert ws is not None
    ws.title = "部件"
    for row in [["标题"], HEADER, *rows]:
        ws.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def snapshot(database: Database) -> list[tuple[Any, ...]]:
    """Every active row of the catalog, flattened, in catalog order (ids left out)."""
    with database.uow() as uow:
        stmt = (
            select(
                MinorClass.family,
                MajorClass.code,
                MajorClass.name,
                MajorClass.position,
                MajorClass.is_extension,
                MinorClass.code,
                MinorClass.name,
                MinorClass.position,
                MinorClass.is_extension,
                FilingStandard.position,
                FilingStandard.filing_criterion,
                FilingStandard.closing_criterion,
                FilingStandard.limit_text,
                FilingStandard.limit_amount,
                FilingStandard.limit_unit,
                FilingStandard.limit_clock,
                FilingStandard.limit_remark,
                FilingStandard.handling_units,
                FilingStandard.supervising_authority,
            )
            .join(MinorClass, FilingStandard.minor_id == MinorClass.id)
            .join(MajorClass, MinorClass.major_id == MajorClass.id)
            .where(FilingStandard.active, MinorClass.active, MajorClass.active)
            .order_by(
                MinorClass.family,
                MajorClass.position,
                MinorClass.position,
                FilingStandard.position,
            )
        )
        return [tuple(row) for row in uow.session.execute(stmt)]


def ids(database: Database) -> dict[str, int]:
    with database.uow() as uow:
        return {f"{m.family}:{m.code}": m.id for m in uow.session.scalars(select(MinorClass))}


def audit_actions(database: Database) -> list[str]:
    with database.uow() as uow:
        stmt = select(AuditEntry.action).where(AuditEntry.entity == "catalog")
        return list(uow.session.scalars(stmt.order_by(AuditEntry.id)))


def import_yuncheng(database: Database) -> ImportReport:
    return catalog.import_workbook(database.uow(), SYSTEM_ACTOR, path=YUNCHENG)


# --- import ---------------------------------------------------------------------------------


def test_the_yuncheng_workbook_imports_every_class_and_row(db: Database) -> None:
    report = import_yuncheng(db)
    counts = [
        (f.family, f.major_classes, f.minor_classes, f.criterion_rows, f.rows_added)
        for f in report.families
    ]
    assert counts == [
        (Family.COMPONENT, 5, 92, 375, 375),
        (Family.EVENT, 6, 98, 144, 144),
    ]
    assert [
        (c.family, c.major_classes, c.minor_classes, c.criterion_rows)
        for c in catalog.catalog_counts(db.uow())
    ] == [
        (Family.COMPONENT, 5, 92, 375),
        (Family.EVENT, 6, 98, 144),
    ]
    assert len(catalog.list_classes(db.uow(), family=Family.COMPONENT)) == 92
    assert len(catalog.list_classes(db.uow(), family=Family.EVENT)) == 98
    assert audit_actions(db) == ["catalog.import", "catalog.import"]

    well = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0101")
    assert (well.name, well.major_code, well.major_name, well.standard_count) == (
        "上水井盖",
        "01",
        "公用设施",
        4,
    )
    first = well.standards[0]
    assert (first.limit_text, first.limit_amount, first.limit_unit, first.limit_clock) == (
        "2紧急工作时",
        2,
        Unit.HOUR,
        Clock.URGENT,
    )
    assert first.handling_units == "运城市城市节约用水中心、各产权单位"


def test_the_case_loop_reads_a_row_with_its_parsed_limit(db: Database) -> None:
    import_yuncheng(db)
    tree = catalog.get_minor(db.uow(), family=Family.EVENT, code="0122")  # 非法伐树
    with db.uow() as uow:
        row = catalog.filing_row(uow.session, tree.standards[0].id)
        assert (row.family, row.minor_code, row.minor_name, row.position) == (
            Family.EVENT,
            "0122",
            "非法伐树",
            1,
        )
        assert row.limit is not None
        assert (row.limit.amount, row.limit.unit, row.limit.clock, row.limit.remark) == (
            1,
            Unit.HOUR,
            Clock.URGENT,
            "制止",
        )
        assert [r.id for r in catalog.filing_rows(uow.session, minor_id=tree.id)] == [
            s.id for s in tree.standards
        ]
        minor = catalog.minor_by_code(uow.session, family=Family.EVENT, code="0122")
        assert minor.id == tree.id
        with pytest.raises(NotFound):
            catalog.filing_row(uow.session, 10**9)


def test_reimporting_the_same_workbook_changes_nothing(db: Database) -> None:
    import_yuncheng(db)
    before_ids, before = ids(db), snapshot(db)
    report = import_yuncheng(db)
    assert not report.changed
    assert [f.rows_unchanged for f in report.families] == [375, 144]
    assert ids(db) == before_ids
    assert snapshot(db) == before


def test_a_reimport_keeps_ids_of_persisting_codes_and_retires_the_rest(
    db: Database, tmp_path: Path
) -> None:
    v1 = make_book(
        tmp_path,
        "v1.xlsx",
        [
            [1, "公用设施", 1, "上水井盖", "供水", "城管局", "缺失", "恢复", "2紧急工作时"],
            [None, None, None, None, None, None, "破损", "修复", "4小时"],
            [None, None, 2, "污水井盖", "排水", "城管局", "缺失", "恢复", "2紧急工作时"],
            [None, None, 3, "雨水井盖", "排水", "城管局", "缺失", "恢复", "2紧急工作时"],
        ],
    )
    v2 = make_book(
        tmp_path,
        "v2.xlsx",
        [
            [1, "公用设施", 1, "上水井盖", "供水", "城管局", "破损", "修复", "4小时"],
            [None, None, None, None, None, None, "缺失", "恢复", "1紧急工作时"],
            [None, None, 2, "污水井盖(改)", "排水", "城管局", "缺失", "恢复", "2紧急工作时"],
            [None, None, 99, "爱心驿站", "园林", "城管局", "破损", "修复", "3天"],
        ],
    )
    catalog.import_workbook(db.uow(), SYSTEM_ACTOR, path=v1)
    first_ids = ids(db)
    well_v1 = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0101").standards
    report = catalog.import_workbook(db.uow(), SYSTEM_ACTOR, path=v2)
    (changes,) = report.families
    assert (changes.classes_added, changes.classes_updated, changes.classes_retired) == (1, 1, 1)
    assert (changes.rows_added, changes.rows_updated, changes.rows_retired) == (2, 1, 2)
    assert (changes.rows_unchanged, changes.criterion_rows) == (1, 4)

    second_ids = ids(db)
    for code in ("component:0101", "component:0102", "component:0103"):
        assert second_ids[code] == first_ids[code]
    renamed = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0102")
    assert renamed.name == "污水井盖(改)"
    gone = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0103")
    assert not gone.active and gone.standards == []
    added = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0199")
    assert added.is_extension

    well_v2 = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0101").standards
    # "破损 4小时" is the same row (moved to first place); "缺失 2紧急工作时" became a new row.
    assert well_v2[0].id == well_v1[1].id and well_v2[0].position == 1
    assert well_v2[1].id not in {s.id for s in well_v1}
    with db.uow() as uow:
        old = catalog.filing_row(uow.session, well_v1[0].id)
        assert not old.active and old.limit is not None and old.limit.amount == 2
    codes = [c.code for c in catalog.list_classes(db.uow(), family=Family.COMPONENT)]
    assert codes == ["0101", "0102", "0199"]
    with_retired = catalog.list_classes(db.uow(), family=Family.COMPONENT, include_retired=True)
    assert [(c.code, c.active) for c in with_retired][-1] == ("0103", False)

    # Going back brings the retired class and row back under their old ids.
    catalog.import_workbook(db.uow(), SYSTEM_ACTOR, path=v1)
    assert catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0103").active
    assert ids(db)["component:0103"] == first_ids["component:0103"]
    well_again = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0101").standards
    assert [s.id for s in well_again] == [s.id for s in well_v1]


def test_a_rejected_workbook_changes_nothing(db: Database, tmp_path: Path) -> None:
    import_yuncheng(db)
    before = snapshot(db)
    bad = make_book(
        tmp_path,
        "bad.xlsx",
        [
            [1, "公用设施", 1, "上水井盖", "供水", "城管局", "缺失", "恢复", "2紧急工作时"],
            [None, None, None, None, None, None, "破损", "修复", "3周"],
        ],
    )
    with pytest.raises(WorkbookRejected) as caught:
        catalog.import_workbook(db.uow(), SYSTEM_ACTOR, path=bad)
    assert [(p.sheet, p.row) for p in caught.value.problems] == [("部件", 4)]
    assert snapshot(db) == before
    assert audit_actions(db) == ["catalog.import", "catalog.import"]


def test_a_dry_run_reports_and_changes_nothing(db: Database) -> None:
    report = catalog.import_workbook(db.uow(), SYSTEM_ACTOR, path=YUNCHENG, dry_run=True)
    assert report.dry_run and report.changed
    assert [f.minor_classes for f in report.families] == [92, 98]
    assert snapshot(db) == []
    assert audit_actions(db) == []


def test_the_unit_mapping_is_configuration(db: Database) -> None:
    calendar_days = dict(DEFAULT_UNIT_MAP)
    calendar_days["天"] = UnitMeaning(Clock.CALENDAR, Unit.DAY)
    catalog.import_workbook(db.uow(), SYSTEM_ACTOR, path=YUNCHENG, unit_map=calendar_days)
    well = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0101")
    assert [s.limit_clock for s in well.standards] == [
        Clock.URGENT,
        Clock.WORKING,
        Clock.CALENDAR,
        Clock.CALENDAR,
    ]
    # Back to the default mapping: same rows (same ids), re-read clocks.
    report = import_yuncheng(db)
    assert report.families[0].rows_added == 0 and report.families[0].rows_updated > 0
    again = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0101")
    assert [s.id for s in again.standards] == [s.id for s in well.standards]
    assert again.standards[2].limit_clock is Clock.WORKING


# --- export ---------------------------------------------------------------------------------


def test_export_then_import_into_a_fresh_database_reproduces_the_catalog(
    db: Database, fresh_db: Database, tmp_path: Path
) -> None:
    import_yuncheng(db)
    path = tmp_path / "export.xlsx"
    counts = catalog.export_workbook(db.uow(), path=path)
    assert [(c.family, c.minor_classes, c.criterion_rows) for c in counts] == [
        (Family.COMPONENT, 92, 375),
        (Family.EVENT, 98, 144),
    ]
    catalog.import_workbook(fresh_db.uow(), SYSTEM_ACTOR, path=path)
    original = snapshot(db)
    assert len(original) == 375 + 144
    assert snapshot(fresh_db) == original
    # ... and both equal the workbook as read (limit texts included, "1紧急工作时\n" cleaned).
    assert catalog.current_catalog(fresh_db.uow()) == read_workbook(YUNCHENG)
    texts = {row[12] for row in original}
    assert {"1紧急工作时制止", "1紧急工作时", "2紧急工作日", "15天"} <= texts


def test_export_of_one_family_and_of_an_empty_catalog(db: Database, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        catalog.export_workbook(db.uow(), path=tmp_path / "empty.xlsx")
    import_yuncheng(db)
    path = tmp_path / "events.xlsx"
    catalog.export_workbook(db.uow(), path=path, family=Family.EVENT)
    spec = read_workbook(path)
    assert [f.family for f in spec.families] == [Family.EVENT]


# --- defaults -------------------------------------------------------------------------------


def test_load_defaults_is_idempotent(db: Database) -> None:
    first = catalog.load_defaults(db.uow(), SYSTEM_ACTOR)
    assert first.changed
    expected = [(f.family, f.minor_count, f.standard_count) for f in default_catalog().families]
    assert [(f.family, f.minor_classes, f.criterion_rows) for f in first.families] == expected
    before_ids, before = ids(db), snapshot(db)
    second = catalog.load_defaults(db.uow(), SYSTEM_ACTOR)
    assert not second.changed
    assert ids(db) == before_ids and snapshot(db) == before
    assert catalog.current_catalog(db.uow()) == default_catalog()


def test_load_defaults_does_not_overwrite_a_city_catalog_unless_asked(db: Database) -> None:
    import_yuncheng(db)
    before = snapshot(db)
    with pytest.raises(Conflict, match="--replace"):
        catalog.load_defaults(db.uow(), SYSTEM_ACTOR)
    assert snapshot(db) == before
    catalog.load_defaults(db.uow(), SYSTEM_ACTOR, replace=True)
    assert catalog.current_catalog(db.uow()) == default_catalog()
    station = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0199")  # 爱心驿站
    assert not station.active


# --- permissions, departments, lookups --------------------------------------------------------


def test_only_an_admin_changes_the_catalog(world: World, db: Database) -> None:
    for actor in (world.dispatcher, world.supervisor, world.operator, world.leader):
        with pytest.raises(PermissionDenied):
            catalog.import_workbook(db.uow(), actor, path=YUNCHENG)
        with pytest.raises(PermissionDenied):
            catalog.load_defaults(db.uow(), actor)
    assert snapshot(db) == []
    catalog.load_defaults(db.uow(), world.admin)
    row_id = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0102").standards[0].id
    with pytest.raises(PermissionDenied):
        catalog.set_default_department(
            db.uow(), world.dispatcher, standard_id=row_id, department_code="drainage"
        )
    with db.uow() as uow:
        entry = uow.session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "catalog")
        ).first()
        assert entry is not None and entry.actor_username == "admin"


def test_handling_departments_are_resolved_by_exact_name(world: World, db: Database) -> None:
    yc_drainage = org.create_department(
        db.uow(),
        SYSTEM_ACTOR,
        DepartmentCreate(
            code="yc-drainage", name="运城市排水服务中心", kind=DepartmentKind.HANDLING
        ),
    )
    import_yuncheng(db)
    sewer = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0102")  # 排水服务中心、...
    assert {s.default_department_id for s in sewer.standards} == {yc_drainage.id}
    water = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0101")  # 节约用水中心
    assert {s.default_department_id for s in water.standards} == {None}

    chosen = catalog.set_default_department(
        db.uow(), world.admin, standard_id=water.standards[0].id, department_code="drainage"
    )
    assert chosen.default_department_id == world.drainage_id
    import_yuncheng(db)  # the binding survives a re-import of the same row
    again = catalog.get_minor(db.uow(), family=Family.COMPONENT, code="0101")
    assert again.standards[0].default_department_id == world.drainage_id
    with pytest.raises(NotFound):
        catalog.set_default_department(
            db.uow(), world.admin, standard_id=water.standards[0].id, department_code="nope"
        )
    cleared = catalog.set_default_department(
        db.uow(), world.admin, standard_id=water.standards[0].id, department_code=None
    )
    assert cleared.default_department_id is None


def test_classes_are_found_by_code_prefix_or_name(db: Database) -> None:
    catalog.load_defaults(db.uow(), SYSTEM_ACTOR)
    covers = catalog.list_classes(db.uow(), family=Family.COMPONENT, query="井盖")
    assert covers and all("井盖" in c.name for c in covers)
    roads = catalog.list_classes(db.uow(), family=Family.COMPONENT, query="02")
    assert roads and all(c.code.startswith("02") for c in roads)
    emergencies = catalog.list_classes(db.uow(), query="突发")
    assert {c.major_code for c in emergencies} == {"05"}
    assert {c.family for c in emergencies} == {Family.EVENT}
    assert catalog.list_classes(db.uow(), query="100%_") == []
    majors = catalog.list_majors(db.uow(), family=Family.EVENT)
    assert [m.code for m in majors] == ["01", "02", "03", "04", "05", "06"]


def test_lookups_say_what_is_wrong(db: Database) -> None:
    catalog.load_defaults(db.uow(), SYSTEM_ACTOR)
    with pytest.raises(NotFound, match="0999"):
        catalog.get_minor(db.uow(), family=Family.EVENT, code="0999")
    with pytest.raises(InvalidInput, match="4 digits"):
        catalog.get_minor(db.uow(), family=Family.EVENT, code="01")
    with pytest.raises(NotFound):
        catalog.standards_for(db.uow(), minor_id=10**9)
    minor = catalog.get_minor(db.uow(), family=Family.EVENT, code="0101")
    assert catalog.standards_for(db.uow(), minor_id=minor.id) == minor.standards
