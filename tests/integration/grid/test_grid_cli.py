"""`cityloop grid ...` as an administrator runs it (the grid Typer app, against ``db``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from shapely.geometry import mapping
from tests.integration.grid.grid_support import (
    ADCODE,
    DISTRICT,
    P_A1,
    area_files,
    make_departments,
    write_geojson,
)
from tests.world import World
from typer.testing import CliRunner

from cityloop.catalog import service as catalog
from cityloop.cli_support import use_database
from cityloop.db.engine import Database
from cityloop.grid.cli import app
from cityloop.org.domain import SYSTEM_ACTOR

runner = CliRunner()


@pytest.fixture
def cli(db: Database, world: World) -> Iterator[None]:
    use_database(db)
    try:
        yield None
    finally:
        use_database(None)


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_build_locate_stats_and_rules_from_the_command_line(
    cli: None, db: Database, tmp_path: Path
) -> None:
    make_departments(db)
    catalog.load_defaults(db.uow(), SYSTEM_ACTOR)
    subs, comms = area_files(tmp_path)
    boundary = write_geojson(
        tmp_path / "district.geojson",
        [
            {
                "type": "Feature",
                "properties": {"name": "测试区"},
                "geometry": mapping(DISTRICT.geometry),
            }
        ],
    )
    code, out = run(
        "areas",
        "import",
        str(subs),
        "--level",
        "subdistrict",
        "--system",
        "wgs84",
        "--adcode",
        ADCODE,
    )
    assert code == 0 and "2 subdistrict areas imported" in out and "2 bound" in out
    code, out = run(
        "areas",
        "import",
        str(comms),
        "--level",
        "community",
        "--system",
        "wgs84",
        "--adcode",
        ADCODE,
    )
    assert code == 0 and "3 community areas imported" in out
    code, out = run(
        "build",
        "--adcode",
        ADCODE,
        "--cell",
        "100",
        "--boundary",
        str(boundary),
        "--boundary-system",
        "wgs84",
    )
    assert code == 0, out
    assert "built 110199 测试区" in out and "100 m cells" in out and "version 1" in out
    code, out = run(
        "locate",
        str(P_A1[0]),
        str(P_A1[1]),
        "--system",
        "wgs84",
        "--family",
        "event",
        "--minor",
        "0101",
    )
    assert code == 0, out
    assert "cell 110199001001" in out and "suggested department: sd-a (territory)" in out
    code, out = run("locate", "116.5", "39.5", "--system", "wgs84")
    assert code == 1 and "outside every stored grid" in out
    code, out = run(
        "responsibility",
        "add",
        "r1",
        "--name",
        "甲一",
        "--inspector",
        "inspector2",
        "--cell",
        "110199001001",
    )
    assert code == 0 and "inspector inspector2" in out
    code, out = run(
        "rule",
        "add",
        "--family",
        "event",
        "--minor",
        "0406",
        "--scope",
        "community",
        "--area",
        "comm-a1",
        "--department",
        "sanitation",
    )
    assert code == 0 and "-> sanitation" in out
    code, out = run("rule", "list")
    assert "community:comm-a1" in out
    code, out = run("stats", "--json")
    (stats,) = json.loads(out)
    assert stats["adcode"] == ADCODE and stats["responsibilities"] == 1 and stats["rules"] == 1
    code, out = run("bind")
    assert code == 0 and f"{stats['cells']} cells bound to a subdistrict" in out
