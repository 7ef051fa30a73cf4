"""Engine creation with the per-backend settings cityloop relies on."""

from __future__ import annotations

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
        # One writer at a time on SQLite, queued in-process (see UnitOfWork.__enter__).
        self.write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None

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
