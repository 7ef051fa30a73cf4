"""`cityloop open311 ...` as an admin uses it, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cityloop.cli_support as cli_support
from cityloop.config import get_settings
from cityloop.open311.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CITYLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    cli_support.use_database(None)
    yield
    cli_support.use_database(None)
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_client_key_is_printed_once_and_listed_only_by_its_hint() -> None:
    code, out = run("client", "add", "FixMyStreet")
    assert code == 0, out
    key = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("api_key"))
    assert len(key) >= 40
    code, out = run("client", "list")
    assert code == 0 and "FixMyStreet" in out and key[:6] in out and key not in out
    assert run("client", "disable", "FixMyStreet")[0] == 0
    assert "disabled" in run("client", "list")[1]
    assert run("client", "enable", "FixMyStreet")[0] == 0


def test_settings_are_set_one_at_a_time_and_checked() -> None:
    code, out = run("config", "set", "jurisdiction_id", "suzhou.example")
    assert code == 0 and '"suzhou.example"' in out
    assert run("config", "set", "queued", "true")[1].strip() == "open311.queued = true"
    code, out = run("config", "set", "listed_channels", "open311,public_web")
    assert code == 0 and '["open311", "public_web"]' in out
    code, out = run("config", "show")
    assert '"jurisdiction_id": "suzhou.example"' in out and '"queued": true' in out
    code, _ = run("config", "set", "no_such", "1")
    assert code != 0
    code, _ = run("config", "set", "listed_channels", "public_web")
    assert code != 0


def test_the_queue_reports_what_it_did() -> None:
    code, out = run("queue", "process")
    assert code == 0 and "created 0 case(s), rejected 0, 0 still pending" in out
    assert run("queue", "status")[1].strip() == "0 pending"
