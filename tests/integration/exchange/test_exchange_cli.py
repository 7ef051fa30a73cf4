"""`cityloop exchange ...` as an operator uses it, on a real SQLite file.

The commands run the way ``cityloop.cli.main`` runs every group (``run_with_friendly_errors``:
a user's mistake is one ``error:`` line and exit status 2), through the exchange's own Typer app
until the lead mounts it as ``cityloop exchange``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.exchange.exchange_support import (
    install_outbox_hook,
    row,
    seed,
    walk,
    write_csv,
    write_mapping,
)
from tests.world import World, build_world

import cityloop.cli_support as cli_support
from cityloop.cli_support import run_with_friendly_errors
from cityloop.config import get_settings
from cityloop.db.engine import Database
from cityloop.exchange.cli import app


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("CITYLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("CITYLOOP_EXCHANGE_URL", raising=False)
    monkeypatch.delenv("CITYLOOP_EXCHANGE_TOKEN", raising=False)
    get_settings.cache_clear()
    cli_support.use_database(None)
    install_outbox_hook(monkeypatch)
    yield cli_support.open_database()
    cli_support.open_database().engine.dispose()
    cli_support.use_database(None)
    get_settings.cache_clear()


@pytest.fixture
def world(database: Database) -> World:
    w = build_world(database)
    seed(database)
    return w


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        run_with_friendly_errors(lambda: app(args=list(args), prog_name="cityloop exchange"))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_import_reports_rejections_and_reruns(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = str(write_mapping(tmp_path / "m.toml"))
    good = write_csv(tmp_path / "good.csv", [row("SZ1"), row("SZ2"), row("SZ3")])
    code, out, _ = run(capsys, "import", str(good), "--mapping", mapping)
    assert code == 0 and out.startswith("3 new, 0 already imported, 0 rejected (3 rows read)")
    code, out, _ = run(capsys, "import", str(good), "--mapping", mapping, "--quiet")
    assert code == 0 and out.startswith("0 new, 3 already imported, 0 rejected")

    bad = write_csv(
        tmp_path / "bad.csv",
        [row("SZ4"), row("SZ5", 上报时间="2019-02-30 10:00:00"), row("SZ6", 小类="9999")],
    )
    code, out, err = run(capsys, "import", str(bad), "--mapping", mapping, "--quiet")
    assert code == 2 and out == ""
    assert "row 3: reported_at (2019-02-30 10:00:00): bad date" in err
    assert "row 4: minor_code (9999): unknown class" in err
    assert "error: 2 row(s) rejected; nothing was imported (3 rows read)" in err

    rejects = tmp_path / "rejects.csv"
    code, out, err = run(
        capsys,
        "import",
        str(bad),
        "--mapping",
        mapping,
        "--quiet",
        "--partial",
        "--rejects",
        str(rejects),
        "--show",
        "1",
    )
    assert code == 0 and out.startswith("1 new, 0 already imported, 2 rejected")
    assert "... 1 more rejection(s); all in" in err
    lines = rejects.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "row,field,value,reason" and len(lines) == 3


def test_import_refuses_bad_mappings_and_missing_files(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_csv(tmp_path / "good.csv", [row("SZ1")])
    bad_mapping = write_mapping(tmp_path / "m.toml", 'source = "x"\n[columns]\n"a" = "nope"\n')
    code, _, err = run(capsys, "import", str(good), "--mapping", str(bad_mapping))
    assert code == 2 and err.startswith("error: m.toml: columns.a:")
    mapping = str(write_mapping(tmp_path / "ok.toml"))
    code, _, err = run(capsys, "import", str(tmp_path / "none.csv"), "--mapping", mapping)
    assert code == 2 and "file not found" in err
    code, _, err = run(capsys, "import", str(good), "--mapping", mapping, "--as", "operator")
    assert code == 2 and "needs one of: admin" in err


def test_export_in_every_format_with_scope_and_filters(
    world: World, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standard = seed(database)
    walk(database, world, standard)
    walk(database, world, standard, until="dispatch", department="sanitation")
    for name in ("c.csv", "c.xlsx", "c.geojson", "c.parquet"):
        code, out, err = run(capsys, "export", "--as", "dispatcher", "--out", str(tmp_path / name))
        assert code == 0, err
        assert out.startswith("wrote 2 case(s)")
    code, out, _ = run(capsys, "export", "--as", "operator", "--out", str(tmp_path / "mine.csv"))
    assert out.startswith("wrote 1 case(s)")
    code, out, _ = run(
        capsys,
        "export",
        "--as",
        "dispatcher",
        "--out",
        str(tmp_path / "f.csv"),
        "--status",
        "closed",
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-24",
    )
    assert code == 0 and out.startswith("wrote 1 case(s)")
    code, _, err = run(capsys, "export", "--as", "dispatcher", "--out", str(tmp_path / "x.pdf"))
    assert code == 2 and "unknown format of 'x.pdf'" in err
    code, _, err = run(
        capsys, "export", "--as", "dispatcher", "--out", str(tmp_path / "y.csv"), "--from", "soon"
    )
    assert code == 2 and "'soon' is not a date" in err
    assert not (tmp_path / "x.pdf").exists() and not (tmp_path / "y.csv").exists()


def test_settings_partners_and_the_push(
    world: World, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    walk(database, world, seed(database), until="dispatch")
    code, _, err = run(capsys, "push", "--once")
    assert code == 2 and "not configured: set upstream_url, upstream_token, city_code" in err
    assert "2 pending" in err
    assert (
        run(capsys, "config", "set", "city_code", "320300")[1] == 'exchange.city_code = "320300"\n'
    )
    code, _, err = run(capsys, "config", "set", "city_code", "32")
    assert code == 2 and "city_code" in err
    assert run(capsys, "config", "set", "upstream_token", "s" * 40)[0] == 0
    code, out, _ = run(capsys, "config", "show")
    assert '"upstream_token": "(set)"' in out and "s" * 40 not in out

    code, out, _ = run(capsys, "partner", "add", "320600", "--name", "南通市")
    token = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("token"))
    code, out, _ = run(capsys, "partner", "list")
    assert "320600\t南通市" in out and token[:6] in out and token not in out
    assert run(capsys, "partner", "disable", "320600")[0] == 0
    assert "disabled" in run(capsys, "partner", "list")[1]

    assert run(capsys, "config", "set", "upstream_url", "http://127.0.0.1:9/inbound")[0] == 0
    code, out, err = run(capsys, "push", "--once")
    assert code == 1 and "sent 0, failed 2, 2 pending" in out and "ConnectError" in err
    code, out, _ = run(capsys, "status")
    assert "pending 2  sent 0  failing 2" in out and "last error: ConnectError" in out
    assert run(capsys, "retry")[1] == "2 pending row(s) due now\n"
