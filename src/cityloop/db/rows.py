"""Insert one new mapped object with a single cached Core INSERT, bypassing the ORM's flush.

Intake is the hottest write path: every report inserts a case row and its first event row, one
transaction each. The ORM's unit of work (dependency sorting, per-object state bookkeeping,
version counters) costs more CPU than the two INSERTs themselves. ``insert_new`` takes an object
built with the mapped class (so every domain helper that sets attributes on it still works),
fills the columns it was not given from the columns' Python defaults, runs one INSERT whose
compiled form SQLAlchemy caches, and writes the new primary key (and, for a versioned class,
version 1) back onto the object.

The object stays *transient*: it is not in the session, so the ORM never flushes it again.
Use it only for rows that are complete when inserted and are not changed later in the same
transaction through the ORM (a case's first picture, an immutable event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, insert, inspect
from sqlalchemy.orm import Mapper, Session


@dataclass(frozen=True)
class _Plan:
    table: Table
    columns: tuple[tuple[str, Column[Any]], ...]  # (attribute key, column)
    pk_key: str
    version_key: str | None
    statement: Any


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
    columns: list[tuple[str, Column[Any]]] = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if isinstance(column, Column) and column.table is table:
            columns.append((prop.key, column))
    (pk,) = mapper.primary_key
    pk_key = mapper.get_property_by_column(pk).key
    version = mapper.version_id_col
    version_key = mapper.get_property_by_column(version).key if version is not None else None
    return _Plan(table, tuple(columns), pk_key, version_key, insert(table))


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
        if key == plan.pk_key:
            continue
        if key == plan.version_key:
            value = 1
        elif key in state:
            value = state[key]
        else:
            value = _default(column)
        if key not in state or key == plan.version_key:
            setattr(obj, key, value)  # the object reads back what the row holds
        values[column.key] = value
    result = session.connection().execute(plan.statement, values)
    (new_id,) = result.inserted_primary_key or (None,)
    if new_id is None:  # pragma: no cover - every supported backend reports it
        raise RuntimeError(f"no primary key came back for the new {plan.table.name} row")
    setattr(obj, plan.pk_key, int(new_id))
    return int(new_id)


__all__ = ["insert_new"]
