import gc
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cityloop.cli_support import use_database
from cityloop.config import get_settings
from cityloop.db.engine import Database, make_engine
from cityloop.web.app import create_served_app


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    assert (tmp_path / "sub").is_dir()


def test_sqlite_writers_in_two_processes_queue_on_the_writer_lock(tmp_path: Path) -> None:
    """While this process holds the write lock, another process's writer waits for it."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    database = Database.from_url(url)
    assert database.write_lock is not None
    log = tmp_path / "order.log"
    child = textwrap.dedent(
        f"""
        from pathlib import Path
        from cityloop.db.engine import Database
        db = Database.from_url({url!r})
        Path({str(tmp_path / "ready")!r}).touch()
        with db.write_lock:
            with open({str(log)!r}, "a") as f:
                f.write("child\\n")
        """
    )
    with database.write_lock:
        with database.write_lock:  # re-entrant in this process; still held after the inner exit
            pass
        proc = subprocess.Popen([sys.executable, "-c", child])
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # the child is now blocked on the lock, not yet writing
        with open(log, "a") as f:
            f.write("parent\n")
    assert proc.wait(timeout=30) == 0
    assert log.read_text().split() == ["parent", "child"]


def test_served_app_freezes_its_startup_heap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    use_database(None)
    try:
        app = create_served_app()
        assert gc.get_freeze_count() == 0
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() > 10_000  # the app, mappers, schemas...
    finally:
        gc.unfreeze()
        use_database(None)
        get_settings.cache_clear()
