"""The engine over the derived relations gives exactly the numbers of the per-request engine.

``reference_engine`` is the engine as it was before ``steps`` and ``callbacks`` were derived
once per history: it rebuilt segments and per-case marks from the raw events for every period.
Here both run on random histories walked through the case loop's own table (every action of
every state, extensions, suspensions, returns, voids, rework, repeated verification, callbacks,
events at the same instant, NULL deadlines) and are compared, count for count, for periods
whose ends fall in the middle of running steps, under several settings.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pytest
from tests.unit.evaluation import reference_engine as reference

from cityloop.cases.domain import (
    TRANSITIONS,
    WAIT_POINTS,
    CaseAction,
    CaseState,
    Channel,
    ClockEffect,
)
from cityloop.evaluation import domain
from cityloop.evaluation.config import EvaluationSettings
from cityloop.evaluation.engine import CASE_COLUMNS, EVENT_COLUMNS, Engine, derive_parquet
from cityloop.org.domain import Role

SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 8, 25, 0, 0)  # naive UTC
LIMIT = {"send_verify": 30, "verify": 120, "file": 60, "dispatch": 30, "dispose": 2880,
         "send_check": 30, "check": 120, "close": 60}  # fmt: skip
USERS = {
    Role.INSPECTOR: [11, 12, 13],
    Role.INTAKE_OPERATOR: [21, 22],
    Role.SHIFT_SUPERVISOR: [31, 32],
    Role.DISPATCHER: [41, 42],
    Role.DEPARTMENT_OPERATOR: [51, 52, 53],
    Role.LEADER: [61],
    Role.ADMIN: [71],
}
DEPARTMENTS = [101, 102, 103]
CHANNELS = [Channel.INSPECTOR, Channel.PUBLIC_WEB, Channel.HOTLINE_12345, Channel.OPEN311]
RATINGS = ["satisfied", "basically_satisfied", "dissatisfied", None, "unknown"]


def _history(seed: int, n_cases: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Random cases and their events, walked through ``TRANSITIONS`` from ``report``."""
    rng = random.Random(seed)
    cases: dict[str, list[Any]] = {name: [] for name, _ in CASE_COLUMNS}
    events: dict[str, list[Any]] = {name: [] for name, _ in EVENT_COLUMNS}
    event_id = 0
    reported = sorted(
        T0 + dt.timedelta(minutes=rng.randrange(0, 80 * 24 * 60)) for _ in range(n_cases)
    )
    for case_id, at in enumerate(reported, start=1):
        channel = rng.choice(CHANNELS)
        sub = rng.choice([201, 202, None])
        com = None if sub is None else sub * 10 + rng.choice([1, 2])
        cell = rng.choice(["C1", "C2", "C3", None])
        inspector = rng.choice(USERS[Role.INSPECTOR])
        dept: int | None = None
        state = CaseState.VERIFIED if channel == Channel.INSPECTOR else CaseState.REPORTED
        remembered = state
        step = WAIT_POINTS[state].step
        deadline: dt.datetime | None = (
            at + dt.timedelta(minutes=LIMIT[step.value]) if step else None
        )
        remaining: dt.timedelta | None = None
        if channel == Channel.INSPECTOR:
            role, actor = Role.INSPECTOR, inspector
        elif channel == Channel.HOTLINE_12345:
            role, actor = Role.INTAKE_OPERATOR, rng.choice(USERS[Role.INTAKE_OPERATOR])
        else:
            role, actor = None, None
        rows = [(at, actor, role, CaseAction.REPORT, None, step, deadline, None)]
        callbacks = 0
        for _ in range(rng.randrange(0, 16)):
            options = [(a, r) for (s, a), r in TRANSITIONS.items() if s == state]
            if state == CaseState.CLOSED:
                options = [(a, r) for a, r in options if a == CaseAction.CALLBACK and callbacks < 2]
            if not options:
                break
            action, rule = rng.choice(options)
            gap = rng.choice([0, 1, 5, 30, 90, 300, 2000, 4000, 9000])
            at = at + dt.timedelta(minutes=gap, seconds=rng.choice([0, 0, 17]))
            role = rng.choice(sorted(rule.roles))
            actor = rng.choice(USERS.get(role, [None]) + [None] * (rng.random() < 0.05))
            to_state = rule.to_state or remembered
            if rule.to_state is not None and action == CaseAction.REQUEST_VOID:
                remembered = state
            if action == CaseAction.DISPATCH:
                dept = rng.choice(DEPARTMENTS)
            if action == CaseAction.APPROVE_RETURN:
                dept = None
            step = WAIT_POINTS[to_state].step
            if rule.clock == ClockEffect.START:
                deadline = at + dt.timedelta(minutes=LIMIT[step.value]) if step else None
            elif rule.clock == ClockEffect.STOP:
                deadline = None
            elif rule.clock == ClockEffect.EXTEND and deadline is not None:
                deadline = deadline + dt.timedelta(minutes=LIMIT["dispose"])
            elif rule.clock == ClockEffect.PAUSE:
                remaining = None if deadline is None else deadline - at
                deadline = None
            elif rule.clock == ClockEffect.RESUME:
                deadline = at + (remaining or dt.timedelta(minutes=60))
            rating = rng.choice(RATINGS) if action == CaseAction.CALLBACK else None
            callbacks += action == CaseAction.CALLBACK
            rows.append((at, actor, role, action, dept, step, deadline, rating))
            state = to_state
        for at_, actor_, role_, action_, dept_, step_, deadline_, rating_ in rows:
            event_id += 1
            for name, value in (
                ("id", event_id),
                ("case_id", case_id),
                ("event_at", at_),
                ("actor_user_id", actor_),
                ("actor_role", None if role_ is None else role_.value),
                ("action", action_.value),
                ("department_id", dept_),
                ("step", None if step_ is None else step_.value),
                ("deadline", deadline_),
                ("satisfaction", rating_),
            ):
                events[name].append(value)
        for name, value in (
            ("id", case_id),
            ("code", f"K{case_id:05d}"),
            ("channel", channel.value),
            ("state", state.value),
            ("minor_id", rng.choice([1, 2, 3])),
            ("department_id", dept),
            ("subdistrict_id", sub),
            ("community_id", com),
            ("cell_code", cell),
            ("reporter_user_id", None),
            ("inspector_id", inspector),
            ("reported_at", reported[case_id - 1]),
            ("updated_at", rows[-1][0]),
        ):
            cases[name].append(value)
    return _arrays(cases, CASE_COLUMNS), _arrays(events, EVENT_COLUMNS)


def _arrays(columns: dict[str, list[Any]], layout: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in layout:
        values = columns[name]
        if kind == "BIGINT":
            mask = np.array([v is None for v in values], dtype=bool)
            data = np.array([0 if v is None else v for v in values], dtype=np.int64)
            out[name] = np.ma.masked_array(data, mask=mask)
        elif kind == "TIMESTAMP":
            out[name] = np.array(values, dtype="datetime64[us]")
        else:
            out[name] = np.array(values, dtype=object)
    return out


def _with_links(events: dict[str, Any]) -> dict[str, Any]:
    linked = dict(events)
    linked.update(
        reference.derive_links(
            np.asarray(events["case_id"]),
            np.asarray(events["id"]),
            events["action"],
            events["step"],
            events["deadline"],
        )
    )
    return linked


def _periods() -> list[domain.Period]:
    periods = [domain.month_period(m, "Asia/Shanghai") for m in ("2026-09", "2026-10", "2026-11")]
    periods.append(domain.month_period("2026-10", "Asia/Shanghai", 19))
    # Weeks ending at odd hours, inside running steps, pending requests and suspensions.
    start = dt.datetime(2026, 8, 28, 10, 7, tzinfo=SH)
    for week in range(12):
        lo = start + dt.timedelta(days=7 * week, hours=5 * week)
        periods.append(domain.Period(f"w{week}", lo, lo + dt.timedelta(days=7, minutes=13)))
    return periods


def _without_idle_users(by: dict[str, Any]) -> dict[str, Any]:
    """Counts with the users' zero counts left out (and users left with none).

    The reference counted every segment per user, so a user who only acted outside the people
    counts (a department operator's disposals) had an entry of zeros; the engine's people pass
    reads only the kinds it counts and gives every user it lists the whole set, zeros
    included. The service reads a missing count as 0, so both give the same rates. Every
    non-zero count is compared as it is."""
    out = dict(by)
    if "actor" in out:
        nonzero = {k: {n: x for n, x in v.items() if x} for k, v in out["actor"].items()}
        out["actor"] = {k: v for k, v in nonzero.items() if v}
    return out


SETTINGS = [
    {},
    {"on_time": {"grace_minutes": 90, "extended_counts_as_on_time": False}},
    {"suspended_leave_denominator": False, "pending_reports_leave_denominator": False},
    {
        "hotline": {
            "channels": ["hotline_12345", "public_web"],
            "solved_rule": "closed_and_satisfied",
        }
    },
    # The ``people`` days start at Berlin's midnights: every period here has partial days.
    {"timezone": "Europe/Berlin"},
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("overrides", SETTINGS)
def test_derived_engine_matches_the_per_request_engine(
    seed: int, overrides: dict[str, Any]
) -> None:
    cases, events = _history(seed, 400)
    settings = EvaluationSettings.model_validate(overrides)
    new = Engine.from_arrays(cases, events, settings)
    old = reference.Engine.from_arrays(cases, _with_links(events), settings)
    seen_due = 0
    for period in _periods():
        old.prepare(*period.utc_naive())
        expected = old.counts(period)
        got = new.counts(period)
        assert _without_idle_users(got.by) == _without_idle_users(expected.by), period.label
        assert new.hotline_counts(period) == old.hotline_counts(period), period.label
        # Two modules' dataclasses: compare their fields.
        assert asdict(new.report_lists(period)) == asdict(old.report_lists(period)), period.label
        assert new.closed_cases(period) == old.closed_cases(period), period.label
        assert new.counts(period, people=False).by == old.counts(period, people=False).by
        seen_due += int(expected.by.get("city", {}).get(0, {}).get("due_disposal", 0))
    # The histories are not trivial: tasks fall due, people act.
    assert seen_due > 20


def test_the_histories_exercise_the_awkward_cases() -> None:
    """Extensions, suspensions, returns, voids, rework and NULL deadlines all occur."""
    _, events = _history(1, 400)
    actions = set(events["action"].tolist())
    awkward = ("approve_extension", "approve_suspend", "resume", "approve_return",
               "approve_void", "check_fail", "callback", "self_handle", "not_accept")  # fmt: skip
    for action in awkward:
        assert action in actions, action
    assert np.isnat(events["deadline"]).any()


def test_periods_read_whole_days_from_the_rollup_and_partial_days_from_the_segments() -> None:
    """A month of the city's timezone is whole ``people`` days; an odd week has partial days."""
    cases, events = _history(1, 200)
    engine = Engine.from_arrays(cases, events, EvaluationSettings())
    month = domain.month_period("2026-10", "Asia/Shanghai")
    start, end = month.utc_naive()
    assert engine._whole_days(start, end) == (start, end)
    week = domain.Period("w", dt.datetime(2026, 9, 2, 10, 7, tzinfo=SH),
                         dt.datetime(2026, 9, 9, 10, 20, tzinfo=SH))  # fmt: skip
    lo, hi = week.utc_naive()
    a, b = engine._whole_days(lo, hi)
    assert (a, b) == (dt.datetime(2026, 9, 2, 16), dt.datetime(2026, 9, 8, 16))
    assert lo < a and b < hi
    # Less than a day: no whole day.
    assert engine._whole_days(lo, lo + dt.timedelta(hours=20)) == (lo, lo)
    berlin = Engine.from_arrays(cases, events, EvaluationSettings(timezone="Europe/Berlin"))
    a, b = berlin._whole_days(start, end)
    assert (a, b) == (dt.datetime(2026, 9, 30, 23), dt.datetime(2026, 10, 30, 23))


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "Europe/Berlin"])
def test_a_columnar_export_gives_the_same_counts(tmp_path: Path, timezone: str) -> None:
    """The export's files (one per kind, rework tasks apart, the people days) count the same
    as the in-memory derivation, for every period."""
    cases, events = _history(3, 400)
    settings = EvaluationSettings(timezone=timezone)
    con = duckdb.connect()
    for name, data, columns in (("cases", cases, CASE_COLUMNS), ("events", events, EVENT_COLUMNS)):
        con.register("raw", data)
        cols = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in columns)
        con.execute(
            f"COPY (SELECT {cols} FROM raw) TO '{tmp_path / name}.parquet' (FORMAT parquet)"
        )
        con.unregister("raw")
    con.close()
    derive_parquet(tmp_path, timezone=timezone)
    assert any(tmp_path.glob("steps/task=true/kind=*/shared.parquet"))
    assert (tmp_path / "people.parquet").exists()
    exported = Engine.from_parquet(tmp_path, settings)
    memory = Engine.from_arrays(cases, events, settings)
    for period in _periods():
        assert exported.counts(period).by == memory.counts(period).by, period.label
        assert exported.hotline_counts(period) == memory.hotline_counts(period), period.label
        assert asdict(exported.report_lists(period)) == asdict(memory.report_lists(period))
