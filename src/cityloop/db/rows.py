"""The intake hot path's statements, compiled once and run on the DBAPI cursor.

Intake is the hottest write path: every report allocates a case code and inserts a case row
and its first event row. Through the ORM's unit of work, or even through SQLAlchemy Core's
execution layer, each of those statements costs several times the database's own work in
Python (cache keys, parameter construction, result wrappers). Here a statement is compiled by
SQLAlchemy once per dialect, with SQLAlchemy's own bind processors for its column types (so a
UTC instant, a JSON document or a date is stored exactly as the ORM would store it), and then
executed directly on the session's current DBAPI connection, inside the session's transaction.

``insert_new`` takes an object built with the mapped class (so every domain helper that sets
attributes on it still works), fills the columns it was not given from the columns' Python
defaults, inserts it and writes the new primary key (and, for a versioned class, version 1)
back onto the object. The object stays *transient*: it is not in the session, so the ORM never
flushes it again. Use it only for rows that are complete when inserted and are not changed
later in the same transaction through the ORM (a case's first picture, an immutable event).

Errors are raised as SQLAlchemy's (``sqlalchemy.exc.IntegrityError`` for a duplicate key), as
every caller expects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, insert, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind names, in order for a positional paramstyle
    positional: bool
    literals: dict[str, Any]  # values the statement carries itself (``values(last=1)``)
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]


_COMPILED: dict[tuple[int, str], _Compiled] = {}
_KEEP: dict[int, ClauseElement] = {}  # keeps each compiled statement alive, so ids stay unique


def _compile(
    stmt: ClauseElement, dialect: Dialect, column_keys: list[str] | None = None
) -> _Compiled:
    key = (id(stmt), dialect.name)
    found = _COMPILED.get(key)
    if found is not None:
        return found
    compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or compiled.binds)
    processors = []
    for name in names:
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append((name, processor))
    literals = {n: b.effective_value for n, b in compiled.binds.items() if not b.required}
    found = _Compiled(
        compiled.string, names, bool(compiled.positiontup), literals, tuple(processors)
    )
    _KEEP[id(stmt)] = stmt
    _COMPILED[key] = found
    return found


def execute_compiled(
    session: Session,
    stmt: ClauseElement,
    values: Mapping[str, Any],
    *,
    column_keys: list[str] | None = None,
) -> tuple[Any, ...] | None:
    """Run ``stmt`` (a module-level constant) with ``values`` by bind name; the first row back.

    Runs in the session's transaction (begun as usual, BEGIN IMMEDIATE on SQLite).
    """
    connection = session.connection()
    compiled = _compile(stmt, connection.dialect, column_keys)
    params = {**compiled.literals, **values}
    for name, processor in compiled.processors:
        params[name] = processor(params[name])
    args: Any = tuple(params[n] for n in compiled.names) if compiled.positional else params
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        try:
            cursor.execute(compiled.sql, args)
        except connection.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                compiled.sql, args, exc, connection.dialect.loaded_dbapi.Error
            ) from exc
        row = cursor.fetchone() if cursor.description else None
        return tuple(row) if row is not None else None
    finally:
        cursor.close()


@dataclass(frozen=True)
class _Plan:
    table: Table
    columns: tuple[tuple[str, Column[Any]], ...]  # (attribute key, column)
    pk_key: str
    version_key: str | None
    statement: Any
    column_keys: list[str]


_PLANS: dict[type[Any], _Plan] = {}


def _plan(cls: type[Any]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _make_plan(cls)
    return plan


def _make_plan(cls: type[Any]) -> _Plan:
    mapper: Mapper[Any] = inspect(cls)
    table = mapper.local_table
    assert isinstance(table, Table)
    (pk,) = mapper.primary_key
    columns: list[tuple[str, Column[Any]]] = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if isinstance(column, Column) and column.table is table and column is not pk:
            columns.append((prop.key, column))
    pk_key = mapper.get_property_by_column(pk).key
    version = mapper.version_id_col
    version_key = mapper.get_property_by_column(version).key if version is not None else None
    statement = insert(table).returning(pk)
    return _Plan(table, tuple(columns), pk_key, version_key, statement, [c.key for _, c in columns])


def _default(column: Column[Any]) -> Any:
    default = column.default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    if getattr(default, "is_callable", False):
        return arg(None)  # type: ignore[misc]  # SQLAlchemy wraps fn() as fn(context)
    if getattr(default, "is_scalar", False):
        return arg
    raise TypeError(f"column {column.name}: only scalar or callable defaults are supported")


def insert_new(session: Session, obj: Any) -> int:
    """INSERT ``obj`` (a new, unflushed instance of a mapped class); return its new id."""
    plan = _plan(type(obj))
    state = obj.__dict__
    values: dict[str, Any] = {}
    for key, column in plan.columns:
        if key == plan.version_key:
            value = 1
        elif key in state:
            value = state[key]
        else:
            value = _default(column)
        if key not in state or key == plan.version_key:
            setattr(obj, key, value)  # the object reads back what the row holds
        values[column.key] = value
    row = execute_compiled(session, plan.statement, values, column_keys=plan.column_keys)
    if row is None or row[0] is None:  # pragma: no cover - RETURNING always answers
        raise RuntimeError(f"no primary key came back for the new {plan.table.name} row")
    new_id = int(row[0])
    setattr(obj, plan.pk_key, new_id)
    return new_id


__all__ = ["execute_compiled", "insert_new"]
