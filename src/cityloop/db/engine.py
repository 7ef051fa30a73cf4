"""Engine creation with the per-backend settings cityloop relies on."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from cityloop.db.cache import CACHE_KEY
from cityloop.db.uow import UnitOfWork


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, emit BEGIN: pysqlite's implicit transactions break
        # SAVEPOINT (used by the rolled-back test transactions) and cannot BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # synchronous=FULL: an acknowledged case survives power loss, not only a process crash.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front. A deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY without waiting; IMMEDIATE waits on busy_timeout.
        # Readers (execution option cityloop_read=True) stay deferred and never block writers.
        if conn.get_execution_options().get("cityloop_read"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class WriterLock:
    """SQLite's single writer, queued fairly: a re-entrant lock in this process, and an
    exclusive ``flock`` on a file beside the database across processes.

    Without the file lock, two server workers (``cityloop serve --workers 2``) or a worker
    and a CLI command race for ``BEGIN IMMEDIATE``, and the loser sleeps in SQLite's busy
    handler, backing off up to 100 ms at a time: some requests starve for seconds. A process
    blocked in ``flock`` wakes as soon as the holder lets go. Writers that do not use cityloop
    (the ``sqlite3`` shell) still meet the busy timeout as before.
    """

    def __init__(self, path: Path | None) -> None:
        self._local = threading.RLock()
        self._path = path
        self._fd: int | None = None
        self._depth = 0

    def __enter__(self) -> WriterLock:
        self._local.acquire()
        try:
            if self._depth == 0 and self._path is not None:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._local.release()
            raise
        self._depth += 1
        return self

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._local.release()


class Database:
    """An engine plus the session factory that units of work draw from."""

    def __init__(
        self,
        engine: Engine,
        session_factory: Callable[[], Session] | None = None,
        read_session_factory: Callable[[], Session] | None = None,
    ) -> None:
        self.engine = engine
        shared: dict[str, Any] = {CACHE_KEY: {}}  # one cache for both factories (db/cache.py)
        self.info = shared  # what sessions share; ``cache.peek`` reads it without a session
        self.session_factory: Callable[[], Session] = session_factory or sessionmaker(
            bind=engine, expire_on_commit=False, info=shared
        )
        if read_session_factory is None:
            read_session_factory = (
                session_factory
                if session_factory is not None
                else sessionmaker(
                    bind=engine.execution_options(cityloop_read=True),
                    expire_on_commit=False,
                    info=shared,
                )
            )
        self.read_session_factory: Callable[[], Session] = read_session_factory
        # One writer at a time on SQLite, queued in-process and across processes (see
        # UnitOfWork.__enter__ and WriterLock).
        self.write_lock: WriterLock | None = None
        if engine.dialect.name == "sqlite":
            path = engine.url.database
            self.write_lock = WriterLock(
                Path(path + "-writer.lock") if path and path != ":memory:" else None
            )

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.read_session_factory, self.write_lock)

    def read_connection(self) -> Connection:
        """A connection whose transactions only read (deferred BEGIN on SQLite)."""
        return self.engine.execution_options(cityloop_read=True).connect()
