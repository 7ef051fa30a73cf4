"""The KPI engine as it was before the derived relations: an oracle for the equivalence test.

This is the engine that computed every period from the raw events on each request (segments and
per-case marks by self-joins over the candidate cases' events, "as of the period's end"). Its
semantics are the contract; ``test_evaluation_engine_equivalence`` checks that the engine over
the derived ``steps`` and ``callbacks`` relations gives exactly its numbers on random histories.
Kept verbatim apart from the database and Parquet sources, which the test does not need.
"""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from cityloop.cases.domain import (
    OPEN_STATES,
    PUBLIC_CHANNELS,
    TRANSITIONS,
    CaseAction,
    ClockEffect,
    Satisfaction,
    Step,
)
from cityloop.evaluation.config import EvaluationSettings, SolvedRule
from cityloop.evaluation.domain import Period
from cityloop.org.domain import Role

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
    # Derived links (``derive_links``): functions of the immutable history, computed once when
    # events are loaded or exported, so a month's KPIs need no sort or window at query time.
    ("seg_id", "BIGINT"),  # id of the boundary event that started this event's segment
    ("prev_seg_id", "BIGINT"),  # the segment of the case's previous event (NULL: first event)
    ("prev_step", "VARCHAR"),  # the step clock running before this event
    ("prev_deadline", "TIMESTAMP"),  # the deadline in force before this event
)
"""``events``: one row per case event, ids increasing with time within a case."""

DERIVED_EVENT_COLUMNS = ("seg_id", "prev_seg_id", "prev_step", "prev_deadline")


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


def derive_links(
    case_id: np.ndarray, event_id: np.ndarray, action: np.ndarray, step: Any, deadline: Any
) -> dict[str, Any]:
    """The derived event columns, vectorised (one sort by case and id).

    A *boundary* event (``BOUNDARY_ACTIONS``: START or STOP in the case loop) ends the step that
    was running and starts a segment; the events up to the next boundary belong to it. Each
    event gets the id of its segment's start, and the segment, step and deadline of the case's
    previous event: the deadline in force when it happened. Inputs may be plain or masked
    numpy arrays (strings as object arrays, instants as datetime64).
    """
    n = len(event_id)
    case_id = np.asarray(case_id)
    event_id = np.asarray(event_id)
    order = np.lexsort((event_id, case_id))
    c = case_id[order]
    ids = event_id[order]
    first = np.ones(n, dtype=bool)
    if n:
        first[1:] = c[1:] != c[:-1]
    boundary = np.isin(np.asarray(action, dtype=object)[order], BOUNDARY_ACTIONS) | first
    start_pos = np.maximum.accumulate(np.where(boundary, np.arange(n), 0)) if n else boundary
    seg_sorted = ids[start_pos] if n else ids
    steps = np.asarray(step, dtype=object)[order]
    deadlines = np.asarray(deadline, dtype="datetime64[us]")[order]
    prev_seg = np.zeros(n, dtype=np.int64)
    prev_step = np.empty(n, dtype=object)
    prev_deadline = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    if n:
        prev_seg[1:] = seg_sorted[:-1]
        prev_step[1:] = steps[:-1]
        prev_deadline[1:] = deadlines[:-1]
    prev_step[first] = None
    prev_deadline[first] = np.datetime64("NaT")
    out_seg = np.empty(n, dtype=np.int64)
    out_prev = np.empty(n, dtype=np.int64)
    out_step = np.empty(n, dtype=object)
    out_deadline = np.empty(n, dtype="datetime64[us]")
    out_first = np.empty(n, dtype=bool)
    out_seg[order] = seg_sorted
    out_prev[order] = prev_seg
    out_step[order] = prev_step
    out_deadline[order] = prev_deadline
    out_first[order] = first
    return {
        "seg_id": out_seg,
        "prev_seg_id": np.ma.masked_array(out_prev, mask=out_first),
        "prev_step": out_step,
        "prev_deadline": out_deadline,
    }


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
# The engine
# --------------------------------------------------------------------------------------------


class Engine:
    """KPIs for periods inside one prepared window of history.

    ``prepare(lo, hi)`` selects the candidate cases and their events once (the expensive scan);
    every period inside [lo, hi) is then computed from that small working set.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: EvaluationSettings) -> None:
        self.con = con
        self.settings = settings
        self._window: tuple[dt.datetime, dt.datetime] | None = None
        self._period_ready: tuple[dt.datetime, dt.datetime] | None = None
        self._marks_ready: dict[str, dt.datetime] = {}

    # -- construction -----------------------------------------------------------------------

    @staticmethod
    def _connect() -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the working set's enum types.

        The working set keeps actions, steps, roles and ratings as ENUMs: one byte instead of a
        string per row makes materialising and joining millions of events several times faster
        on a small machine. A value the loop does not know (a newer version's action) becomes
        NULL rather than failing the month.
        """
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        for name, values in (
            ("ev_action", [a.value for a in CaseAction]),
            ("ev_step", [s.value for s in Step]),
            ("ev_role", [r.value for r in Role]),
            ("ev_rating", [r.value for r in Satisfaction]),
        ):
            con.execute(f"CREATE TYPE {name} AS ENUM {_sql_list(values)}")
        return con

    @classmethod
    def from_arrays(
        cls, cases: dict[str, Any], events: dict[str, Any], settings: EvaluationSettings
    ) -> Engine:
        con = cls._connect()
        for name, data, columns in (
            ("cases", cases, CASE_COLUMNS),
            ("events", events, EVENT_COLUMNS),
        ):
            con.register(f"{name}_raw", data)
            cols = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in columns)
            con.execute(f"CREATE TABLE {name} AS SELECT {cols} FROM {name}_raw")
            con.unregister(f"{name}_raw")
        return cls(con, settings)

    # -- the working set --------------------------------------------------------------------

    def prepare(self, lo: dt.datetime, hi: dt.datetime) -> None:
        """Select the candidate cases of [lo, hi) and their events before hi (naive UTC).

        The event scan is bounded below by the oldest candidate's id: ids grow with time, so
        with events stored by case (the export's order) DuckDB skips older row groups.
        """
        con = self.con
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE cand AS
            SELECT id AS case_id, code, channel, minor_id, subdistrict_id, community_id,
                   cell_code, inspector_id
            FROM cases
            WHERE reported_at < $hi
              AND (state IN {_sql_list(OPEN_STATE_VALUES)} OR updated_at >= $lo)
            """,
            {"lo": lo, "hi": hi},
        )
        row = con.execute("SELECT min(case_id) FROM cand").fetchone()
        min_id = int(row[0]) if row and row[0] is not None else 0
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE ev AS
            SELECT e.id, e.case_id, e.event_at, e.actor_user_id,
                   TRY_CAST(e.actor_role AS ev_role) AS actor_role,
                   TRY_CAST(e.action AS ev_action) AS action,
                   e.department_id, TRY_CAST(e.step AS ev_step) AS step, e.deadline,
                   TRY_CAST(e.satisfaction AS ev_rating) AS satisfaction, e.seg_id,
                   e.prev_seg_id, TRY_CAST(e.prev_step AS ev_step) AS prev_step,
                   e.prev_deadline,
                   e.action IN {_sql_list(BOUNDARY_ACTIONS)} OR e.prev_seg_id IS NULL
                       AS boundary
            FROM events e SEMI JOIN cand c ON e.case_id = c.case_id
            WHERE e.case_id >= $min_id AND e.event_at < $hi
            """,
            {"hi": hi, "min_id": min_id},
        )
        self._window = (lo, hi)
        self._period_ready = None
        self._marks_ready = {}

    def _window_for(self, period: Period) -> tuple[dt.datetime, dt.datetime]:
        start, end = period.utc_naive()
        if self._window is None or start < self._window[0] or end > self._window[1]:
            self.prepare(start, end)
        return start, end

    def _ensure(self, period: Period) -> tuple[dt.datetime, dt.datetime]:
        start, end = self._window_for(period)
        if self._period_ready != (start, end):
            self._build_period(start, end)
            self._period_ready = (start, end)
        return start, end

    def _build_marks(self, end: dt.datetime, table: str = "marks") -> None:
        """Per case, as of ``end``: first filing, closing, voiding, refusal; last rating."""
        if self._marks_ready.get(table) == end:
            return
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT case_id,
                   min(event_at) FILTER (WHERE action = 'file') AS file_at,
                   min(event_at) FILTER (WHERE action = 'close') AS close_at,
                   arg_min(department_id, id) FILTER (WHERE action = 'close') AS close_dept,
                   min(event_at) FILTER (WHERE action = 'approve_void') AS void_at,
                   min(event_at) FILTER (WHERE action IN ('decline', 'not_accept'))
                       AS refused_at,
                   arg_max(satisfaction, id) FILTER (WHERE action = 'callback') AS rating,
                   count(*) FILTER (WHERE action = 'callback') AS callbacks
            FROM ev WHERE event_at < $end
            GROUP BY case_id
            """,
            {"end": end},
        )
        self._marks_ready[table] = end

    def _build_period(self, start: dt.datetime, end: dt.datetime) -> None:
        """Segments, per-case marks and the disposal tasks due in [start, end).

        Only hash joins and GROUP BYs: the derived links say which segment each event is in
        and which boundary ended which segment (``prev_seg_id``).
        """
        cfg = self.settings
        grace = int(cfg.on_time.grace_minutes)
        con = self.con
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE seg AS
            WITH b AS (
                SELECT case_id, id, event_at, action, step, department_id, actor_user_id,
                       prev_seg_id, prev_step, prev_deadline
                FROM ev WHERE boundary AND event_at < $end
            ),
            last AS (
                -- the deadline in force at the end, for each case's running (last) segment
                SELECT case_id, arg_max_null(deadline, id) AS last_deadline,
                       arg_max(deadline, id) AS last_nn
                FROM ev WHERE event_at < $end GROUP BY case_id
            ),
            flags AS (
                SELECT seg_id, bool_or(action = 'approve_suspend') AS suspended,
                       bool_or(action = 'approve_extension') AS extended
                FROM ev
                WHERE event_at < $end AND action IN ('approve_suspend', 'approve_extension')
                GROUP BY seg_id
            )
            SELECT b.case_id, b.id AS seg_id, b.event_at AS start_at,
                   b.action AS start_action, b.step, b.department_id,
                   b.actor_user_id AS actor, b.prev_step, b.prev_deadline,
                   -- ended: the deadline in force just before the ending boundary
                   CASE WHEN n.id IS NOT NULL THEN n.prev_deadline ELSE l.last_deadline END
                       AS deadline_final,
                   CASE WHEN n.id IS NOT NULL THEN n.prev_deadline ELSE l.last_nn END
                       AS deadline_nn,
                   coalesce(f.suspended, FALSE) AS suspended,
                   coalesce(f.extended, FALSE) AS extended,
                   n.action AS end_action, n.event_at AS end_at, n.id AS end_id
            FROM b
            LEFT JOIN b AS n ON n.prev_seg_id = b.id
            LEFT JOIN last l ON l.case_id = b.case_id
            LEFT JOIN flags f ON f.seg_id = b.id
            """,
            {"end": end},
        )
        self._build_marks(end)
        leave = "AND NOT suspended" if cfg.suspended_leave_denominator else ""
        extension_ok = "TRUE" if cfg.on_time.extended_counts_as_on_time else "NOT extended"
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE due AS
            SELECT s.case_id, s.department_id, s.dl0, s.end_at, s.completed, s.on_time,
                   (m.close_at IS NOT NULL) AS closed
            FROM (
                SELECT case_id, department_id, end_at,
                       coalesce(deadline_final, deadline_nn) AS dl0,
                       dl0 + INTERVAL {grace} MINUTE AS dl,
                       coalesce(end_action = 'dispose', FALSE) AS completed,
                       coalesce(completed AND end_at <= dl AND {extension_ok}, FALSE) AS on_time,
                       CASE WHEN completed AND end_at <= dl THEN end_at
                            ELSE coalesce(dl, CASE WHEN completed THEN end_at END) END AS settle
                FROM seg
                WHERE step = 'dispose'
                  AND coalesce(end_action, '') NOT IN ('approve_return', 'approve_void')
                  {leave}
            ) s JOIN marks m USING (case_id)
            WHERE s.settle >= $start AND s.settle < $end
            """,
            {"start": start, "end": end},
        )

    # -- counts -----------------------------------------------------------------------------

    def _rows(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        # DuckDB wants exactly the parameters a statement names.
        cur = self.con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        names = [d[0] for d in cur.description or []]
        return names, cur.fetchall()

    def _merge(self, out: KpiCounts, dimension: str, sql: str, params: dict[str, Any]) -> None:
        names, rows = self._rows(sql, params)
        for row in rows:
            key = None if row[0] is None else int(row[0])
            counts = out.subject(dimension, key)
            for name, value in zip(names[1:], row[1:], strict=True):
                counts[name] = float(value or 0)

    def _merge_sets(
        self, out: KpiCounts, template: str, dept_key: str | None, params: dict[str, Any]
    ) -> None:
        """Run a block once with GROUPING SETS (department, subdistrict, community, city)."""
        if dept_key is None:
            keys = (
                "NULL::BIGINT AS dep, c.subdistrict_id AS sub, c.community_id AS com, "
                "4 + GROUPING(c.subdistrict_id, c.community_id) AS g"
            )
            sets = "GROUPING SETS ((c.subdistrict_id), (c.community_id), ())"
        else:
            keys = (
                f"{dept_key} AS dep, c.subdistrict_id AS sub, c.community_id AS com, "
                f"GROUPING({dept_key}, c.subdistrict_id, c.community_id) AS g"
            )
            sets = f"GROUPING SETS (({dept_key}), (c.subdistrict_id), (c.community_id), ())"
        names, rows = self._rows(template.format(keys=keys, sets=sets), params)
        # GROUPING bits: 4 = department rolled up, 2 = subdistrict, 1 = community.
        which = {3: ("department", 0), 5: ("subdistrict", 1), 6: ("community", 2), 7: ("city", 3)}
        for row in rows:
            dimension, index = which[int(row[3])]
            raw = 0 if dimension == "city" else row[index]
            counts = out.subject(dimension, None if raw is None else int(raw))
            for name, value in zip(names[4:], row[4:], strict=True):
                counts[name] = float(value or 0)

    def counts(self, period: Period, *, people: bool = True) -> KpiCounts:
        """Every count of DOMAIN.md section 5 for ``period``, per dimension and subject.

        ``people`` False leaves out the per-user counts (the comparisons with other months only
        rank departments and territories).
        """
        start, end = self._ensure(period)
        p = {"start": start, "end": end}
        out = KpiCounts(period)
        grace = int(self.settings.on_time.grace_minutes)
        factor = float(self.settings.hotline.basically_satisfied_factor)
        # One pass per block: GROUPING SETS give the department, territory and city rows at once.
        blocks = (
            (
                "d.department_id",
                """
                SELECT {keys}, count(*) AS due_disposal,
                       count(*) FILTER (WHERE completed) AS disposed,
                       count(*) FILTER (WHERE on_time) AS disposed_on_time,
                       count(*) FILTER (WHERE NOT on_time) AS overdue
                FROM due d JOIN cand c USING (case_id) GROUP BY {sets}
                """,
            ),
            (
                "department_id",
                """
                SELECT {keys}, count(*) AS due_closing,
                       count(*) FILTER (WHERE closed) AS closed,
                       count(*) FILTER (WHERE closed AND all_on_time) AS closed_on_time
                FROM (
                    SELECT d.department_id, c.subdistrict_id, c.community_id, d.case_id,
                           bool_and(d.on_time) AS all_on_time, bool_or(d.closed) AS closed
                    FROM due d JOIN cand c USING (case_id)
                    GROUP BY d.department_id, c.subdistrict_id, c.community_id, d.case_id
                ) c GROUP BY {sets}
                """,
            ),
            (
                "s.department_id",
                """
                SELECT {keys}, count(*) AS disposals,
                       count(*) FILTER (WHERE s.end_action = 'send_check'
                                          AND s2.end_action = 'check_fail') AS reworked
                FROM seg s JOIN cand c USING (case_id)
                LEFT JOIN seg s2 ON s2.seg_id = s.end_id
                WHERE s.start_action = 'dispose' AND s.start_at >= $start AND s.start_at < $end
                GROUP BY {sets}
                """,
            ),
            (
                "e.department_id",
                """
                SELECT {keys}, count(e.satisfaction) AS rated,
                       count(*) FILTER (WHERE e.satisfaction = 'satisfied') AS satisfied,
                       count(*) FILTER (WHERE e.satisfaction = 'basically_satisfied')
                           AS basically_satisfied
                FROM ev e JOIN cand c USING (case_id)
                WHERE e.action = 'callback' AND e.event_at >= $start AND e.event_at < $end
                GROUP BY {sets}
                """,
            ),
            (
                None,  # filing has no department yet
                """
                SELECT {keys}, count(DISTINCT e.case_id) AS filed
                FROM ev e JOIN cand c USING (case_id)
                WHERE e.action = 'file' AND e.event_at >= $start AND e.event_at < $end
                GROUP BY {sets}
                """,
            ),
        )
        for dept_key, template in blocks:
            self._merge_sets(out, template, dept_key, p)
        for subjects in out.by.values():
            for counts in subjects.values():
                if "rated" in counts:
                    counts["satisfaction_points"] = counts.get(
                        "satisfied", 0
                    ) + factor * counts.get("basically_satisfied", 0)
        if people:
            self._actor_counts(out, p, grace)
        return out

    def _actor_counts(self, out: KpiCounts, p: dict[str, Any], grace: int) -> None:
        """Inspector, intake, shift-supervisor and dispatcher counts, keyed by user id.

        Every user's counts go into the dimension ``actor``; the service files each user under
        the subject of their role.
        """
        on_time = f"(prev_deadline IS NULL OR start_at <= prev_deadline + INTERVAL {grace} MINUTE)"
        self._merge(
            out,
            "actor",
            f"""
            SELECT s.actor AS k,
                count(*) FILTER (WHERE start_action IN ('verify_found', 'verify_not_found',
                                 'self_handle') AND prev_step = 'verify') AS verifications,
                count(*) FILTER (WHERE start_action IN ('verify_found', 'verify_not_found',
                                 'self_handle') AND prev_step = 'verify' AND {on_time})
                    AS verified_on_time,
                count(*) FILTER (WHERE start_action IN ('check_pass', 'check_fail')) AS checks,
                count(*) FILTER (WHERE start_action IN ('check_pass', 'check_fail')
                                 AND {on_time}) AS checked_on_time,
                count(*) FILTER (WHERE start_action = 'send_verify'
                                 AND prev_step = 'send_verify') AS verify_sends,
                count(*) FILTER (WHERE start_action = 'send_verify'
                                 AND prev_step = 'send_verify' AND {on_time})
                    AS verify_sends_on_time,
                count(*) FILTER (WHERE start_action = 'send_check') AS check_sends,
                count(*) FILTER (WHERE start_action = 'send_check' AND {on_time})
                    AS check_sends_on_time,
                count(*) FILTER (WHERE start_action = 'file') AS filings,
                count(*) FILTER (WHERE start_action = 'file' AND {on_time}) AS filed_on_time,
                count(*) FILTER (WHERE start_action = 'file' AND m.void_at IS NULL)
                    AS filed_not_voided,
                count(*) FILTER (WHERE start_action = 'close') AS closings,
                count(*) FILTER (WHERE start_action = 'close' AND {on_time}) AS closings_on_time,
                count(*) FILTER (WHERE start_action = 'dispatch') AS dispatches,
                count(*) FILTER (WHERE start_action = 'dispatch' AND {on_time})
                    AS dispatched_on_time,
                count(*) FILTER (WHERE start_action = 'dispatch'
                                 AND coalesce(end_action, '') <> 'approve_return')
                    AS dispatched_correctly
            FROM seg s JOIN marks m USING (case_id)
            WHERE s.actor IS NOT NULL AND s.start_at >= $start AND s.start_at < $end
            GROUP BY k
            """,
            p,
        )
        self._merge(
            out,
            "actor",
            """
            SELECT actor_user_id AS k, count(*) AS callbacks FROM ev
            WHERE action = 'callback' AND actor_user_id IS NOT NULL
              AND event_at >= $start AND event_at < $end
            GROUP BY k
            """,
            p,
        )
        pending = "TRUE" if not self.settings.pending_reports_leave_denominator else "decided"
        self._merge(
            out,
            "actor",
            f"""
            SELECT k, count(*) FILTER (WHERE {pending}) AS reports,
                   count(*) FILTER (WHERE valid) AS valid_reports
            FROM (
                SELECT e.actor_user_id AS k,
                       (m.file_at IS NOT NULL OR m.close_at IS NOT NULL) AND m.void_at IS NULL
                           AS valid,
                       valid OR m.void_at IS NOT NULL OR m.refused_at IS NOT NULL AS decided
                FROM ev e JOIN marks m USING (case_id)
                WHERE e.action = 'report' AND e.actor_role = 'inspector'
                  AND e.actor_user_id IS NOT NULL AND e.event_at >= $start AND e.event_at < $end
            ) GROUP BY k
            """,
            p,
        )
        self._merge(
            out,
            "actor",
            f"""
            WITH reported AS (
                SELECT e.case_id, e.actor_user_id, e.actor_role, c.cell_code, c.channel
                FROM ev e JOIN cand c USING (case_id)
                WHERE e.action = 'report' AND e.event_at >= $start AND e.event_at < $end
            ),
            beats AS (
                SELECT DISTINCT actor_user_id AS k, cell_code FROM reported
                WHERE actor_role = 'inspector' AND actor_user_id IS NOT NULL
                  AND cell_code IS NOT NULL
            ),
            filed AS (
                SELECT r.* FROM reported r JOIN marks m USING (case_id)
                WHERE m.file_at IS NOT NULL AND m.void_at IS NULL
            )
            SELECT b.k, count(*) AS beat_filed,
                   count(*) FILTER (WHERE f.channel IN {_sql_list(PUBLIC_CHANNEL_VALUES)})
                       AS missed
            FROM beats b JOIN filed f ON f.cell_code = b.cell_code
            GROUP BY b.k
            """,
            p,
        )

    # -- the 12345 three rates --------------------------------------------------------------

    def hotline_counts(self, period: Period) -> dict[str, dict[int | None, Counts]]:
        """Counts of the three rates over hotline cases closed in ``period``, city and per dept."""
        start, end = self._window_for(period)
        self._build_marks(end, "hmarks")
        cfg = self.settings.hotline
        channels = _sql_list(c.value for c in cfg.channels)
        solved = {
            SolvedRule.CLOSED_NOT_DISSATISFIED: "coalesce(m.rating, '') <> 'dissatisfied'",
            SolvedRule.CLOSED_AND_SATISFIED: "m.rating IN ('satisfied', 'basically_satisfied')",
            SolvedRule.CLOSED: "TRUE",
        }[cfg.solved_rule]
        result: dict[str, dict[int | None, Counts]] = {}
        for dim, key in (("city", "0"), ("department", "m.close_dept")):
            names, rows = self._rows(
                f"""
                SELECT {key} AS k, count(*) AS owed,
                       count(*) FILTER (WHERE m.callbacks > 0) AS contacted,
                       count(*) FILTER (WHERE {solved}) AS solved,
                       count(m.rating) AS rated,
                       count(*) FILTER (WHERE m.rating = 'satisfied') AS satisfied,
                       count(*) FILTER (WHERE m.rating = 'basically_satisfied')
                           AS basically_satisfied
                FROM hmarks m JOIN cand c USING (case_id)
                WHERE c.channel IN {channels} AND m.close_at >= $start AND m.close_at < $end
                GROUP BY k
                """,
                {"start": start, "end": end},
            )
            result[dim] = {
                (None if r[0] is None else int(r[0])): {
                    n: float(v or 0) for n, v in zip(names[1:], r[1:], strict=True)
                }
                for r in rows
            }
        return result

    # -- lists for the report ---------------------------------------------------------------

    def report_lists(self, period: Period) -> ReportLists:
        start, end = self._ensure(period)
        p = {"start": start, "end": end}
        rc = self.settings.report
        self.con.execute(
            """
            CREATE OR REPLACE TEMP TABLE filed_now AS
            SELECT DISTINCT c.case_id, c.code, c.minor_id, c.cell_code, c.subdistrict_id
            FROM ev e JOIN cand c USING (case_id)
            WHERE e.action = 'file' AND e.event_at >= $start AND e.event_at < $end
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
            """SELECT d.case_id, c.code, d.department_id, d.dl0,
                      CASE WHEN d.completed THEN d.end_at END
               FROM due d JOIN cand c USING (case_id)
               WHERE NOT d.on_time ORDER BY d.dl0, c.code, d.case_id LIMIT $n""",
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
        start, end = self._ensure(period)
        rows = self.con.execute(
            """SELECT case_id, close_dept FROM marks
               WHERE close_at >= $start AND close_at < $end ORDER BY case_id""",
            {"start": start, "end": end},
        ).fetchall()
        return [(int(c), None if d is None else int(d)) for c, d in rows]

    def close(self) -> None:
        self.con.close()


def _naive(*instants: dt.datetime) -> tuple[dt.datetime, ...]:
    return tuple(i.astimezone(dt.UTC).replace(tzinfo=None) for i in instants)
