"""The columnar export path gives the same KPIs as reading the live database."""

from __future__ import annotations

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
