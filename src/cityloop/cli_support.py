"""What every CLI command shares: opening the configured database and reporting errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import ProgrammingError as SAProgrammingError

from cityloop.config import get_settings
from cityloop.db.engine import Database
from cityloop.db.migrate import current_revision, head_revision, upgrade
from cityloop.errors import CityloopError

R = TypeVar("R")

_database: Database | None = None


def open_database(*, migrate: bool = True) -> Database:
    """The database named by CITYLOOP_DATABASE_URL, migrated to head (cached per process)."""
    global _database
    if _database is None:
        database = Database.from_url(get_settings().database_url)
        if migrate and current_revision(database.engine) != head_revision():
            upgrade(database.engine)
        _database = database
    return _database


def use_database(database: Database | None) -> None:
    """Point the CLI at another database (tests and the demo builder)."""
    global _database
    _database = database


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def validation_sentence(exc: ValidationError) -> str:
    """One sentence naming the first bad field of a pydantic error."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "input"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{field}: {err['msg']}{more}"


def run_with_friendly_errors(func: Callable[[], R]) -> R:
    """Turn the errors a user can cause into one sentence on stderr and exit code 2.

    Bugs still raise: a traceback for a bug is useful, for bad input it is not.
    """
    try:
        return func()
    except CityloopError as exc:
        where = f" (field '{exc.field}')" if exc.field and exc.field not in exc.message else ""
        fail(f"{exc.message}{where}")
    except ValidationError as exc:
        fail(validation_sentence(exc))
    except OperationalError as exc:
        fail(f"cannot use the database: {str(exc.orig).strip()}")
    except SAProgrammingError as exc:
        fail(f"the database is not in the expected shape (run `cityloop init`): {exc.orig}")
    except FileNotFoundError as exc:
        fail(f"file not found: {exc.filename}")
    except IsADirectoryError as exc:
        fail(f"expected a file, got a directory: {exc.filename}")
    except PermissionError as exc:
        fail(f"permission denied: {exc.filename}")
