"""The columnar export path gives the same KPIs as reading the live database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.integration.evaluation.evaluation_october import October, build_october
from tests.world import World

from cityloop.db.engine import Database
from cityloop.evaluation import domain, service
from cityloop.evaluation.engine import Engine, export_parquet


@pytest.fixture
def october(db: Database, world: World) -> October:
    return build_october(db, world)


def test_parquet_export_and_database_agree(db: Database, october: October, tmp_path: Path) -> None:
    uow = db.uow()
    with uow.read():
        counts = export_parquet(uow.session, tmp_path / "export")
        settings = service.settings_in(uow.session)
        period = domain.month_period("2026-10")
        live = Engine.from_database(uow.session, settings, [period]).counts(period)
    assert counts["cases"] == 9
    assert counts["events"] > 50
    exported = Engine.from_parquet(tmp_path / "export", settings).counts(period)
    assert exported.by == live.by
    report = service.monthly_report(db.uow(), "2026-10", parquet=tmp_path / "export")
    assert report.kpis.headline == service.monthly_kpis(db.uow(), "2026-10").headline


def _kind_of(engine: Engine, name: str) -> str:
    row = engine.con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_the_derived_files_are_read_and_an_export_without_them_is_derived(
    db: Database, october: October, tmp_path: Path
) -> None:
    uow = db.uow()
    with uow.read():
        counts = export_parquet(uow.session, tmp_path / "export")
        settings = service.settings_in(uow.session)
    assert counts["steps"] > counts["cases"]
    assert counts["callbacks"] == 4  # C1, C2, C3, C6
    assert any((tmp_path / "export" / "steps").glob("task=*/kind=*/steps.parquet"))
    period = domain.month_period("2026-10")
    stored = Engine.from_parquet(tmp_path / "export", settings)
    assert (_kind_of(stored, "steps"), _kind_of(stored, "callbacks")) == ("VIEW", "VIEW")
    expected = stored.counts(period).by
    # An export from before the derived relations: they are derived in memory when opened.
    shutil.rmtree(tmp_path / "export" / "steps")
    (tmp_path / "export" / "callbacks.parquet").unlink()
    derived = Engine.from_parquet(tmp_path / "export", settings)
    assert _kind_of(derived, "steps") == "BASE TABLE"
    assert derived.counts(period).by == expected
