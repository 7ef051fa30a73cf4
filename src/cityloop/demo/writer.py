"""Bulk writing of simulated history: Core inserts in large batches, one transaction.

The service writes one case per transaction, which is right for intake and wrong for loading a
year of history: 200,000 cases and their events go in as executemany batches inside a single
transaction, so an interrupted load leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cityloop.cases.models import Case, CaseCodeSerial, CaseEvent
from cityloop.demo.history import COLUMNS, HistorySimulator

BATCH = 5_000


@dataclass
class WriteStats:
    cases: int = 0
    events: int = 0


def next_case_id(conn: Connection) -> int:
    return int(conn.scalar(select(func.coalesce(func.max(Case.id), 0))) or 0) + 1


def existing_serials(conn: Connection) -> dict[dt.date, int]:
    return {row.day: row.last for row in conn.execute(select(CaseCodeSerial))}


_SIMULATOR: HistorySimulator | None = None
_NOW: dt.datetime | None = None
_SEED = 0
_DIALECT = "sqlite"


def _simulate_chunk(args: tuple[int, list[tuple[int, str, dt.datetime]]]) -> Rows:
    """Runs in a worker process (forked: it inherits the simulator)."""
    index, chunk = args
    assert _SIMULATOR is not None and _NOW is not None
    sims = _SIMULATOR.run(chunk, now=_NOW, seed=_SEED + index)
    convert = _converter(_DIALECT)
    cases = [tuple(convert(sim.case[k]) for k in COLUMNS) for sim in sims]
    events = [tuple(convert(e[k]) for k in EVENT_COLUMNS) for sim in sims for e in sim.events]
    return cases, events


Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def write(
    conn: Connection,
    simulator: HistorySimulator,
    schedule: list[tuple[int, str, dt.datetime]],
    *,
    now: dt.datetime,
    seed: int,
    serials: dict[dt.date, int],
    processes: int = 2,
    progress: Callable[[int], None] | None = None,
) -> WriteStats:
    """Simulate ``schedule`` in ``processes`` forked workers and insert the rows on ``conn``
    (the caller commits). The writer inserts while the workers simulate the next chunks."""
    global _SIMULATOR, _NOW, _SEED, _DIALECT
    _SIMULATOR, _NOW, _SEED, _DIALECT = simulator, now, seed, conn.dialect.name
    stats = WriteStats()
    case_sql = _insert_sql(conn, Case.__tablename__, list(COLUMNS))
    event_sql = _insert_sql(conn, CaseEvent.__tablename__, EVENT_COLUMNS)
    chunks = [(i, schedule[a : a + BATCH]) for i, a in enumerate(range(0, len(schedule), BATCH))]

    def insert(rows: Rows) -> None:
        # Straight to the driver's executemany: SQLAlchemy's per-value type processing costs
        # more than the simulation at this volume; the converter does what the column types
        # would (UTC text on SQLite, JSON text everywhere).
        cases, events = rows
        if cases:
            conn.exec_driver_sql(case_sql, cases)
        if events:
            conn.exec_driver_sql(event_sql, events)
        stats.cases += len(cases)
        stats.events += len(events)
        if progress is not None:
            progress(len(cases))

    if processes > 1 and len(chunks) > 1:
        # fork: the workers inherit the simulator instead of receiving it pickled. They never
        # touch the database connections they inherit and leave with os._exit.
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            for rows in pool.imap(_simulate_chunk, chunks):
                insert(rows)
    else:
        for chunk in chunks:
            insert(_simulate_chunk(chunk))
    _store_serials(conn, serials)
    if conn.dialect.name == "postgresql":
        # Ids were given explicitly; move the sequence past them for later intake.
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('case_file', 'id'), "
                "(SELECT COALESCE(MAX(id), 1) FROM case_file))"
            )
        )
    return stats


EVENT_COLUMNS: list[str] = [
    "case_id",
    "at",
    "actor_user_id",
    "actor_name",
    "actor_role",
    "action",
    "from_state",
    "to_state",
    "reason",
    "department_id",
    "step",
    "deadline",
    "detail",
]


def _insert_sql(conn: Connection, table: str, keys: Sequence[str]) -> str:
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    return f"INSERT INTO {table} ({', '.join(keys)}) VALUES ({', '.join([mark] * len(keys))})"


def _converter(dialect: str) -> Callable[[Any], Any]:
    sqlite = dialect == "sqlite"

    def convert(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            if sqlite:
                # The format SQLAlchemy's DateTime uses on SQLite, in UTC (see UTCDateTime).
                utc = value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)
                return utc.replace(tzinfo=None).isoformat(" ", "microseconds")
            return value
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        return value

    return convert


def _store_serials(conn: Connection, serials: dict[dt.date, int]) -> None:
    if not serials:
        return
    insert_fn = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    rows = [{"day": day, "last": last} for day, last in serials.items()]
    stmt = insert_fn(CaseCodeSerial)
    stmt = stmt.on_conflict_do_update(
        index_elements=[CaseCodeSerial.day], set_={"last": stmt.excluded.last}
    )
    conn.execute(stmt, rows)
