"""The stored step clock of a case and the counters a transition changes.

Pure with respect to storage: these functions change a ``Case`` row object in memory and touch
no session, so the service and the demo-history generator run exactly the same code.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from cityloop.cases import domain
from cityloop.cases.domain import WAIT_POINTS, CaseAction, LoopPolicy, Step, Transition
from cityloop.cases.settings import CaseSettings
from cityloop.workcal.domain import TimeLimit, Unit, WorkingCalendar, parse_time_limit


@dataclass(frozen=True)
class Context:
    """What one transaction needs besides the session: settings, policy and calendar."""

    settings: CaseSettings
    policy: LoopPolicy
    calendar: WorkingCalendar


class ClockedCase(Protocol):
    """The fields of a case these functions read and write. ``models.Case`` is one; the demo
    generator's plain in-memory case is another (the ORM's bookkeeping is too slow for a year
    of history)."""

    state: str
    department_id: int | None
    step: str | None
    step_started_at: dt.datetime | None
    step_limit: str | None
    step_pauses: list[list[str]]
    step_extensions: int
    step_deadline: dt.datetime | None
    step_warn_at: dt.datetime | None
    paused_at: dt.datetime | None
    paused_step: str | None
    step_warned: bool
    step_overdue: bool
    extension_count: int
    suspend_count: int
    rework_count: int
    return_count: int
    urge_count: int
    priority: int
    callback_count: int
    state_before_void: str | None
    filed_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    disposal_deadline: dt.datetime | None
    disposed_at: dt.datetime | None
    disposal_overdue: bool
    closed_at: dt.datetime | None


def pauses_of(case: ClockedCase) -> list[tuple[dt.datetime, dt.datetime]]:
    return [
        (dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for a, b in case.step_pauses
    ]


@lru_cache(maxsize=512)
def _parse_limit(text: str) -> TimeLimit:
    # A city has a few dozen distinct written limits; parsing each once is enough.
    return parse_time_limit(text)


def recompute_deadline(case: ClockedCase, ctx: Context) -> None:
    assert case.step_started_at is not None and case.step_limit is not None
    limit = _parse_limit(case.step_limit)
    pauses = pauses_of(case)
    case.step_deadline = ctx.calendar.deadline(
        case.step_started_at, limit, pauses=pauses, extensions=case.step_extensions
    )
    total = ctx.calendar.limit_minutes(limit, extensions=case.step_extensions)
    share = ctx.calendar.thresholds.yellow_percent / 100
    warn_minutes = max(1, math.ceil(total * share))
    case.step_warn_at = ctx.calendar.deadline(
        case.step_started_at,
        TimeLimit(amount=warn_minutes, unit=Unit.MINUTE, clock=limit.clock),
        pauses=pauses,
    )


def start_step(
    case: ClockedCase, step: Step | None, ctx: Context, now: dt.datetime, disposal_limit: str
) -> None:
    """Stop whatever ran and start ``step``'s clock at ``now`` (None: no clock runs)."""
    case.paused_at = None
    case.paused_step = None
    case.step_pauses = []
    case.step_extensions = 0
    case.step_warned = False
    case.step_overdue = False
    if step is None:
        case.step = None
        case.step_started_at = None
        case.step_limit = None
        case.step_deadline = None
        case.step_warn_at = None
        return
    case.step = step.value
    case.step_started_at = now
    case.step_limit = disposal_limit if step is Step.DISPOSE else ctx.settings.step_limits[step]
    recompute_deadline(case, ctx)


def apply_clock(
    case: ClockedCase, t: Transition, ctx: Context, now: dt.datetime, disposal_limit: str
) -> None:
    """Apply a transition's clock effect to the case's stored step clock."""
    if t.clock is domain.ClockEffect.START:
        start_step(case, WAIT_POINTS[t.to_state].step, ctx, now, disposal_limit)
    elif t.clock is domain.ClockEffect.EXTEND:
        case.step_extensions += 1
        recompute_deadline(case, ctx)
    elif t.clock is domain.ClockEffect.PAUSE:
        case.paused_at = now
        case.paused_step = case.step
        case.step = None
        case.step_deadline = None
        case.step_warn_at = None
    elif t.clock is domain.ClockEffect.RESUME:
        if case.paused_at is not None and case.paused_step is not None:
            case.step = case.paused_step
            case.step_pauses = [*case.step_pauses, [case.paused_at.isoformat(), now.isoformat()]]
            recompute_deadline(case, ctx)
        else:
            start_step(case, WAIT_POINTS[t.to_state].step, ctx, now, disposal_limit)
        case.paused_at = None
        case.paused_step = None
    elif t.clock is domain.ClockEffect.STOP:
        start_step(case, None, ctx, now, disposal_limit)
    # KEEP: nothing moves.


def apply_effects(
    case: ClockedCase, t: Transition, action: CaseAction, from_state: str, now: dt.datetime
) -> None:
    if t.increments_rework:
        case.rework_count += 1
    if domain.Effect.EXTENSION in t.effects:
        case.extension_count += 1
    if t.increments_suspension:
        case.suspend_count += 1
    if t.counts_return:
        case.return_count += 1
        case.department_id = None
    if t.records_state_before_void:
        case.state_before_void = from_state
    elif action in (CaseAction.REJECT_VOID, CaseAction.APPROVE_VOID):
        case.state_before_void = None
    if t.records_urge:
        case.urge_count += 1
        case.priority += 1
    if t.records_callback:
        case.callback_count += 1


def milestones(case: ClockedCase, action: CaseAction, now: dt.datetime) -> None:
    if action is CaseAction.FILE:
        case.filed_at = now
    elif action is CaseAction.DISPATCH:
        case.dispatched_at = now
        case.disposed_at = None
        case.disposal_overdue = False
    elif action is CaseAction.DISPOSE:
        # Judged before the clock moves on: the disposal deadline is still the running one.
        case.disposed_at = now
        case.disposal_overdue = case.step_deadline is not None and now > case.step_deadline
    elif action in (CaseAction.CLOSE, CaseAction.APPROVE_VOID):
        case.closed_at = now


def sync_disposal_deadline(case: ClockedCase) -> None:
    if case.step == Step.DISPOSE.value:
        case.disposal_deadline = case.step_deadline
