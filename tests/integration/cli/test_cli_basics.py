"""The command line as an operator uses it, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cityloop.cli_support as cli_support
from cityloop.cli import main
from cityloop.config import get_settings


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("CITYLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    cli_support.use_database(None)
    yield None
    cli_support.use_database(None)
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_init_creates_then_reports_up_to_date(
    cli: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0 and "upgraded empty ->" in out
    code, out, _ = run(capsys, "init")
    assert code == 0 and "up to date" in out


def test_users_are_added_and_bad_input_is_one_sentence(
    cli: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "dept", "add", "centre", "--name", "中心", "--kind", "centre")[0] == 0
    code, out, _ = run(
        capsys,
        "user",
        "add",
        "alice",
        "--role",
        "dispatcher",
        "--department",
        "centre",
        "--password",
        "long-enough-pw",
    )
    assert code == 0 and "created user alice" in out
    code, _, err = run(
        capsys,
        "user",
        "add",
        "bob",
        "--role",
        "dispatcher",
        "--department",
        "nowhere",
        "--password",
        "long-enough-pw",
    )
    assert (
        code == 2
        and err.strip() == "error: no department with code 'nowhere' (field 'department_code')"
    )
    code, _, err = run(
        capsys,
        "user",
        "add",
        "carol",
        "--role",
        "dispatcher",
        "--department",
        "centre",
        "--password",
        "short",
    )
    assert code == 2 and err.startswith("error: ") and "8 characters" in err
    assert "Traceback" not in err
    code, out, _ = run(capsys, "user", "passwd", "alice", "--password", "another-long-pw")
    assert code == 0 and "password changed" in out
    code, _, err = run(capsys, "user", "passwd", "nobody", "--password", "another-long-pw")
    assert code == 2 and "no user named 'nobody'" in err


def test_an_unreachable_database_is_a_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYLOOP_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    cli_support.use_database(None)
    try:
        code, _, err = run(capsys, "user", "list")
    finally:
        get_settings.cache_clear()
        cli_support.use_database(None)
    assert code == 2 and err.startswith("error: cannot use the database")


def test_a_case_is_created_acted_on_and_listed(
    cli: object, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "dept", "add", "centre", "--name", "中心", "--kind", "centre")
    for user, role in [("ann", "intake_operator"), ("ivan", "inspector")]:
        run(
            capsys,
            "user",
            "add",
            user,
            "--role",
            role,
            "--department",
            "centre",
            "--password",
            "long-enough-pw",
        )
    code, out, _ = run(
        capsys,
        "case",
        "create",
        "--as",
        "ann",
        "--channel",
        "hotline_12345",
        "--description",
        "路灯不亮",
        "--lon",
        "116.3",
        "--lat",
        "39.9",
        "--system",
        "gcj02",
    )
    assert code == 0 and "reported" in out
    case_code = out.split()[0]
    code, out, _ = run(
        capsys, "case", "act", case_code, "send_verify", "--as", "ann", "--inspector", "ivan"
    )
    assert code == 0 and "verifying" in out
    code, _, err = run(capsys, "case", "act", case_code, "close", "--as", "ivan")
    assert code == 2 and "close" in err and "verifying" in err and "inspector" in err
    code, out, _ = run(capsys, "case", "list", "--as", "ann")
    assert code == 0 and case_code in out and "1 of 1" in out
    code, out, _ = run(capsys, "case", "show", case_code, "--as", "ann", "--events")
    assert code == 0 and "send_verify" in out
    code, _, err = run(
        capsys, "case", "create", "--as", "ann", "--channel", "hotline_12345", "--description", "x"
    )
    assert code == 2 and "location" in err


def test_the_worker_runs_one_pass(cli: object, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "worker", "--once")
    assert code == 0 and '"overdue": 0' in out
