"""Alembic environment: always run with a connection handed in by cityloop.db.migrate."""

from __future__ import annotations

from alembic import context

from cityloop.db.registry import load_all_models

target_metadata = load_all_models().metadata
config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from cityloop.config import get_settings
        from cityloop.db.engine import make_engine

        engine = make_engine(get_settings().database_url)
        with engine.begin() as conn:
            _run(conn)
        return
    _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
