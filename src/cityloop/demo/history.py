"""Simulated case history for the demo city.

Every simulated case walks the real transition table (``cases.domain.decide``) and the real
clock code (``cases.clocks``), so the rows it writes look exactly like rows the service writes:
the same states, deadlines, counters and events. Only the choices are random: which channel,
class, cell, path and how long each actor takes. The choices have weekly and seasonal rhythms,
hotspots, and departments and inspectors of different diligence, so the evaluation has
something to rank.

Cases whose walk runs past ``now`` stop where they are: they become the live open cases of
the demo, in every state, with running clocks.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cityloop.cases import domain
from cityloop.cases.clocks import (
    Context,
    apply_clock,
    apply_effects,
    milestones,
    start_step,
    sync_disposal_deadline,
)
from cityloop.cases.domain import (
    PUBLIC_CHANNELS,
    WAIT_POINTS,
    CaseAction,
    CaseState,
    Channel,
    Satisfaction,
    Step,
)
from cityloop.cases.models import Case
from cityloop.org.domain import Role
from cityloop.workcal.domain import Clock, TimeLimit, Unit, parse_time_limit

A = CaseAction
S = CaseState

# How often each channel reports (a district platform: inspectors find most problems).
CHANNEL_WEIGHTS: dict[Channel, float] = {
    Channel.INSPECTOR: 0.46,
    Channel.HOTLINE_12345: 0.24,
    Channel.HOTLINE_12319: 0.07,
    Channel.PUBLIC_WEB: 0.08,
    Channel.OPEN311: 0.03,
    Channel.SENSOR: 0.05,
    Channel.HIGHER_AUTHORITY: 0.03,
    Channel.SELF_FOUND: 0.04,
}

# Who submits on each channel in the simulation (None: a citizen or a feed).
_SUBMITTER: dict[Channel, Role | None] = {
    Channel.INSPECTOR: Role.INSPECTOR,
    Channel.HOTLINE_12345: Role.INTAKE_OPERATOR,
    Channel.HOTLINE_12319: Role.INTAKE_OPERATOR,
    Channel.PUBLIC_WEB: None,
    Channel.OPEN311: None,
    Channel.SENSOR: None,
    Channel.HIGHER_AUTHORITY: Role.INTAKE_OPERATOR,
    Channel.SELF_FOUND: Role.DISPATCHER,
}

_PHRASES = (
    "现场发现{name}问题，请尽快处置",
    "{name}，影响市民通行",
    "市民反映{name}，已持续多日",
    "{name}情况较严重，存在安全隐患",
    "巡查发现{name}，需要协调处理",
    "{name}，周边居民意见较大",
)


@dataclass(frozen=True)
class DemoClass:
    """A minor class with one of its filing-standard rows, as the simulation needs it."""

    minor_id: int
    family: str
    code: str
    name: str
    standard_id: int
    limit_text: str
    weight: float
    department_ids: tuple[int, ...]  # handling departments this class may go to
    territorial: bool  # events of street order go to the subdistrict first


@dataclass(frozen=True)
class DemoCell:
    code: str
    lon: float
    lat: float
    community_id: int | None
    subdistrict_id: int | None


@dataclass
class DemoStaff:
    """User ids by role, and per-user diligence (a multiplier on how long they take)."""

    by_role: dict[Role, list[int]]
    names: dict[int, str]
    pace: dict[int, float] = field(default_factory=dict)
    department_operators: dict[int, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class SimCase:
    """A case row in memory: the same fields as ``models.Case``, without the ORM's bookkeeping,
    which would cost more than the whole simulation."""

    id: int
    code: str
    channel: str
    description: str
    reported_at: dt.datetime
    version: int = 1
    state: str = ""
    idempotency_key: str | None = None
    external_id: str | None = None
    family: str | None = None
    minor_id: int | None = None
    standard_id: int | None = None
    priority: int = 0
    lon: float | None = None
    lat: float | None = None
    coord_system: str | None = None
    address: str | None = None
    cell_code: str | None = None
    community_id: int | None = None
    subdistrict_id: int | None = None
    component_code: str | None = None
    outside_jurisdiction: bool = False
    reporter_user_id: int | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    reporter_email: str | None = None
    inspector_id: int | None = None
    suggested_department_id: int | None = None
    department_id: int | None = None
    step: str | None = None
    step_started_at: dt.datetime | None = None
    step_limit: str | None = None
    step_pauses: list[list[str]] = field(default_factory=list)
    step_extensions: int = 0
    step_deadline: dt.datetime | None = None
    step_warn_at: dt.datetime | None = None
    paused_at: dt.datetime | None = None
    paused_step: str | None = None
    step_warned: bool = False
    step_overdue: bool = False
    extension_count: int = 0
    suspend_count: int = 0
    rework_count: int = 0
    return_count: int = 0
    urge_count: int = 0
    callback_count: int = 0
    state_before_void: str | None = None
    satisfaction: str | None = None
    filed_at: dt.datetime | None = None
    dispatched_at: dt.datetime | None = None
    disposal_deadline: dt.datetime | None = None
    disposed_at: dt.datetime | None = None
    disposal_overdue: bool = False
    closed_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


COLUMNS: tuple[str, ...] = tuple(c.key for c in Case.__table__.columns)


@dataclass
class Simulated:
    case: dict[str, Any]
    events: list[dict[str, Any]]


class HistorySimulator:
    def __init__(
        self,
        *,
        ctx: Context,
        classes: Sequence[DemoClass],
        cells: Sequence[DemoCell],
        cell_weights: Sequence[float],
        staff: DemoStaff,
        department_pace: dict[int, float],
        seed: int = 20261122,
    ) -> None:
        self.ctx = ctx
        self.rng = random.Random(seed)
        self.classes = list(classes)
        self.class_cum = _cumulative([c.weight for c in classes])
        self.cells = list(cells)
        self.cell_cum = _cumulative(cell_weights)
        self.staff = staff
        self.department_pace = department_pace
        self.channels = list(CHANNEL_WEIGHTS)
        self.channel_cum = _cumulative(list(CHANNEL_WEIGHTS.values()))
        self._limits: dict[str, TimeLimit] = {}

    # --- random choices -------------------------------------------------------------------

    def _pick(self, items: Sequence[Any], cum: Sequence[float]) -> Any:
        from bisect import bisect_right

        return items[min(bisect_right(cum, self.rng.random() * cum[-1]), len(items) - 1)]

    def _user(self, role: Role) -> int:
        return self.rng.choice(self.staff.by_role[role])

    def _limit(self, text: str) -> TimeLimit:
        limit = self._limits.get(text)
        if limit is None:
            limit = self._limits[text] = parse_time_limit(text)
        return limit

    def _ratio(self, median: float, sigma: float = 0.55) -> float:
        """Share of the step's limit an actor takes: log-normal, so most are well on time and a
        tail runs over (the overdue cases)."""
        return math.exp(math.log(median) + sigma * self.rng.gauss(0.0, 1.0))

    def _after(self, t: dt.datetime, case: SimCase, ratio: float) -> dt.datetime:
        """The instant an actor finishes when taking ``ratio`` of the running step's limit."""
        if case.step_limit is None:
            minutes = max(5, int(self.rng.expovariate(1 / 90)))
            return self.ctx.calendar.deadline(t, TimeLimit(minutes, Unit.MINUTE, Clock.WORKING))
        limit = self._limit(case.step_limit)
        total = self.ctx.calendar.limit_minutes(limit, extensions=case.step_extensions)
        used = (
            self.ctx.calendar.elapsed(case.step_started_at or t, t, clock=limit.clock)
            if case.step_started_at and case.step_started_at < t
            else 0.0
        )
        minutes = max(1, int(total * ratio - used))
        return self.ctx.calendar.deadline(t, TimeLimit(minutes, Unit.MINUTE, limit.clock))

    # --- one case ---------------------------------------------------------------------------

    def simulate(
        self, case_id: int, code: str, reported_at: dt.datetime, now: dt.datetime
    ) -> Simulated:
        rng = self.rng
        channel: Channel = self._pick(self.channels, self.channel_cum)
        klass: DemoClass = self._pick(self.classes, self.class_cum)
        cell: DemoCell = self._pick(self.cells, self.cell_cum)
        submitter_role = _SUBMITTER[channel]
        reporter_id = self._user(submitter_role) if submitter_role else None
        case = _new_case(
            id=case_id,
            code=code,
            channel=channel.value,
            family=klass.family,
            minor_id=klass.minor_id,
            standard_id=klass.standard_id,
            description=rng.choice(_PHRASES).format(name=klass.name) + "(演示数据)",
            lon=cell.lon + rng.uniform(-0.0004, 0.0004),
            lat=cell.lat + rng.uniform(-0.0003, 0.0003),
            coord_system="wgs84",
            address=f"海淀区演示路{rng.randint(1, 300)}号",
            cell_code=cell.code,
            community_id=cell.community_id,
            subdistrict_id=cell.subdistrict_id,
            reporter_user_id=reporter_id if channel is Channel.INSPECTOR else None,
            reporter_name=None if submitter_role else f"演示市民{rng.randint(1, 9999):04d}",
            reporter_phone=None if submitter_role else f"1380000{rng.randint(0, 9999):04d}",
            reported_at=reported_at,
        )
        if channel in PUBLIC_CHANNELS or channel is Channel.SENSOR:
            case.suggested_department_id = self._route(klass, cell)
        transition = domain.decide_report(channel, submitter_role, self.ctx.policy)
        case.state = transition.to_state.value
        start_step(
            case, WAIT_POINTS[transition.to_state].step, self.ctx, reported_at, klass.limit_text
        )
        sync_disposal_deadline(case)
        events = [
            _event(case, A.REPORT, None, reported_at, reporter_id, submitter_role, self.staff, None)
        ]
        t = reported_at
        for _ in range(40):  # a walk ends long before; the bound guards against a loop
            move = self._next(case, klass, cell)
            if move is None:
                break
            action, role, ratio, fields = move
            actor = fields.pop("actor", None) or self._actor_for(role, case)
            if ratio is None:
                t_next = t + dt.timedelta(minutes=rng.randint(20, 240))
            else:
                pace = self.staff.pace.get(actor, 1.0)
                if role is Role.DEPARTMENT_OPERATOR and case.department_id is not None:
                    pace *= self.department_pace.get(case.department_id, 1.0)
                t_next = self._after(t, case, ratio * pace)
            if action is A.RESUME:
                t_next = t + dt.timedelta(days=rng.randint(3, 40))
            if (
                action is A.DISPOSE
                and case.step_deadline is not None
                and t_next > case.step_deadline + dt.timedelta(hours=2)
                and rng.random() < 0.6
            ):
                # Overdue disposal: a leader urges (督办) two hours after the deadline.
                urge_at = case.step_deadline + dt.timedelta(hours=2)
                if urge_at <= now:
                    leader = self._user(Role.LEADER)
                    events.append(
                        self._apply(
                            case,
                            A.URGE,
                            Role.LEADER,
                            leader,
                            urge_at,
                            klass,
                            {"reason": "超期督办(演示)"},
                        )
                    )
            if t_next > now:
                break  # the case is still open at "now": leave it where it is
            t = t_next
            events.append(self._apply(case, action, role, actor, t, klass, fields))
        row = {k: getattr(case, k) for k in COLUMNS}
        row["version"] = len(events)
        return Simulated(row, events)

    def _actor_for(self, role: Role, case: SimCase) -> int:
        if role is Role.DEPARTMENT_OPERATOR and case.department_id is not None:
            ops = self.staff.department_operators.get(case.department_id)
            if ops:
                return self.rng.choice(ops)
        if role is Role.INSPECTOR and case.inspector_id is not None:
            return case.inspector_id
        return self._user(role)

    def _route(self, klass: DemoClass, cell: DemoCell) -> int:
        """部件先属主后属地，事件先属地后属主: street-order events go to the subdistrict."""
        if klass.territorial and cell.subdistrict_id is not None:
            return cell.subdistrict_id
        return self.rng.choice(klass.department_ids)

    def _next(
        self, case: SimCase, klass: DemoClass, cell: DemoCell
    ) -> tuple[CaseAction, Role, float | None, dict[str, Any]] | None:
        """The next move of the walk, or None when the case has nothing more to do."""
        r = self.rng.random()
        state = CaseState(case.state)
        channel = Channel(case.channel)
        if state is S.REPORTED:
            if r < 0.015:
                return A.REQUEST_VOID, Role.INTAKE_OPERATOR, 0.3, {"reason": "重复上报(演示)"}
            return A.SEND_VERIFY, Role.INTAKE_OPERATOR, self._ratio(0.35), {}
        if state is S.VERIFYING:
            if r < 0.07:
                return (
                    A.VERIFY_NOT_FOUND,
                    Role.INSPECTOR,
                    self._ratio(0.4),
                    {"reason": "现场未发现(演示)"},
                )
            return A.VERIFY_FOUND, Role.INSPECTOR, self._ratio(0.4), {}
        if state is S.NOT_FOUND:
            if r < 0.2:
                return A.SEND_VERIFY, Role.INTAKE_OPERATOR, self._ratio(0.3), {}
            return (
                A.NOT_ACCEPT,
                Role.SHIFT_SUPERVISOR,
                self._ratio(0.3),
                {"reason": "核实不属实(演示)"},
            )
        if state is S.VERIFIED:
            if channel is Channel.INSPECTOR and r < 0.07:
                return (
                    A.SELF_HANDLE,
                    Role.INSPECTOR,
                    0.2,
                    {
                        "reason": "已当场处理(演示)",
                        "actor": case.reporter_user_id,
                    },
                )
            if r < 0.1:
                return (
                    A.DECLINE,
                    Role.SHIFT_SUPERVISOR,
                    self._ratio(0.3),
                    {"reason": "不符合立案条件(演示)"},
                )
            if r < 0.115:
                return (
                    A.NOT_ACCEPT,
                    Role.SHIFT_SUPERVISOR,
                    self._ratio(0.3),
                    {"reason": "不属于受理范围(演示)"},
                )
            if r < 0.13:
                return A.REQUEST_VOID, Role.INTAKE_OPERATOR, 0.3, {"reason": "重复案件(演示)"}
            return A.FILE, Role.SHIFT_SUPERVISOR, self._ratio(0.35), {}
        if state is S.FILED:
            dept = (
                self._route(klass, cell)
                if case.return_count == 0
                else self.rng.choice(klass.department_ids)
            )
            if (
                case.return_count
                and dept == case.suggested_department_id
                and len(klass.department_ids) > 1
            ):
                dept = self.rng.choice([d for d in klass.department_ids if d != dept])
            return A.DISPATCH, Role.DISPATCHER, self._ratio(0.35), {"department_id": dept}
        if state is S.DISPATCHED:
            fresh = case.extension_count == 0 and case.suspend_count == 0 and case.return_count == 0
            if fresh and r < 0.04:
                return (
                    A.REQUEST_RETURN,
                    Role.DEPARTMENT_OPERATOR,
                    self._ratio(0.1),
                    {"reason": "不属于本单位职责(演示)"},
                )
            if (
                case.extension_count < self.ctx.policy.max_extensions
                and r < 0.10
                and case.rework_count == 0
            ):
                return (
                    A.REQUEST_EXTENSION,
                    Role.DEPARTMENT_OPERATOR,
                    self._ratio(0.5),
                    {"reason": "需采购材料(演示)"},
                )
            if case.suspend_count < self.ctx.policy.max_suspensions and 0.10 <= r < 0.115:
                return (
                    A.REQUEST_SUSPEND,
                    Role.DEPARTMENT_OPERATOR,
                    self._ratio(0.4),
                    {"reason": "涉及管线迁改(演示)"},
                )
            return (
                A.DISPOSE,
                Role.DEPARTMENT_OPERATOR,
                self._ratio(0.45),
                {"reason": "已处置完毕(演示)"},
            )
        if state is S.RETURN_REQUESTED:
            if r < 0.85:
                return A.APPROVE_RETURN, Role.DISPATCHER, None, {}
            return A.REJECT_RETURN, Role.DISPATCHER, None, {"reason": "属于本单位职责(演示)"}
        if state is S.EXTENSION_REQUESTED:
            if r < 0.85:
                return A.APPROVE_EXTENSION, Role.DISPATCHER, None, {}
            return A.REJECT_EXTENSION, Role.DISPATCHER, None, {"reason": "理由不充分(演示)"}
        if state is S.SUSPEND_REQUESTED:
            if r < 0.8:
                return A.APPROVE_SUSPEND, Role.DISPATCHER, None, {}
            return A.REJECT_SUSPEND, Role.DISPATCHER, None, {"reason": "可以按期处置(演示)"}
        if state is S.SUSPENDED:
            return A.RESUME, Role.DISPATCHER, None, {}
        if state is S.DISPOSED:
            return A.SEND_CHECK, Role.INTAKE_OPERATOR, self._ratio(0.35), {}
        if state is S.CHECKING:
            if r < 0.07:
                return (
                    A.CHECK_FAIL,
                    Role.INSPECTOR,
                    self._ratio(0.4),
                    {"reason": "处置不到位(演示)"},
                )
            return A.CHECK_PASS, Role.INSPECTOR, self._ratio(0.4), {}
        if state is S.CHECKED:
            return A.CLOSE, Role.SHIFT_SUPERVISOR, self._ratio(0.3), {}
        if state is S.SELF_HANDLED:
            if r < 0.05:
                return A.FILE, Role.SHIFT_SUPERVISOR, self._ratio(0.3), {}
            return A.CLOSE, Role.SHIFT_SUPERVISOR, self._ratio(0.3), {}
        if state is S.VOID_REQUESTED:
            if r < 0.85:
                return A.APPROVE_VOID, Role.SHIFT_SUPERVISOR, None, {"reason": "同意作废(演示)"}
            return A.REJECT_VOID, Role.SHIFT_SUPERVISOR, None, {"reason": "不属于重复(演示)"}
        if state is S.CLOSED and domain.callback_pending(state, _facts(case), self.ctx.policy):
            late = case.disposal_overdue or case.rework_count > 0
            weights = (0.45, 0.25, 0.30) if late else (0.74, 0.18, 0.08)
            sat = self.rng.choices(list(Satisfaction), weights=weights)[0]
            return A.CALLBACK, Role.INTAKE_OPERATOR, None, {"satisfaction": sat}
        return None

    def _apply(
        self,
        case: SimCase,
        action: CaseAction,
        role: Role,
        actor: int,
        t: dt.datetime,
        klass: DemoClass,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        from_state = case.state
        transition = domain.decide(case.state, action, role, _facts(case), self.ctx.policy)
        detail: dict[str, Any] = {}
        if action in (A.SEND_VERIFY, A.SEND_CHECK):
            if case.inspector_id is None:
                case.inspector_id = (
                    case.reporter_user_id
                    if case.channel == Channel.INSPECTOR.value and action is A.SEND_CHECK
                    else self._user(Role.INSPECTOR)
                )
        elif action is A.DISPATCH:
            case.department_id = fields["department_id"]
        elif action is A.CALLBACK:
            case.satisfaction = fields["satisfaction"].value
            detail["satisfaction"] = case.satisfaction
        elif action is A.FILE:
            detail["standard_id"] = klass.standard_id
        if action is A.REJECT_VOID:
            case.state = case.state_before_void or transition.to_state.value
        else:
            case.state = transition.to_state.value
        apply_effects(case, transition, action, from_state, t)
        milestones(case, action, t)
        apply_clock(case, transition, self.ctx, t, klass.limit_text)
        sync_disposal_deadline(case)
        case.updated_at = t
        return _event(
            case, action, from_state, t, actor, role, self.staff, fields.get("reason"), detail
        )

    def schedule(
        self,
        *,
        first_id: int,
        start: dt.datetime,
        end: dt.datetime,
        count: int,
        serials: dict[dt.date, int],
    ) -> list[tuple[int, str, dt.datetime]]:
        """(id, code, reported_at) for ``count`` cases between ``start`` and ``end``, in time
        order; ``serials`` (last serial per local day) is advanced as codes are handed out."""
        out = []
        for offset, reported_at in enumerate(self._report_times(start, end, count)):
            day = self.ctx.calendar.to_local(reported_at).date()
            serials[day] = serials.get(day, 0) + 1
            code = f"{self.ctx.settings.code_prefix}{day:%Y%m%d}{serials[day]:05d}"
            out.append((first_id + offset, code, reported_at))
        return out

    def run(
        self, chunk: Sequence[tuple[int, str, dt.datetime]], *, now: dt.datetime, seed: int
    ) -> list[Simulated]:
        """Simulate one chunk with its own seed, so chunks give the same cases in any process
        and any order."""
        self.rng.seed(seed)
        return [self.simulate(case_id, code, at, now) for case_id, code, at in chunk]

    def _report_times(self, start: dt.datetime, end: dt.datetime, count: int) -> list[dt.datetime]:
        """Weekly rhythm (quieter weekends), a summer peak, and a daytime profile."""
        days = max(1, (end - start).days)
        weights = []
        for i in range(days):
            day = (start + dt.timedelta(days=i)).date()
            weekday = (1.12, 1.08, 1.05, 1.05, 1.0, 0.72, 0.62)[day.weekday()]
            season = 1 + 0.28 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 110) / 365)
            weights.append(weekday * season)
        cum = _cumulative(weights)
        day_indices = list(range(days))
        hour_indices = list(range(24))
        hours = [
            0.2,
            0.1,
            0.1,
            0.1,
            0.2,
            0.5,
            1.2,
            2.6,
            4.0,
            4.4,
            4.2,
            3.6,
            2.8,
            3.0,
            3.8,
            4.0,
            3.7,
            3.2,
            2.5,
            2.0,
            1.6,
            1.2,
            0.8,
            0.4,
        ]
        hour_cum = _cumulative(hours)
        out = []
        local0 = self.ctx.calendar.to_local(start).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        for _ in range(count):
            day_index = self._pick(day_indices, cum)
            hour = self._pick(hour_indices, hour_cum)
            local = local0 + dt.timedelta(
                days=day_index, hours=hour, minutes=self.rng.random() * 60
            )
            out.append(local.astimezone(dt.UTC))
        out.sort()
        return [t for t in out if t < end]


def _facts(case: SimCase) -> domain.CaseFacts:
    return domain.CaseFacts(
        channel=Channel(case.channel),
        extension_count=case.extension_count,
        suspend_count=case.suspend_count,
        rework_count=case.rework_count,
        callback_count=case.callback_count,
        state_before_void=CaseState(case.state_before_void) if case.state_before_void else None,
    )


def _event(
    case: SimCase,
    action: CaseAction,
    from_state: str | None,
    at: dt.datetime,
    actor: int | None,
    role: Role | None,
    staff: DemoStaff,
    reason: str | None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "at": at,
        "actor_user_id": actor,
        "actor_name": staff.names.get(actor, "演示市民") if actor else "演示市民",
        "actor_role": role.value if role else None,
        "action": action.value,
        "from_state": from_state,
        "to_state": case.state,
        "reason": reason,
        "department_id": case.department_id,
        "step": case.step,
        "deadline": case.step_deadline,
        "detail": detail or {},
    }


def _new_case(**values: Any) -> SimCase:
    case = SimCase(**values)
    case.updated_at = case.reported_at
    return case


def _cumulative(weights: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


__all__ = [
    "CHANNEL_WEIGHTS",
    "DemoCell",
    "DemoClass",
    "DemoStaff",
    "HistorySimulator",
    "Simulated",
    "Step",
]
