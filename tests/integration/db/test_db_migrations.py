import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from tests.world import World

from cityloop.db.engine import Database
from cityloop.db.migrate import head_revision
from cityloop.db.registry import load_all_models


def test_the_database_is_at_the_code_head(db: Database) -> None:
    with db.uow() as uow:
        context = MigrationContext.configure(uow.session.connection())
        assert context.get_current_revision() == head_revision()


def test_migrations_create_exactly_what_the_models_declare(db: Database) -> None:
    metadata = load_all_models().metadata
    with db.uow() as uow:
        conn = uow.session.connection()
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_audit_rows_cannot_be_updated_or_deleted(world: World, db: Database) -> None:
    for statement in ("UPDATE audit_entry SET action = 'forged'", "DELETE FROM audit_entry"):
        with db.uow() as uow, pytest.raises(DBAPIError, match="append-only"):
            uow.session.execute(text(statement))
