"""Shared fixtures: real databases (SQLite and PostgreSQL) and a small named world.

Every integration test runs twice, once per backend, inside a transaction that is rolled back
at the end; service code commits only savepoints (``join_transaction_mode="create_savepoint"``).

The named world (see ``world``):
- ``centre``: the supervision and command centre (监督指挥中心). Its staff work citywide.
- ``drainage`` and ``sanitation``: two handling departments (专业部门).
- ``inspector`` (centre): reports, verifies, checks. Sees the cases they reported.
- ``dispatcher`` (centre): dispatches to departments; sees every case.
- ``operator`` (drainage): a department operator; sees and acts only on drainage's cases.
- ``outsider`` (sanitation): a department operator of the OTHER department; must never see or
  act on drainage's cases.
- ``intake``, ``supervisor``, ``leader``, ``admin``: the remaining centre roles.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from tests.world import World, build_world

import cityloop.org.passwords as passwords
from cityloop.config import get_settings
from cityloop.db.engine import Database, make_engine
from cityloop.db.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "CITYLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = [
    b for b in os.environ.get("CITYLOOP_TEST_BACKENDS", "sqlite,postgresql").split(",") if b
]


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> None:
    # Real Argon2id, with cheap parameters: the world is rebuilt for every test.
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _pg_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    name = f"cityloop_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _pg_conninfo(PG_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "cityloop.db"
    return f"sqlite:///{path}"


def _migrated_engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


@pytest.fixture(scope="session")
def engines(request: pytest.FixtureRequest) -> Iterator[dict[str, Engine]]:
    made: dict[str, Engine] = {}
    yield made
    for engine in made.values():
        engine.dispose()


def _engine_for(backend: str, request: pytest.FixtureRequest, engines: dict[str, Engine]) -> Engine:
    if backend not in engines:
        url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
        engines[backend] = _migrated_engine(url)
    return engines[backend]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(
    backend: str, request: pytest.FixtureRequest, engines: dict[str, Engine]
) -> Iterator[Database]:
    """A migrated database whose every change this test makes is rolled back afterwards."""
    engine = _engine_for(backend, request, engines)
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield Database(engine, factory)
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def fresh_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """An empty database of this backend that a test may commit to for real (servers, crashes)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"cityloop_fresh_{uuid.uuid4().hex[:10]}"
    admin = _pg_conninfo(PG_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_db(fresh_database_url: str) -> Iterator[Database]:
    """A migrated, empty database that commits for real (threads, exports, own connections)."""
    database = Database.from_url(fresh_database_url)
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.engine.dispose()


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CITYLOOP_DATA_DIR (attachments, exports) in this test's own folder; settings re-read."""
    path = tmp_path / "data"
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()
