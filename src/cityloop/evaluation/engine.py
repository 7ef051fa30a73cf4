"""The KPI engine: DuckDB over the case and event history.

Why DuckDB and how the rows get there
-------------------------------------
A month's KPIs need, for every step clock that ran in or into the month, how it started, how and
when it ended and which deadline was in force at each moment. That is an analytical scan, which
SQLite and a busy PostgreSQL are poor at and DuckDB is made for. DuckDB's own ``sqlite_scanner``
and ``postgres_scanner`` extensions are not bundled with the wheel and cannot be downloaded on
the project's machines, so the engine reads two columnar relations, ``cases`` and ``events``
(schemas ``CASE_COLUMNS`` and ``EVENT_COLUMNS``), from one of two sources:

* ``from_database``: the live database through the ordinary Python driver (SQLAlchemy), only the
  cases that can matter for the asked window (reported before its end, and still open or changed
  since its start) and their events, streamed in batches into numpy arrays that DuckDB scans in
  place. Right for a city's everyday sizes (a month touches tens of thousands of cases).
* ``from_parquet``: a columnar export (``export_parquet`` writes it from the live database in
  batches; ``bench/evaluation.py`` writes 10 million synthetic cases in the same layout). Right
  for history-wide work and for the scale target.

The derived relations
---------------------
Events are immutable, so everything the KPIs need that is a function of the history alone is
derived once per history by ``derive`` (one DuckDB SQL derivation, used by every source):

* ``steps`` (``STEP_COLUMNS``): one row per *segment*, one run of one step clock, with how it
  started, its deadline and the deadline changes inside it, how it ended, the first suspension
  and extension approvals, the per-case marks (first filing, closing, voiding, refusal) and the
  case's dimensions (channel, territory, cell, class);
* ``callbacks`` (``CALLBACK_COLUMNS``): one row per callback (回访) with its rating, the case's
  first closing instant and dimensions.

A columnar export stores ``steps`` as one Parquet file per (task, kind) (``steps/task=*/kind=*/``,
each sorted by ``start_at``) and ``callbacks.parquet`` sorted by ``event_at``: a count opens only
the files of the kinds it needs and reads only the row groups of its period (row-group
statistics). The live path derives them in memory from the loaded window; an export without them
(an older version's) is derived in memory when opened.

A period is then a handful of passes over its own slice (``Engine.counts``): each reads the few
columns it needs, groups by small keys (user and kind; department, territory and flags), and the
per-subject counts are GROUPING SETS over those small results.

Definitions (docs/evaluation.md has them in full)
-------------------------------------------------
Every action ends the running step iff its clock effect is START or STOP (the case loop's table);
the events between two such "boundary" events form one *segment*: one run of one step clock,
whose deadline at any moment is the deadline the latest event recorded. A step ended on time iff
the boundary event that ended it is at or before the previous segment's final deadline plus the
configured grace. All counts are "as of the period's end": events at or after it are not seen,
so a month's numbers do not change when it is recomputed later. In the derived relations every
instant is kept, so "as of the end" is a comparison (``x < end``) at query time, never a
recomputation.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from cityloop.cases.domain import (
    OPEN_STATES,
    PUBLIC_CHANNELS,
    TRANSITIONS,
    CaseAction,
    ClockEffect,
    Satisfaction,
)
from cityloop.cases.models import Case, CaseEvent
from cityloop.evaluation.config import EvaluationSettings, SolvedRule
from cityloop.evaluation.domain import Period

# --------------------------------------------------------------------------------------------
# The columnar layout
# --------------------------------------------------------------------------------------------

CASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "BIGINT"),
    ("code", "VARCHAR"),
    ("channel", "VARCHAR"),
    ("state", "VARCHAR"),
    ("minor_id", "BIGINT"),
    ("department_id", "BIGINT"),
    ("subdistrict_id", "BIGINT"),
    ("community_id", "BIGINT"),
    ("cell_code", "VARCHAR"),
    ("reporter_user_id", "BIGINT"),
    ("inspector_id", "BIGINT"),
    ("reported_at", "TIMESTAMP"),  # naive UTC, like every instant here
    ("updated_at", "TIMESTAMP"),
)
"""``cases``: one row per case (the case_file columns the KPIs read)."""

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "BIGINT"),
    ("case_id", "BIGINT"),
    ("event_at", "TIMESTAMP"),  # case_event.at (AT is a keyword in DuckDB's SQL)
    ("actor_user_id", "BIGINT"),
    ("actor_role", "VARCHAR"),
    ("action", "VARCHAR"),
    ("department_id", "BIGINT"),
    ("step", "VARCHAR"),
    ("deadline", "TIMESTAMP"),
    ("satisfaction", "VARCHAR"),  # detail.satisfaction of callback events, else NULL
)
"""``events``: one row per case event, ids increasing with time within a case."""

DEADLINE_CHANGE = "STRUCT(changed_at TIMESTAMP, deadline TIMESTAMP)"

STEP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("case_id", "BIGINT"),
    ("seg_id", "BIGINT"),  # id of the boundary event that started the segment
    ("step", "VARCHAR"),  # the step clock the segment runs (the boundary's step; NULL: none)
    ("task", "BOOLEAN"),  # a disposal task: the segment runs the dispose step
    ("kind", "UTINYINT"),  # what the boundary counts as (``KIND``)
    ("start_at", "TIMESTAMP"),
    ("start_action", "VARCHAR"),
    ("start_role", "VARCHAR"),
    ("actor", "BIGINT"),  # the user of the boundary event
    ("department_id", "BIGINT"),  # the boundary event's department
    ("prev_step", "VARCHAR"),  # the step that was running before the boundary
    ("prev_deadline", "TIMESTAMP"),  # the deadline in force just before the boundary
    # How late the boundary was against it, in whole minutes rounded up (0: on time or no
    # deadline): on time with a grace of g minutes iff late <= g.
    ("late", "INTEGER"),
    ("deadline", "TIMESTAMP"),  # the deadline the boundary recorded
    # Later events of the segment whose recorded deadline differs from the one before them
    # (extensions, pauses, resumptions), in order: the deadline in force at any instant.
    ("deadline_changes", f"{DEADLINE_CHANGE}[]"),
    # The case's last non-NULL deadline before the segment, kept only when ``deadline`` is NULL.
    ("deadline_before", "TIMESTAMP"),
    # A disposal task: the latest instant it can fall due at (before grace): its latest
    # deadline, or its end if it ended without one. Old tasks due in a period are found by it.
    ("due_bound", "TIMESTAMP"),
    # A disposal task: how many disposal tasks the case has in the same department (1: this
    # one alone, so it is its own case for the closing counts).
    ("department_tasks", "INTEGER"),
    ("suspended_at", "TIMESTAMP"),  # first approved suspension (挂账) in the segment
    ("extended_at", "TIMESTAMP"),  # first approved extension (延期) in the segment
    ("end_id", "BIGINT"),  # the boundary that ended the segment (NULL: still running)
    ("end_at", "TIMESTAMP"),
    ("end_action", "VARCHAR"),
    ("returned_at", "TIMESTAMP"),  # end_at if the segment ended by a return (退回), else NULL
    # A disposal (start_action 'dispose') whose check failed (返工): when the failed check
    # happened, else NULL.
    ("reworked_at", "TIMESTAMP"),
    ("prev_file_at", "TIMESTAMP"),  # a filing: the case's previous filing (NULL: the first)
    # An inspector's report: the same inspector's previous report from the same cell (NULL:
    # the first), so the cells of an inspector's beat in a period need no DISTINCT.
    ("prev_beat_at", "TIMESTAMP"),
    # The case's marks: first filing, closing, voiding, refusal (decline or not accepted).
    ("file_at", "TIMESTAMP"),
    ("close_at", "TIMESTAMP"),
    ("void_at", "TIMESTAMP"),
    ("refused_at", "TIMESTAMP"),
    # The case's dimensions.
    ("channel", "VARCHAR"),
    ("subdistrict_id", "BIGINT"),
    ("community_id", "BIGINT"),
    ("cell_code", "VARCHAR"),
    # The cell as a number (the cell codes' order in this derivation, from 1): the beats of
    # the inspectors join reports on it instead of on the code's text.
    ("cell_key", "INTEGER"),
    ("minor_id", "BIGINT"),
    ("inspector_id", "BIGINT"),
)
"""``steps`` (derived): one row per segment, one run of one step clock.

The export sorts it by ``kind`` then ``start_at`` (closings by channel first, for the 12345
rates): the segments of one kind started in a period are one run of adjacent row groups, so each
count reads only the rows of its kinds.
"""

KIND: dict[str, int] = {
    "other": 0,
    "verification": 1,  # verify_found, verify_not_found or self_handle ending a verify step
    "check_pass": 2,
    "check_fail": 3,
    "verify_send": 4,  # send_verify from the send-verify step (intake's, not a re-send)
    "check_send": 5,  # send_check
    "closing": 6,  # close
    "dispatch": 7,
    "disposal": 8,  # dispose (the department's disposal feedback)
    "filing": 9,  # file
    "inspector_report": 10,  # report by an inspector
    "other_report": 11,  # report from any other channel
}
"""``steps.kind``: the counting class of a segment's boundary. Kinds read together are adjacent
(disposal and filing; the two reports), so a pass selects them with one range."""

PEOPLE_KINDS = (
    "verification",
    "check_pass",
    "check_fail",
    "verify_send",
    "check_send",
    "closing",
    "dispatch",
)
"""The kinds counted per user by their own pass (filings come with the territories' pass)."""

_CHECKS = ("check_pass", "check_fail")
PEOPLE_COUNTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "verifications": (("verification",), False),
    "verified_on_time": (("verification",), True),
    "checks": (_CHECKS, False),
    "checked_on_time": (_CHECKS, True),
    "verify_sends": (("verify_send",), False),
    "verify_sends_on_time": (("verify_send",), True),
    "check_sends": (("check_send",), False),
    "check_sends_on_time": (("check_send",), True),
    "filings": (("filing",), False),
    "filed_on_time": (("filing",), True),
    "closings": (("closing",), False),
    "closings_on_time": (("closing",), True),
    "dispatches": (("dispatch",), False),
    "dispatched_on_time": (("dispatch",), True),
}
"""Per-user counts: name → (the kinds it adds up, on time only). With ``filed_not_voided``
(filings less those voided by the end) and ``dispatched_correctly`` (dispatches less those
returned by the end), every user the people pass sees has all of them."""

PEOPLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("day_start", "TIMESTAMP"),  # the day's first instant (naive UTC): local midnight
    ("actor", "BIGINT"),
    ("kind", "UTINYINT"),  # one of ``PEOPLE_KINDS``
    ("n", "BIGINT"),  # segments of that kind the user started that day
    ("n_on_time", "BIGINT"),  # of those, on time with no grace (late = 0)
)
"""``people`` (derived): the people pass's counts per local day, user and kind.

A period whose ends fall on day boundaries reads its whole days from here and only its partial
days (if any) from ``steps``: exact for any period, and a month is some thirty thousand rows
instead of millions. Used when the grace is 0 (the default); another grace reads ``steps``."""

CALLBACK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "BIGINT"),
    ("case_id", "BIGINT"),
    ("event_at", "TIMESTAMP"),
    ("actor_user_id", "BIGINT"),
    ("department_id", "BIGINT"),
    ("satisfaction", "VARCHAR"),  # a known rating, else NULL
    ("close_at", "TIMESTAMP"),  # the case's first closing
    ("channel", "VARCHAR"),
    ("subdistrict_id", "BIGINT"),
    ("community_id", "BIGINT"),
)
"""``callbacks`` (derived): one row per callback event."""


def _event_attr(name: str) -> Any:
    """The case_event column behind a columnar event column."""
    return CaseEvent.at if name == "event_at" else getattr(CaseEvent, name)


def _boundary_actions() -> tuple[str, ...]:
    """Actions that end the running step: START or STOP in the case loop's table, and report."""
    effects: dict[CaseAction, set[ClockEffect]] = {}
    for (_state, action), rule in TRANSITIONS.items():
        effects.setdefault(action, set()).add(rule.clock)
    out = {CaseAction.REPORT.value}
    for action, clocks in effects.items():
        if clocks & {ClockEffect.START, ClockEffect.STOP}:
            # The table uses one clock effect per action; if that ever changes, the segment
            # logic below must change with it, so refuse to run rather than miscount.
            assert len(clocks) == 1, f"action {action} has several clock effects: {clocks}"
            out.add(action.value)
    return tuple(sorted(out))


BOUNDARY_ACTIONS = _boundary_actions()
OPEN_STATE_VALUES = tuple(sorted(s.value for s in OPEN_STATES))
PUBLIC_CHANNEL_VALUES = tuple(sorted(c.value for c in PUBLIC_CHANNELS))
RATING_VALUES = tuple(r.value for r in Satisfaction)

DIMENSIONS = (
    "city",
    "department",
    "subdistrict",
    "community",
    "inspector",
    "intake_operator",
    "shift_supervisor",
    "dispatcher",
)


def _sql_list(values: Iterable[str]) -> str:
    """A SQL list of string literals from trusted constants (enum values), for IN (...)."""
    items = []
    for value in values:
        if "'" in value:
            raise ValueError(f"unexpected quote in constant {value!r}")
        items.append(f"'{value}'")
    return "(" + ", ".join(items) + ")"


def _quote_path(path: Path) -> str:
    return str(path).replace("'", "''")


# --------------------------------------------------------------------------------------------
# The derivation: steps and callbacks from cases and events, once per history
# --------------------------------------------------------------------------------------------

# Pass 1, per event (one sort by case and id, every window shares it): the segment the event
# belongs to (the latest boundary so far; a case whose first event is not a boundary action
# starts with a segment of its own), the previous event's step and deadline, the next event,
# the case's last non-NULL deadline before the event and the case's marks.
_DERIVE_EVENTS = f"""
CREATE OR REPLACE TEMP TABLE _derive_ev AS
SELECT e.id, e.case_id, e.event_at, e.actor_user_id, e.actor_role, e.action, e.department_id,
       e.step, e.deadline, e.satisfaction,
       coalesce(max(CASE WHEN e.action IN {_sql_list(BOUNDARY_ACTIONS)} THEN e.id END) OVER run,
                first_value(e.id) OVER w) AS seg_id,
       lag(e.step) OVER w AS prev_step,
       lag(e.deadline) OVER w AS prev_deadline,
       last_value(e.deadline IGNORE NULLS) OVER before AS deadline_before,
       lead(e.id) OVER w AS next_id,
       lead(e.event_at) OVER w AS next_at,
       lead(e.action) OVER w AS next_action,
       max(e.event_at) FILTER (WHERE e.action = 'file') OVER before AS prev_file_at,
       min(e.event_at) FILTER (WHERE e.action = 'file') OVER whole AS file_at,
       min(e.event_at) FILTER (WHERE e.action = 'close') OVER whole AS close_at,
       min(e.event_at) FILTER (WHERE e.action = 'approve_void') OVER whole AS void_at,
       min(e.event_at) FILTER (WHERE e.action IN ('decline', 'not_accept')) OVER whole
           AS refused_at
FROM events e
WHERE e.case_id BETWEEN $lo AND $hi
WINDOW w AS (PARTITION BY e.case_id ORDER BY e.id),
       run AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
       before AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
       whole AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
"""

# Pass 2, per segment: its boundary event, and what the later events of the segment changed.
# The segment ended at the event after its last event (NULL: it is still running).
_DERIVE_SEGMENTS = f"""
CREATE OR REPLACE TEMP TABLE _derive_seg AS
WITH later AS (
    SELECT seg_id,
           list({{'changed_at': event_at, 'deadline': deadline}}::{DEADLINE_CHANGE} ORDER BY id)
               FILTER (WHERE deadline IS DISTINCT FROM prev_deadline) AS deadline_changes,
           max(deadline) AS deadline_max,
           arg_max_null(deadline, id) AS last_deadline,
           min(event_at) FILTER (WHERE action = 'approve_suspend') AS suspended_at,
           min(event_at) FILTER (WHERE action = 'approve_extension') AS extended_at,
           arg_max_null(next_id, id) AS end_id,
           arg_max_null(next_at, id) AS end_at,
           arg_max_null(next_action, id) AS end_action
    FROM _derive_ev WHERE id <> seg_id
    GROUP BY seg_id
)
SELECT b.case_id, b.seg_id, b.step, b.event_at AS start_at, b.action AS start_action,
       b.actor_role AS start_role, b.actor_user_id AS actor, b.department_id,
       b.prev_step, b.prev_deadline, b.deadline,
       coalesce(l.deadline_changes, []::{DEADLINE_CHANGE}[]) AS deadline_changes,
       CASE WHEN b.deadline IS NULL THEN b.deadline_before END AS deadline_before,
       greatest(b.deadline, l.deadline_max,
                CASE WHEN b.deadline IS NULL THEN b.deadline_before END,
                CASE WHEN l.seg_id IS NULL AND b.deadline IS NULL THEN b.next_at
                     WHEN l.seg_id IS NOT NULL AND l.last_deadline IS NULL THEN l.end_at
                END) AS due_bound,
       least(CASE WHEN b.action = 'approve_suspend' THEN b.event_at END, l.suspended_at)
           AS suspended_at,
       least(CASE WHEN b.action = 'approve_extension' THEN b.event_at END, l.extended_at)
           AS extended_at,
       CASE WHEN l.seg_id IS NULL THEN b.next_id ELSE l.end_id END AS end_id,
       CASE WHEN l.seg_id IS NULL THEN b.next_at ELSE l.end_at END AS end_at,
       CASE WHEN l.seg_id IS NULL THEN b.next_action ELSE l.end_action END AS end_action,
       CASE WHEN b.action = 'file' THEN b.prev_file_at END AS prev_file_at,
       b.file_at, b.close_at, b.void_at, b.refused_at
FROM _derive_ev b LEFT JOIN later l ON l.seg_id = b.seg_id
WHERE b.id = b.seg_id
"""

# Pass 3: the rows, with the rework mark (a disposal whose following check failed) and the
# case's dimensions.
_DERIVE_STEPS = f"""
INSERT INTO {{steps}}
SELECT s.case_id, s.seg_id, s.step, coalesce(s.step = 'dispose', FALSE) AS task,
       CASE WHEN s.start_action IN ('verify_found', 'verify_not_found', 'self_handle')
                 AND s.prev_step = 'verify' THEN {KIND["verification"]}
            WHEN s.start_action = 'check_pass' THEN {KIND["check_pass"]}
            WHEN s.start_action = 'check_fail' THEN {KIND["check_fail"]}
            WHEN s.start_action = 'send_verify' AND s.prev_step = 'send_verify'
                THEN {KIND["verify_send"]}
            WHEN s.start_action = 'send_check' THEN {KIND["check_send"]}
            WHEN s.start_action = 'close' THEN {KIND["closing"]}
            WHEN s.start_action = 'dispatch' THEN {KIND["dispatch"]}
            WHEN s.start_action = 'dispose' THEN {KIND["disposal"]}
            WHEN s.start_action = 'file' THEN {KIND["filing"]}
            WHEN s.start_action = 'report' AND s.start_role = 'inspector'
                THEN {KIND["inspector_report"]}
            WHEN s.start_action = 'report' THEN {KIND["other_report"]}
            ELSE {KIND["other"]} END AS kind,
       s.start_at, s.start_action, s.start_role, s.actor, s.department_id, s.prev_step,
       s.prev_deadline,
       CASE WHEN s.start_at > s.prev_deadline
            THEN (epoch_us(s.start_at - s.prev_deadline) + 59999999) // 60000000
            ELSE 0 END AS late,
       s.deadline, s.deadline_changes, s.deadline_before,
       CASE WHEN s.step = 'dispose' THEN s.due_bound END AS due_bound,
       CASE WHEN s.step = 'dispose' THEN t.n END AS department_tasks, s.suspended_at,
       s.extended_at, s.end_id, s.end_at, s.end_action,
       CASE WHEN s.end_action = 'approve_return' THEN s.end_at END AS returned_at,
       r.end_at AS reworked_at, s.prev_file_at, b.prev_beat_at, s.file_at, s.close_at,
       s.void_at, s.refused_at,
       c.channel, c.subdistrict_id, c.community_id, c.cell_code, k.cell_key, c.minor_id,
       c.inspector_id
FROM _derive_seg s
JOIN cases c ON c.id = s.case_id
LEFT JOIN _derive_cells k ON k.cell_code = c.cell_code
LEFT JOIN (
    SELECT seg_id, end_at FROM _derive_seg
    WHERE start_action = 'send_check' AND end_action = 'check_fail'
) r ON r.seg_id = CASE WHEN s.start_action = 'dispose' AND s.end_action = 'send_check'
                       THEN s.end_id END
LEFT JOIN (
    SELECT case_id, department_id, count(*) AS n FROM _derive_seg WHERE step = 'dispose'
    GROUP BY ALL
) t ON t.case_id = s.case_id AND t.department_id IS NOT DISTINCT FROM s.department_id
LEFT JOIN _derive_beats b ON b.seg_id = s.seg_id
WHERE c.id BETWEEN $lo AND $hi
"""

# Before the ranges (an inspector's beat crosses them): each inspector's report and the same
# inspector's previous report from the same cell.
_DERIVE_BEATS = """
CREATE OR REPLACE TEMP TABLE _derive_beats AS
SELECT e.id AS seg_id,
       lag(e.event_at) OVER (PARTITION BY e.actor_user_id, c.cell_code
                             ORDER BY e.event_at, e.id) AS prev_beat_at
FROM events e JOIN cases c ON c.id = e.case_id
WHERE e.action = 'report' AND e.actor_role = 'inspector' AND e.actor_user_id IS NOT NULL
  AND c.cell_code IS NOT NULL
"""

# Before the ranges: every cell code and its number.
_DERIVE_CELLS = """
CREATE OR REPLACE TEMP TABLE _derive_cells AS
SELECT cell_code, (row_number() OVER (ORDER BY cell_code))::INTEGER AS cell_key
FROM (SELECT DISTINCT cell_code FROM cases WHERE cell_code IS NOT NULL)
"""

_DERIVE_CALLBACKS = f"""
INSERT INTO {{callbacks}}
SELECT e.id, e.case_id, e.event_at, e.actor_user_id, e.department_id,
       CASE WHEN e.satisfaction IN {_sql_list(RATING_VALUES)} THEN e.satisfaction END,
       e.close_at, c.channel, c.subdistrict_id, c.community_id
FROM _derive_ev e JOIN cases c ON c.id = e.case_id
WHERE e.action = 'callback' AND c.id BETWEEN $lo AND $hi
"""


def day_offset_minutes(timezone: str) -> int:
    """Minutes east of UTC of ``timezone``'s standard time: where its days start.

    The ``people`` days are fixed 24-hour buckets from that offset; in a zone with summer time
    half the year's period ends fall inside a bucket and are read from ``steps`` (still exact).
    """
    offset = ZoneInfo(timezone).utcoffset(dt.datetime(2026, 1, 1))
    return 0 if offset is None else int(offset.total_seconds() // 60)


def derive(
    con: duckdb.DuckDBPyConnection,
    *,
    steps: str = "steps",
    callbacks: str = "callbacks",
    people: str = "people",
    chunk_cases: int = 1_000_000,
    timezone: str = "Asia/Shanghai",
) -> dict[str, int]:
    """Create the tables ``steps``, ``callbacks`` and ``people`` from ``cases`` and ``events``.

    The one derivation of the engine, used by every source (the live window, an export, the
    benchmark). It runs over ranges of ``chunk_cases`` case ids at a time: every window is
    partitioned by case, so a range is exact and bounds the memory a large history needs (with
    events stored by case, DuckDB skips the other ranges' row groups).
    """
    for name, columns in ((steps, STEP_COLUMNS), (callbacks, CALLBACK_COLUMNS)):
        ddl = ", ".join(f"{n} {t}" for n, t in columns)
        con.execute(f"CREATE OR REPLACE TABLE {name} ({ddl})")
    row = con.execute("SELECT min(id), max(id) FROM cases").fetchone()
    con.execute(_DERIVE_BEATS)
    con.execute(_DERIVE_CELLS)
    if row is not None and row[0] is not None:
        lo_all, hi_all = int(row[0]), int(row[1])
        for lo in range(lo_all, hi_all + 1, chunk_cases):
            bounds = {"lo": lo, "hi": min(hi_all, lo + chunk_cases - 1)}
            con.execute(_DERIVE_EVENTS, bounds)
            con.execute(_DERIVE_SEGMENTS)
            con.execute(_DERIVE_STEPS.format(steps=steps), bounds)
            con.execute(_DERIVE_CALLBACKS.format(callbacks=callbacks), bounds)
        con.execute("DROP TABLE IF EXISTS _derive_ev")
        con.execute("DROP TABLE IF EXISTS _derive_seg")
    con.execute("DROP TABLE IF EXISTS _derive_beats")
    con.execute("DROP TABLE IF EXISTS _derive_cells")
    offset = day_offset_minutes(timezone)
    codes = ", ".join(str(KIND[k]) for k in PEOPLE_KINDS)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {people} AS
        SELECT time_bucket(INTERVAL 1 DAY, start_at,
                           TIMESTAMP '2000-01-01' - INTERVAL {offset} MINUTE) AS day_start,
               actor, kind, count(*) AS n, count(*) FILTER (WHERE late = 0) AS n_on_time
        FROM {steps}
        WHERE kind IN ({codes}) AND actor IS NOT NULL
        GROUP BY ALL
        """
    )
    counts = {}
    for name in (steps, callbacks, people):
        got = con.execute(f"SELECT count(*) FROM {name}").fetchone()
        counts[name] = int(got[0]) if got else 0
    return counts


DERIVED_ROW_GROUP = 65_536
"""Rows per Parquet row group of the derived files: the unit DuckDB skips or reads. Smaller
groups waste less at the edges of a period's runs; more groups make a larger footer (read once
per connection)."""


PARTITION_KEYS = (("task", "BOOLEAN"), ("kind", "UTINYINT"))
"""``steps`` is stored as one file per (task, kind), hive style (``steps/task=true/kind=7/``):
a pass opens only the files of the kinds it counts (DuckDB prunes files by the path's values),
and a file's footer stays small (reading a large one costs every query that opens it)."""


def write_derived(
    con: duckdb.DuckDBPyConnection, directory: Path, *, timezone: str = "Asia/Shanghai"
) -> dict[str, int]:
    """Derive ``steps`` and ``callbacks`` in ``con`` and write them as Parquet to ``directory``.

    ``steps/task=*/kind=*/steps.parquet`` are each sorted by ``start_at`` (closings by channel
    first, for the 12345 rates) and ``callbacks.parquet`` by ``event_at``: a period's rows are a
    few adjacent row groups, which DuckDB finds from the row-group statistics. The disposal
    tasks of a case that has several in the same department (rework) are in ``shared.parquet``
    beside them: only those are grouped by case for the closing counts.
    """
    counts = derive(con, timezone=timezone)
    shutil.rmtree(directory / "steps", ignore_errors=True)
    options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {DERIVED_ROW_GROUP}"
    parts = con.execute("SELECT DISTINCT task, kind FROM steps ORDER BY ALL").fetchall()
    for task, kind in parts:
        folder = directory / "steps" / f"task={str(bool(task)).lower()}" / f"kind={int(kind)}"
        folder.mkdir(parents=True)
        order = "channel, start_at, seg_id" if kind == KIND["closing"] else "start_at, seg_id"
        files = {"steps": "coalesce(department_tasks, 1) <= 1"}
        if task:
            files["shared"] = "department_tasks > 1"
        for name, cond in files.items():
            con.execute(
                f"COPY (SELECT * EXCLUDE (task, kind) FROM steps "
                f"WHERE task = $task AND kind = $kind AND {cond} ORDER BY {order}) "
                f"TO '{_quote_path(folder / f'{name}.parquet')}' ({options})",
                {"task": bool(task), "kind": int(kind)},
            )
    target = _quote_path(directory / "callbacks.parquet")
    con.execute(f"COPY (SELECT * FROM callbacks ORDER BY event_at, id) TO '{target}' ({options})")
    target = _quote_path(directory / "people.parquet")
    con.execute(f"COPY (SELECT * FROM people ORDER BY ALL) TO '{target}' ({options})")
    con.execute("DROP TABLE steps")
    con.execute("DROP TABLE callbacks")
    con.execute("DROP TABLE people")
    return counts


def _steps_view(directory: Path) -> str:
    """The query over an export's ``steps`` files, with the columns in ``STEP_COLUMNS`` order."""
    pattern = _quote_path(directory / "steps" / "*" / "*" / "*.parquet")
    types = ", ".join(f"'{n}': '{t}'" for n, t in PARTITION_KEYS)
    cols = ", ".join(n for n, _ in STEP_COLUMNS)
    return (
        f"SELECT {cols} FROM read_parquet('{pattern}', hive_partitioning = true, "
        f"hive_types = {{{types}}})"
    )


def _step_files(directory: Path) -> dict[tuple[bool, int, bool], list[Path]]:
    """An export's ``steps`` files by (task, kind, shared), read from their paths."""
    files: dict[tuple[bool, int, bool], list[Path]] = {}
    for path in sorted(directory.glob("steps/task=*/kind=*/*.parquet")):
        task = path.parent.parent.name.removeprefix("task=") == "true"
        kind = int(path.parent.name.removeprefix("kind="))
        files.setdefault((task, kind, path.stem == "shared"), []).append(path)
    return files


def _source_views(con: duckdb.DuckDBPyConnection, directory: Path) -> None:
    """Views ``cases`` and ``events`` over a columnar export's files (extra columns ignored)."""
    for name, columns in (("cases", CASE_COLUMNS), ("events", EVENT_COLUMNS)):
        pattern = _quote_path(directory / f"{name}*.parquet")
        cols = ", ".join(n for n, _ in columns)
        con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT {cols} FROM read_parquet('{pattern}')"
        )


def _has_derived(con: duckdb.DuckDBPyConnection, directory: Path) -> bool:
    """Whether ``directory`` holds derived files in this version's layout (else: derive again)."""
    steps = list(directory.glob("steps/*/*/*.parquet"))
    callbacks = directory / "callbacks.parquet"
    people = directory / "people.parquet"
    if not steps or not callbacks.exists() or not people.exists():
        return False
    stored = [n for n, _ in STEP_COLUMNS if n not in dict(PARTITION_KEYS)]
    for files, columns in (
        (steps, stored),
        ([callbacks], [n for n, _ in CALLBACK_COLUMNS]),
        ([people], [n for n, _ in PEOPLE_COLUMNS]),
    ):
        for path in files:
            got = con.execute(
                f"DESCRIBE SELECT * FROM read_parquet('{_quote_path(path)}', "
                "hive_partitioning = false)"
            )
            if [r[0] for r in got.fetchall()] != columns:
                return False
    return True


def derive_parquet(
    directory: Path, *, memory_limit: str | None = None, timezone: str = "Asia/Shanghai"
) -> dict[str, int]:
    """Derive ``steps/``, ``callbacks.parquet`` and ``people.parquet`` from the export in
    ``directory`` (``people``'s days are ``timezone``'s).

    The derived rows are staged in a DuckDB file next to the export (removed afterwards), so a
    history larger than memory can be derived and sorted.
    """
    staging = directory / ".derive.duckdb"
    staging.unlink(missing_ok=True)
    con = duckdb.connect(str(staging))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET preserve_insertion_order = false")
        if memory_limit is not None:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        _source_views(con, directory)
        return write_derived(con, directory, timezone=timezone)
    finally:
        con.close()
        staging.unlink(missing_ok=True)
        Path(str(staging) + ".wal").unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def _to_numpy(values: list[Any], kind: str) -> Any:
    """A column as numpy, NULLs preserved (masked ints, NaT, None strings) for DuckDB."""
    if kind == "BIGINT":
        mask = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        data = np.fromiter((0 if v is None else int(v) for v in values), np.int64, len(values))
        return np.ma.masked_array(data, mask=mask) if mask.any() else data
    if kind == "TIMESTAMP":
        return np.array(
            [None if v is None else v.astimezone(dt.UTC).replace(tzinfo=None) for v in values],
            dtype="datetime64[us]",
        )
    if kind == "BOOLEAN":
        return np.array(values, dtype=bool)
    return np.array(values, dtype=object)


def _fetch(
    session: Session, stmt: Select[Any], columns: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """Stream a query's rows in batches into one numpy array per column."""
    lists: list[list[Any]] = [[] for _ in columns]
    result = session.execute(stmt.execution_options(yield_per=20_000))
    for partition in result.partitions():
        for row in partition:
            for i, value in enumerate(row):
                lists[i].append(value)
    return {name: _to_numpy(lists[i], kind) for i, (name, kind) in enumerate(columns)}


def _candidates(lo: dt.datetime, hi: dt.datetime) -> Select[Any]:
    """Cases that can matter for [lo, hi): reported before hi, and open or changed since lo.

    ``updated_at`` moves with every action, so a case with any event in the window passes; a
    case still open passes because its running step can fall due in the window untouched.
    """
    return select(Case.id).where(
        Case.reported_at < hi,
        or_(Case.state.in_(OPEN_STATE_VALUES), Case.updated_at >= lo),
    )


def load_database_window(
    session: Session, lo: dt.datetime, hi: dt.datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``cases`` and ``events`` columns for the window [lo, hi) from the live database."""
    cand = _candidates(lo, hi).scalar_subquery()
    case_cols = [getattr(Case, name) for name, _ in CASE_COLUMNS]
    cases = _fetch(session, select(*case_cols).where(Case.id.in_(cand)), CASE_COLUMNS)
    plain = [c for c in EVENT_COLUMNS if c[0] != "satisfaction"]
    ev_cols = [_event_attr(name) for name, _ in plain]
    events = _fetch(
        session,
        select(*ev_cols).where(CaseEvent.case_id.in_(cand), CaseEvent.at < hi),
        plain,
    )
    ratings: dict[int, str] = {}
    for event_id, detail in session.execute(
        select(CaseEvent.id, CaseEvent.detail).where(
            CaseEvent.case_id.in_(cand),
            CaseEvent.at < hi,
            CaseEvent.action == CaseAction.CALLBACK.value,
        )
    ):
        value = (detail or {}).get("satisfaction")
        if isinstance(value, str):
            ratings[int(event_id)] = value
    events["satisfaction"] = np.array(
        [ratings.get(int(i)) for i in np.asarray(events["id"])], dtype=object
    )
    return cases, events


def export_parquet(
    session: Session, directory: Path, *, batch: int = 200_000, timezone: str = "Asia/Shanghai"
) -> dict[str, int]:
    """Write the whole history as ``cases``/``events.parquet`` and the derived relations.

    The documented path for history-wide work: the database rows go through the Python driver
    in batches (bounded memory), each batch becomes a DuckDB relation and is appended to a DuckDB
    table on disk, which DuckDB then writes as Parquet (cases by id, events by case and id).
    ``derive_parquet`` then derives ``steps.parquet`` and ``callbacks.parquet`` from the files.
    """
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / ".export.duckdb"
    staging.unlink(missing_ok=True)
    con = duckdb.connect(str(staging))
    counts: dict[str, int] = {}
    try:
        for table, columns in (("cases", CASE_COLUMNS), ("events", EVENT_COLUMNS)):
            ddl = ", ".join(f"{n} {t}" for n, t in columns)
            con.execute(f"CREATE TABLE {table} ({ddl})")
            last = 0
            total = 0
            while True:
                if table == "cases":
                    stmt: Select[Any] = select(*[getattr(Case, n) for n, _ in columns])
                    stmt = stmt.where(Case.id > last).order_by(Case.id).limit(batch)
                    chunk = _fetch(session, stmt, columns)
                else:
                    plain = [c for c in columns if c[0] != "satisfaction"]
                    ev_cols: list[Any] = [_event_attr(n) for n, _ in plain]
                    ev_stmt: Select[Any] = select(*ev_cols, CaseEvent.detail)
                    ev_stmt = ev_stmt.where(CaseEvent.id > last).order_by(CaseEvent.id)
                    chunk = _fetch(session, ev_stmt.limit(batch), [*plain, ("detail", "OBJECT")])
                    details = chunk.pop("detail")
                    chunk["satisfaction"] = np.array(
                        [
                            (d or {}).get("satisfaction")
                            if a == CaseAction.CALLBACK.value
                            else None
                            for d, a in zip(details, chunk["action"], strict=True)
                        ],
                        dtype=object,
                    )
                n = len(chunk["id"])
                if n == 0:
                    break
                con.register("chunk", chunk)
                names = ", ".join(f"CAST({n_} AS {t}) AS {n_}" for n_, t in columns)
                con.execute(f"INSERT INTO {table} SELECT {names} FROM chunk")
                con.unregister("chunk")
                last = int(np.asarray(chunk["id"])[-1])
                total += n
            target = _quote_path(directory / f"{table}.parquet")
            order = "id" if table == "cases" else "case_id, id"
            con.execute(
                f"COPY (SELECT * FROM {table} ORDER BY {order}) TO '{target}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            counts[table] = total
    finally:
        con.close()
        staging.unlink(missing_ok=True)
        Path(str(staging) + ".wal").unlink(missing_ok=True)
    counts.update(derive_parquet(directory, timezone=timezone))
    return counts


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

Counts = dict[str, float]
"""Count name → value for one subject (a department, a user, a territory or the city)."""


@dataclass
class KpiCounts:
    """All counts of one period, per dimension and subject key (the city's key is 0)."""

    period: Period
    by: dict[str, dict[int | None, Counts]] = field(default_factory=dict)

    def subject(self, dimension: str, key: int | None) -> Counts:
        return self.by.setdefault(dimension, {}).setdefault(key, {})


@dataclass(frozen=True)
class OverdueRow:
    case_id: int
    code: str
    department_id: int | None
    deadline: dt.datetime  # naive UTC
    disposed_at: dt.datetime | None  # naive UTC; None: not disposed by the period's end


@dataclass
class ReportLists:
    """The lists of the monthly report (stable order: count desc, then key)."""

    top_classes: list[tuple[int | None, int]]
    hotspot_cells: list[tuple[str, int]]
    hotspot_subdistricts: list[tuple[int | None, int]]
    repeats: list[tuple[str, int | None, int, list[str]]]  # cell, minor, count, first codes
    repeat_total: int  # all repeat problems of the month (the list is the largest ones)
    overdue: list[OverdueRow]
    overdue_total: int


# --------------------------------------------------------------------------------------------
# Period queries over the derived relations
# --------------------------------------------------------------------------------------------

# Disposal tasks (segments of the dispose step) that can fall due in [$start, $end): those
# started in the period, and older ones whose ``due_bound`` (plus grace) reaches the period. Both
# filters are on columns that are sorted or nearly sorted in the export (a deadline follows its
# start by the step's limit), so DuckDB reads only the matching row groups.
_TASK_COLUMNS = (
    "department_id, subdistrict_id, community_id, end_at, end_action, deadline, "
    "deadline_changes, deadline_before, suspended_at, extended_at, close_at"
)


def _due_sql(settings: EvaluationSettings, source: str = "steps", *, cases: bool = True) -> str:
    """Disposal tasks due in [$start, $end), as of $end, with their outcome.

    Columns: (with ``cases``: case_id, department_tasks,) department_id, subdistrict_id,
    community_id, dl0 (the deadline in force, before grace), end_at (the disposal, if completed
    by the end), completed, on_time, closed. Without ``cases`` the two case columns are not
    read (the tasks that are their own case).
    """
    keys = "case_id, department_tasks, " if cases else ""
    grace = int(settings.on_time.grace_minutes)
    leave = "AND NOT suspended" if settings.suspended_leave_denominator else ""
    extension_ok = "TRUE" if settings.on_time.extended_counts_as_on_time else "NOT extended"
    before_end = "list_filter(deadline_changes, lambda c: c.changed_at < $end)"
    known_before_end = (
        "list_filter(deadline_changes, lambda c: c.changed_at < $end AND c.deadline IS NOT NULL)"
    )
    return f"""
    WITH t AS (
        SELECT {keys}{_TASK_COLUMNS} FROM {source}
        WHERE task AND start_at >= $start AND start_at < $end
        UNION ALL
        SELECT {keys}{_TASK_COLUMNS} FROM {source}
        WHERE task AND start_at < $start
          AND due_bound >= $start - INTERVAL {grace} MINUTE
    ), a AS (
        SELECT {keys}department_id, subdistrict_id, community_id,
               coalesce(end_at < $end, FALSE) AS ended,
               CASE WHEN ended THEN end_at END AS ended_at,
               CASE WHEN ended THEN end_action END AS ended_by,
               coalesce(suspended_at < $end, FALSE) AS suspended,
               coalesce(extended_at < $end, FALSE) AS extended,
               -- the deadline recorded by the segment's latest event before the end
               CASE WHEN len(deadline_changes) = 0 THEN deadline
                    WHEN len({before_end}) = 0 THEN deadline
                    ELSE {before_end}[-1].deadline END AS dl_last,
               -- the case's latest non-NULL deadline before the end
               CASE WHEN len(deadline_changes) = 0 THEN coalesce(deadline, deadline_before)
                    ELSE coalesce({known_before_end}[-1].deadline, deadline, deadline_before)
               END AS dl_known,
               close_at < $end AS closed_by_end
        FROM t
    ), d AS (
        SELECT {keys}department_id, subdistrict_id, community_id, ended_at AS end_at,
               suspended, extended, closed_by_end,
               CASE WHEN ended THEN dl_last ELSE coalesce(dl_last, dl_known) END AS dl0,
               dl0 + INTERVAL {grace} MINUTE AS dl,
               coalesce(ended_by = 'dispose', FALSE) AS completed,
               coalesce(completed AND ended_at <= dl AND {extension_ok}, FALSE) AS on_time,
               CASE WHEN completed AND ended_at <= dl THEN ended_at
                    ELSE coalesce(dl, CASE WHEN completed THEN ended_at END) END AS settle,
               coalesce(ended_by, '') NOT IN ('approve_return', 'approve_void') AS kept
        FROM a
    )
    SELECT {keys}department_id, subdistrict_id, community_id, dl0, end_at,
           completed, on_time, coalesce(closed_by_end, FALSE) AS closed
    FROM d
    WHERE kept {leave} AND settle >= $start AND settle < $end
    """


def _counts_map(measures: dict[str, str]) -> str:
    """A MAP(VARCHAR, DOUBLE) of named aggregates: blocks of different counts in one UNION."""
    names = ", ".join(f"'{n}'" for n in measures)
    values = ", ".join(f"({v})::DOUBLE" for v in measures.values())
    return f"map([{names}], [{values}])"


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


class Engine:
    """KPIs for periods over the derived relations ``steps`` and ``callbacks``.

    A month is a handful of passes: one over the segments started in it (every count keyed by
    user, and the disposals and filings by department and territory), one over its disposal
    tasks (due, disposed, on time, closed), one over its callbacks, and one for the 12345 rates.
    Each pass reads the period's slice once (row-group pruning), with only the columns it needs,
    and groups it first by small codes; the per-subject counts come from that small result.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        settings: EvaluationSettings,
        step_files: dict[tuple[bool, int, bool], list[Path]] | None = None,
    ) -> None:
        self.con = con
        self.settings = settings
        self._window: tuple[dt.datetime, dt.datetime] | None = None
        # A columnar export's ``steps`` files by (task, kind, shared); None: ``steps`` is a
        # table.
        self._step_files = step_files
        # Minutes after UTC midnight at which the ``people`` days start (-1: no rows); read once.
        self._day_phase: int | None = None

    # -- construction -----------------------------------------------------------------------

    @staticmethod
    def _connect() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        # Parquet footers (row-group statistics) are read once per connection, not per query.
        con.execute("SET parquet_metadata_cache = true")
        # This optimizer (in newer DuckDB versions) splits an aggregate into one scan per
        # partition of its keys, which reads the same Parquet row groups again for each: several
        # times slower for these aggregates.
        names = {r[0] for r in con.execute("SELECT name FROM duckdb_optimizers()").fetchall()}
        if "partitioned_execution" in names:
            con.execute("SET disabled_optimizers = 'partitioned_execution'")
        return con

    @classmethod
    def from_arrays(
        cls, cases: dict[str, Any], events: dict[str, Any], settings: EvaluationSettings
    ) -> Engine:
        """An engine over ``cases`` and ``events`` columns (numpy), derived in memory."""
        con = cls._connect()
        for name, data, columns in (
            ("cases", cases, CASE_COLUMNS),
            ("events", events, EVENT_COLUMNS),
        ):
            con.register(f"{name}_raw", data)
            cols = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in columns)
            con.execute(f"CREATE TABLE {name} AS SELECT {cols} FROM {name}_raw")
            con.unregister(f"{name}_raw")
        derive(con, timezone=settings.timezone)
        return cls(con, settings)

    @classmethod
    def from_database(
        cls, session: Session, settings: EvaluationSettings, periods: Sequence[Period]
    ) -> Engine:
        """An engine over the live database, loaded for the union window of ``periods``."""
        lo = min(p.start for p in periods)
        hi = max(p.end for p in periods)
        cases, events = load_database_window(session, lo, hi)
        engine = cls.from_arrays(cases, events, settings)
        engine.prepare(*_naive(lo, hi))
        return engine

    @classmethod
    def from_parquet(
        cls, directory: Path, settings: EvaluationSettings, *, threads: int | None = None
    ) -> Engine:
        """An engine over a columnar export (``cases*``, ``events*``, ``steps``, ``callbacks``).

        An export without the derived files (written by an older version) is derived in memory.
        """
        con = cls._connect()
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        _source_views(con, directory)
        if not _has_derived(con, directory):
            derive(con, timezone=settings.timezone)
            return cls(con, settings)
        con.execute(f"CREATE VIEW steps AS {_steps_view(directory)}")
        for name in ("callbacks", "people"):
            path = _quote_path(directory / f"{name}.parquet")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
        # Read the footers now (into the metadata cache): no row group matches.
        for name, column in (
            ("steps", "start_at"),
            ("callbacks", "event_at"),
            ("people", "day_start"),
        ):
            con.execute(f"SELECT count(*) FROM {name} WHERE {column} < TIMESTAMP '0001-01-02'")
        return cls(con, settings, _step_files(directory))

    # -- periods ----------------------------------------------------------------------------

    def prepare(self, lo: dt.datetime, hi: dt.datetime) -> None:
        """Note the window [lo, hi) (naive UTC) the caller is about to ask periods of.

        The derived relations need no per-window work: each period reads its own slice.
        """
        self._window = (lo, hi)

    def _steps(self, *kinds: str, task: bool | None = None, shared: bool | None = None) -> str:
        """A FROM source of the ``steps`` rows of ``kinds`` (all kinds if none), and of ``task``
        and ``shared`` (a disposal task of a case with several in its department) if given.

        Over an export it names exactly those files (no directory listing, no partition
        filter per query: each pass opens only its own files); over a table it filters it.
        """
        codes = {KIND[k] for k in kinds} if kinds else set(KIND.values())
        if self._step_files is None:
            conds = [f"kind IN ({', '.join(str(c) for c in sorted(codes))})"]
            if task is not None:
                conds.append("task" if task else "NOT task")
            if shared is not None:
                conds.append(f"(coalesce(department_tasks, 1) > 1) = {str(shared).upper()}")
            return f"(SELECT * FROM steps WHERE {' AND '.join(conds)})"
        files = [
            path
            for (is_task, kind, is_shared), paths in sorted(self._step_files.items())
            if kind in codes
            and (task is None or is_task == task)
            and (shared is None or is_shared == shared)
            for path in paths
        ]
        if not files:
            return "(SELECT * FROM steps WHERE FALSE)"
        names = ", ".join(f"'{_quote_path(f)}'" for f in files)
        types = ", ".join(f"'{n}': '{t}'" for n, t in PARTITION_KEYS)
        return f"read_parquet([{names}], hive_partitioning = true, hive_types = {{{types}}})"

    # -- counts -----------------------------------------------------------------------------

    def _rows(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        # DuckDB wants exactly the parameters a statement names.
        cur = self.con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        names = [d[0] for d in cur.description or []]
        return names, cur.fetchall()

    @staticmethod
    def _place_block(source: str, measures: dict[str, str], *, with_department: bool) -> str:
        """A block's counts per department, subdistrict, community and the city (one pass with
        GROUPING SETS over ``source``, whose rows have department_id, subdistrict_id and
        community_id) as rows (dim, k, m): the dimension, the subject key and the counts."""
        if with_department:
            cols = "department_id, subdistrict_id, community_id"
            names = {3: "department", 5: "subdistrict", 6: "community", 7: "city"}
            keys = {3: "department_id", 5: "subdistrict_id", 6: "community_id", 7: "0"}
            sets = "(department_id), (subdistrict_id), (community_id), ()"
        else:
            cols = "subdistrict_id, community_id"
            names = {1: "subdistrict", 2: "community", 3: "city"}
            keys = {1: "subdistrict_id", 2: "community_id", 3: "0"}
            sets = "(subdistrict_id), (community_id), ()"
        dim = " ".join(f"WHEN {g} THEN '{n}'" for g, n in names.items())
        key = " ".join(f"WHEN {g} THEN {k}" for g, k in keys.items())
        return f"""
            SELECT CASE GROUPING({cols}) {dim} END AS dim,
                   CASE GROUPING({cols}) {key} END::BIGINT AS k, {_counts_map(measures)} AS m
            {source}
            GROUP BY GROUPING SETS ({sets})
        """

    def _collect(self, out: KpiCounts, blocks: Sequence[str], p: dict[str, Any]) -> None:
        """Run the blocks as one statement and file each row's counts under its subject."""
        sql = "\nUNION ALL\n".join(f"SELECT * FROM ({b})" for b in blocks)
        _names, rows = self._rows(sql, p)
        for dim, key, counts in rows:
            subject = out.subject(dim, None if key is None else int(key))
            for name, value in counts.items():
                subject[name] = float(value or 0)

    def counts(self, period: Period, *, people: bool = True) -> KpiCounts:
        """Every count of DOMAIN.md section 5 for ``period``, per dimension and subject.

        ``people`` False leaves out the per-user counts (the comparisons with other months only
        rank departments and territories).

        A few passes, each reading only its kinds' row groups of the period: the disposal tasks,
        the disposals and filings (``_territory``), the callbacks (``_callbacks``), and for the
        people every segment (user × kind × on time), the dispatches returned, the inspectors'
        reports and beats. Each pass groups its rows by small keys; every block of counts is
        then a GROUPING SETS over that small result, and all blocks run as one statement.
        """
        start, end = period.utc_naive()
        p = {"start": start, "end": end}
        grace = int(self.settings.on_time.grace_minutes)
        out = KpiCounts(period)
        # Disposals (返工) and filings (立案): their two kinds are adjacent. A filing's user and
        # whether the case was voided by the end are kept for the shift supervisors' counts.
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _territory AS
            SELECT {KIND["disposal"]}::UTINYINT AS kind, department_id, subdistrict_id,
                   community_id, coalesce(reworked_at < $end, FALSE) AS reworked,
                   FALSE AS refiled, NULL::BIGINT AS actor, NULL::BOOLEAN AS voided,
                   NULL::BOOLEAN AS on_time, count(*) AS n
            FROM {self._steps("disposal")}
            WHERE start_at >= $start AND start_at < $end
            GROUP BY department_id, subdistrict_id, community_id, reworked
            UNION ALL
            SELECT {KIND["filing"]}::UTINYINT AS kind, department_id, subdistrict_id,
                   community_id, FALSE AS reworked,
                   coalesce(prev_file_at >= $start, FALSE) AS refiled, actor,
                   coalesce(void_at < $end, FALSE) AS voided, late <= {grace} AS on_time,
                   count(*) AS n
            FROM {self._steps("filing")}
            WHERE start_at >= $start AND start_at < $end
            GROUP BY department_id, subdistrict_id, community_id, refiled, actor, voided, on_time
            """,
            p,
        )
        # Callbacks: per place and rating (the callback's department), and per user.
        self.con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _callbacks AS
            SELECT department_id, subdistrict_id, community_id, satisfaction, actor_user_id,
                   GROUPING(actor_user_id) AS by_place, count(*) AS n
            FROM callbacks WHERE event_at >= $start AND event_at < $end
            GROUP BY GROUPING SETS ((department_id, subdistrict_id, community_id, satisfaction),
                                   (actor_user_id))
            """,
            p,
        )
        # Disposal tasks: the due block and the closing block share their subjects. The closing
        # counts are per case (and department): a task that is its department's only task of the
        # case is its own case; the others are grouped by case first.
        # A task that is its department's only task of the case is its own case; the others
        # (``shared``: rework) are grouped by case first.
        own = _due_sql(self.settings, self._steps(task=True, shared=False), cases=False)
        shared = _due_sql(self.settings, self._steps(task=True, shared=True))
        tasks = f"""
            FROM (
                SELECT department_id, subdistrict_id, community_id, count(*) AS n,
                       sum(completed::INTEGER) AS n_done, sum(on_time::INTEGER) AS n_on_time,
                       count(*) AS n_cases, sum(closed::INTEGER) AS n_closed,
                       sum((closed AND on_time)::INTEGER) AS n_closed_on_time
                FROM ({own})
                GROUP BY department_id, subdistrict_id, community_id
                UNION ALL
                SELECT department_id, any_value(subdistrict_id) AS subdistrict_id,
                       any_value(community_id) AS community_id, count(*) AS n,
                       sum(completed::INTEGER) AS n_done, sum(on_time::INTEGER) AS n_on_time,
                       1 AS n_cases, max(closed::INTEGER) AS n_closed,
                       max(closed::INTEGER) * min(on_time::INTEGER) AS n_closed_on_time
                FROM ({shared})
                -- a case's territory is the case's own: the same on each of its tasks
                GROUP BY department_id, case_id
            )
        """
        blocks = [
            self._place_block(
                tasks,
                {
                    "due_disposal": "sum(n)",
                    "disposed": "sum(n_done)",
                    "disposed_on_time": "sum(n_on_time)",
                    "overdue": "sum(n - n_on_time)",
                    "due_closing": "sum(n_cases)",
                    "closed": "sum(n_closed)",
                    "closed_on_time": "sum(n_closed_on_time)",
                },
                with_department=True,
            ),
            self._place_block(
                f"FROM _territory WHERE kind = {KIND['disposal']}",
                {"disposals": "sum(n)", "reworked": "sum(n) FILTER (WHERE reworked)"},
                with_department=True,
            ),
            # A case filed twice in the period counts once (``refiled``: an earlier filing).
            self._place_block(
                f"FROM _territory WHERE kind = {KIND['filing']}",
                {"filed": "sum(n) FILTER (WHERE NOT refiled)"},
                with_department=False,
            ),
            self._place_block(
                "FROM _callbacks WHERE by_place = 1",
                {
                    "rated": "sum(n) FILTER (WHERE satisfaction IS NOT NULL)",
                    "satisfied": "sum(n) FILTER (WHERE satisfaction = 'satisfied')",
                    "basically_satisfied": (
                        "sum(n) FILTER (WHERE satisfaction = 'basically_satisfied')"
                    ),
                },
                with_department=True,
            ),
        ]
        if people:
            blocks += self._actor_blocks()
        self._collect(out, blocks, p)
        if people:
            self._people_counts(out, p)
            # Every user with a count has the people pass's whole set (a user seen only by
            # another pass, e.g. an inspector who only reported, has zeros there).
            for counts in out.by.get("actor", {}).values():
                for name in (*PEOPLE_COUNTS, "filed_not_voided", "dispatched_correctly"):
                    counts.setdefault(name, 0.0)
        factor = float(self.settings.hotline.basically_satisfied_factor)
        for subjects in out.by.values():
            for counts in subjects.values():
                if "rated" in counts:
                    counts["satisfaction_points"] = counts.get(
                        "satisfied", 0
                    ) + factor * counts.get("basically_satisfied", 0)
        return out

    def _whole_days(self, start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The whole ``people`` days [a, b) inside [start, end) (naive UTC); a == b: none."""
        if self._day_phase is None:
            row = self.con.execute("SELECT min(day_start) FROM people").fetchone()
            first = row[0] if row else None
            # No rows: every period reads ``steps`` (which has no people rows either).
            self._day_phase = -1 if first is None else first.hour * 60 + first.minute
        if self._day_phase < 0:
            return start, start
        day = dt.timedelta(days=1)
        phase = dt.timedelta(minutes=self._day_phase)
        a = dt.datetime.combine(start.date(), dt.time()) + phase
        a = a if a >= start else a + day
        b = dt.datetime.combine(end.date(), dt.time()) + phase
        b = b if b <= end else b - day
        return (a, b) if a < b else (start, start)

    def _people_rows(self, p: dict[str, Any]) -> str:
        """Rows (actor, kind, on_time, n) of the ``PEOPLE_KINDS`` segments started in [$start,
        $end): the whole days from ``people`` and the partial days from ``steps``; all from
        ``steps`` when a grace is set (``people`` counts on time with none)."""
        grace = int(self.settings.on_time.grace_minutes)
        source = self._steps(*PEOPLE_KINDS)

        def raw(lo: str, hi: str) -> str:
            return f"""SELECT actor, kind, late <= {grace} AS on_time, count(*) AS n
                FROM {source}
                WHERE start_at >= {lo} AND start_at < {hi} AND actor IS NOT NULL
                GROUP BY ALL"""

        if grace != 0:
            return raw("$start", "$end")
        a, b = self._whole_days(p["start"], p["end"])
        if a == b:
            return raw("$start", "$end")
        p["day_a"], p["day_b"] = a, b
        parts = [
            """SELECT actor, kind, on_time,
                       CASE WHEN on_time THEN sum(n_on_time) ELSE sum(n - n_on_time) END AS n
                FROM people, (VALUES (TRUE), (FALSE)) AS o(on_time)
                WHERE day_start >= $day_a AND day_start < $day_b
                GROUP BY actor, kind, on_time"""
        ]
        if p["start"] < a:
            parts.append(raw("$start", "$day_a"))
        if b < p["end"]:
            parts.append(raw("$day_b", "$end"))
        return "\nUNION ALL\n".join(parts)

    def _people_counts(self, out: KpiCounts, p: dict[str, Any]) -> None:
        """The people pass: per user, the segments of ``PEOPLE_KINDS`` started in the period by
        kind and on time (``_people_rows``), with the filings (on time, voided by the end) from
        ``_territory`` and the dispatches returned by the end; summed into ``PEOPLE_COUNTS``
        here (a few thousand rows), not in SQL."""
        filing = KIND["filing"]
        _names, rows = self._rows(
            f"""
            WITH s AS (
                {self._people_rows(p)}
                UNION ALL
                SELECT actor, kind, on_time, sum(n) AS n FROM _territory
                WHERE kind = {filing} AND actor IS NOT NULL
                GROUP BY ALL
            )
            SELECT 0 AS part, actor, kind, on_time, sum(n) AS n FROM s GROUP BY ALL
            UNION ALL
            SELECT 1 AS part, actor, NULL, NULL, count(*) AS n FROM {self._steps("dispatch")}
            WHERE start_at >= $start AND start_at < $end
              AND actor IS NOT NULL AND returned_at < $end
            GROUP BY actor
            UNION ALL
            SELECT 2 AS part, actor, NULL, NULL, sum(n) AS n FROM _territory
            WHERE kind = {filing} AND voided AND actor IS NOT NULL
            GROUP BY actor
            """,
            p,
        )
        seen: dict[int, dict[tuple[int, bool], float]] = {}
        returned: dict[int, float] = {}
        voided: dict[int, float] = {}
        for part, actor, kind, on_time, n in rows:
            if part == 0:
                cells = seen.setdefault(int(actor), {})
                key = (int(kind), bool(on_time))
                cells[key] = cells.get(key, 0.0) + float(n)
            else:
                (returned if part == 1 else voided)[int(actor)] = float(n)
        codes = {name: {KIND[k] for k in kinds} for name, (kinds, _) in PEOPLE_COUNTS.items()}
        for actor, cells in seen.items():
            counts = out.subject("actor", actor)
            for name, (_kinds, on_time_only) in PEOPLE_COUNTS.items():
                counts[name] = sum(
                    n for (kind, on_time), n in cells.items()
                    if kind in codes[name] and (on_time or not on_time_only)
                )  # fmt: skip
            counts["filed_not_voided"] = counts["filings"] - voided.get(actor, 0.0)
            counts["dispatched_correctly"] = counts["dispatches"] - returned.get(actor, 0.0)

    def _actor_blocks(self) -> list[str]:
        """Inspector and intake counts, keyed by user id, as blocks of the counts statement.

        Every user's counts go into the dimension ``actor``; the service files each user under
        the subject of their role. The callbacks (``_callbacks``); the inspectors' reports and
        their beats. (The people pass is ``_people_counts``.)
        """
        pending = "TRUE" if not self.settings.pending_reports_leave_denominator else "decided"
        reports = _counts_map(
            {
                "reports": f"sum(n) FILTER (WHERE {pending})",
                "valid_reports": "sum(n) FILTER (WHERE valid)",
            }
        )
        public = _sql_list(PUBLIC_CHANNEL_VALUES)
        return [
            f"""
            SELECT 'actor' AS dim, actor_user_id AS k, {_counts_map({"callbacks": "sum(n)"})} AS m
            FROM _callbacks WHERE by_place = 0 AND actor_user_id IS NOT NULL
            GROUP BY actor_user_id
            """,
            # Inspectors' reports: valid and decided by the end (pending ones may leave the base).
            f"""
            SELECT 'actor' AS dim, actor AS k, {reports} AS m
            FROM (
                SELECT actor,
                       coalesce(least(file_at, close_at) < $end
                                AND coalesce(void_at >= $end, TRUE), FALSE) AS valid,
                       coalesce(least(file_at, close_at, void_at, refused_at) < $end, FALSE)
                           AS decided,
                       count(*) AS n
                FROM {self._steps("inspector_report")}
                WHERE start_at >= $start AND start_at < $end AND actor IS NOT NULL
                GROUP BY ALL
            )
            GROUP BY actor
            """,
            # 漏报: the cells an inspector reported from in the period (the beat: each inspector's
            # first report from a cell in the period), and the reports filed (not voided) there.
            f"""
            WITH filed AS (
                SELECT cell_key, count(*) AS n,
                       count(*) FILTER (WHERE channel IN {public}) AS n_public
                FROM {self._steps("inspector_report", "other_report")}
                WHERE start_at >= $start AND start_at < $end AND cell_key IS NOT NULL
                  AND file_at < $end AND coalesce(void_at >= $end, TRUE)
                GROUP BY cell_key
            ), beats AS (
                SELECT actor AS k, cell_key FROM {self._steps("inspector_report")}
                WHERE start_at >= $start AND start_at < $end
                  AND actor IS NOT NULL AND cell_key IS NOT NULL
                  AND coalesce(prev_beat_at < $start, TRUE)
            )
            SELECT 'actor' AS dim, b.k,
                   {_counts_map({"beat_filed": "sum(f.n)", "missed": "sum(f.n_public)"})} AS m
            FROM beats b JOIN filed f ON f.cell_key = b.cell_key
            GROUP BY b.k
            """,
        ]

    # -- the 12345 three rates --------------------------------------------------------------

    def hotline_counts(self, period: Period) -> dict[str, dict[int | None, Counts]]:
        """Counts of the three rates over hotline cases closed in ``period``, city and per dept."""
        start, end = period.utc_naive()
        cfg = self.settings.hotline
        channels = _sql_list(c.value for c in cfg.channels)
        solved = {
            SolvedRule.CLOSED_NOT_DISSATISFIED: "coalesce(m.rating, '') <> 'dissatisfied'",
            SolvedRule.CLOSED_AND_SATISFIED: "m.rating IN ('satisfied', 'basically_satisfied')",
            SolvedRule.CLOSED: "TRUE",
        }[cfg.solved_rule]
        # The cases first closed in the period (every close event of such a case is at or after
        # its first one), the department of that closing, and their callbacks before the end.
        counts = f"""
            count(*) AS owed, count(*) FILTER (WHERE m.callbacks > 0) AS contacted,
            count(*) FILTER (WHERE {solved}) AS solved, count(m.rating) AS rated,
            count(*) FILTER (WHERE m.rating = 'satisfied') AS satisfied,
            count(*) FILTER (WHERE m.rating = 'basically_satisfied') AS basically_satisfied
        """
        names, rows = self._rows(
            f"""
            WITH owed AS (
                SELECT case_id, arg_min(department_id, seg_id) AS close_dept
                FROM {self._steps("closing")}
                WHERE start_at >= $start AND start_at < $end
                  AND close_at >= $start AND close_at < $end AND channel IN {channels}
                GROUP BY case_id
            ), cb AS (
                SELECT case_id, count(*) AS callbacks, arg_max(satisfaction, id) AS rating
                FROM callbacks
                WHERE close_at >= $start AND close_at < $end AND event_at < $end
                  AND channel IN {channels}
                GROUP BY case_id
            ), m AS (
                SELECT o.close_dept, coalesce(cb.callbacks, 0) AS callbacks, cb.rating
                FROM owed o LEFT JOIN cb USING (case_id)
            )
            SELECT 'city' AS dim, 0 AS k, {counts} FROM m GROUP BY dim, k
            UNION ALL
            SELECT 'department' AS dim, close_dept AS k, {counts} FROM m GROUP BY dim, k
            """,
            {"start": start, "end": end},
        )
        result: dict[str, dict[int | None, Counts]] = {"city": {}, "department": {}}
        for row in rows:
            result[row[0]][None if row[1] is None else int(row[1])] = {
                n: float(v or 0) for n, v in zip(names[2:], row[2:], strict=True)
            }
        return result

    # -- lists for the report ---------------------------------------------------------------

    def report_lists(self, period: Period) -> ReportLists:
        start, end = period.utc_naive()
        p = {"start": start, "end": end}
        rc = self.settings.report
        due = _due_sql(self.settings, self._steps(task=True))
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE due AS {due}", p)
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE filed_now AS
            WITH f AS (
                SELECT DISTINCT case_id, minor_id, cell_code, subdistrict_id
                FROM {self._steps("filing")}
                WHERE start_at >= $start AND start_at < $end
            )
            SELECT f.case_id, c.code, f.minor_id, f.cell_code, f.subdistrict_id
            FROM f JOIN cases c ON c.id = f.case_id
            """,
            p,
        )
        top = self.con.execute(
            """SELECT minor_id, count(*) AS n FROM filed_now GROUP BY minor_id
               ORDER BY n DESC, minor_id NULLS LAST LIMIT $n""",
            {"n": rc.top_classes},
        ).fetchall()
        cells = self.con.execute(
            """SELECT cell_code, count(*) AS n FROM filed_now WHERE cell_code IS NOT NULL
               GROUP BY cell_code ORDER BY n DESC, cell_code LIMIT $n""",
            {"n": rc.hotspot_cells},
        ).fetchall()
        subs = self.con.execute(
            """SELECT subdistrict_id, count(*) AS n FROM filed_now
               WHERE subdistrict_id IS NOT NULL
               GROUP BY subdistrict_id ORDER BY n DESC, subdistrict_id LIMIT $n""",
            {"n": rc.hotspot_cells},
        ).fetchall()
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE repeats AS
               SELECT cell_code, minor_id, count(*) AS n,
                      list(code ORDER BY code)[1:$codes] AS codes
               FROM filed_now WHERE cell_code IS NOT NULL AND minor_id IS NOT NULL
               GROUP BY cell_code, minor_id HAVING count(*) >= $t""",
            {"t": rc.repeat_threshold, "codes": rc.repeat_codes},
        )
        repeat_total = self.con.execute("SELECT count(*) FROM repeats").fetchone()
        repeats = self.con.execute(
            "SELECT * FROM repeats ORDER BY n DESC, cell_code, minor_id LIMIT $n",
            {"n": rc.repeat_rows},
        ).fetchall()
        overdue_total = self.con.execute("SELECT count(*) FROM due WHERE NOT on_time").fetchone()
        overdue = self.con.execute(
            """WITH late AS (SELECT * FROM due WHERE NOT on_time)
               SELECT d.case_id, c.code, d.department_id, d.dl0,
                      CASE WHEN d.completed THEN d.end_at END
               FROM late d JOIN cases c ON c.id = d.case_id
               ORDER BY d.dl0, c.code, d.case_id LIMIT $n""",
            {"n": rc.overdue_rows},
        ).fetchall()
        return ReportLists(
            top_classes=[(None if m is None else int(m), int(n)) for m, n in top],
            hotspot_cells=[(str(c), int(n)) for c, n in cells],
            hotspot_subdistricts=[(int(s), int(n)) for s, n in subs],
            repeats=[(str(c), int(m), int(n), list(codes)) for c, m, n, codes in repeats],
            repeat_total=int(repeat_total[0]) if repeat_total else 0,
            overdue=[
                OverdueRow(int(cid), str(code), None if dep is None else int(dep), dl, done)
                for cid, code, dep, dl, done in overdue
            ],
            overdue_total=int(overdue_total[0]) if overdue_total else 0,
        )

    def closed_cases(self, period: Period) -> list[tuple[int, int | None]]:
        """(case id, department of the closing event) for cases closed in ``period``."""
        start, end = period.utc_naive()
        rows = self.con.execute(
            f"""SELECT case_id, arg_min(department_id, seg_id) FROM {self._steps("closing")}
               WHERE start_at >= $start AND start_at < $end
                 AND close_at >= $start AND close_at < $end
               GROUP BY case_id ORDER BY case_id""",
            {"start": start, "end": end},
        ).fetchall()
        return [(int(c), None if d is None else int(d)) for c, d in rows]

    def close(self) -> None:
        self.con.close()


def _naive(*instants: dt.datetime) -> tuple[dt.datetime, ...]:
    return tuple(i.astimezone(dt.UTC).replace(tzinfo=None) for i in instants)


__all__ = [
    "BOUNDARY_ACTIONS",
    "CALLBACK_COLUMNS",
    "CASE_COLUMNS",
    "DIMENSIONS",
    "EVENT_COLUMNS",
    "STEP_COLUMNS",
    "Engine",
    "KpiCounts",
    "OverdueRow",
    "ReportLists",
    "derive",
    "derive_parquet",
    "export_parquet",
    "load_database_window",
    "write_derived",
]
