"""The case state machine: one pure table of (state, action) -> who may do it and what follows.

No I/O, no clock, no database. The service layer loads the case row, builds ``CaseFacts``, asks
``decide`` and then applies the returned ``Transition`` (new state, clock effect, counters, event
row). Keeping the rules here, as data, means one place answers "may this role do this now?" for
the API, the CLI, the web UI (``allowed_actions``) and the inbox (``WAIT_POINTS``), and the table
can be printed for the docs (``transition_table_markdown``) and tested exhaustively.

The loop follows DOMAIN.md section 2 and eGova's order: 核实 (verify) before 立案 (file), 核查
(check) before 结案 (close). Every non-terminal state is a wait point: exactly one role owns the
next move, and (except while a clock is paused) one step clock runs.

Anything not in ``TRANSITIONS`` is refused: unlike a ``match`` with a forgotten branch, a missing
row can never be silently accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from cityloop.errors import InvalidInput, PermissionDenied, RuleViolation
from cityloop.org.domain import Role

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


class Channel(StrEnum):
    """Where a report came from (信息来源). Decides whether verification is needed and whether
    the citizen gets a callback."""

    INSPECTOR = "inspector"  # 监督员上报
    HOTLINE_12345 = "hotline_12345"  # 12345 政务服务便民热线
    HOTLINE_12319 = "hotline_12319"  # 12319 城建服务热线
    PUBLIC_WEB = "public_web"  # 公众上报 (web / app / mini-program)
    OPEN311 = "open311"  # Open311 GeoReport API
    SENSOR = "sensor"  # 视频/物联感知 (video analytics or an IoT sensor)
    HIGHER_AUTHORITY = "higher_authority"  # 上级交办
    SELF_FOUND = "self_found"  # 自行发现 (staff of the centre or a department)


PUBLIC_CHANNELS: frozenset[Channel] = frozenset(
    {Channel.HOTLINE_12345, Channel.HOTLINE_12319, Channel.PUBLIC_WEB, Channel.OPEN311}
)
"""Channels through which a member of the public reports: they need verification by default
(the reporter is not trained and may be mistaken) and they get a callback (回访)."""


class CaseState(StrEnum):
    """Where a case stands. Each open state is a wait point; see ``WAIT_POINTS`` for its owner."""

    REPORTED = "reported"  # 待受理: in intake; the intake operator sends it for verification
    VERIFYING = "verifying"  # 待核实: an inspector is to confirm the problem on site
    NOT_FOUND = "not_found"  # 核实不属实: the shift supervisor decides (not accept or re-verify)
    VERIFIED = "verified"  # 待立案: the shift supervisor files, declines or does not accept
    FILED = "filed"  # 待派遣: the dispatcher picks the handling department
    DISPATCHED = "dispatched"  # 处置中: the department disposes (the disposal clock runs)
    RETURN_REQUESTED = "return_requested"  # 回退申请: department says "not ours"; dispatcher
    EXTENSION_REQUESTED = "extension_requested"  # 延期申请: dispatcher approves or rejects
    SUSPEND_REQUESTED = "suspend_requested"  # 挂账申请 (缓办申请): dispatcher approves or rejects
    SUSPENDED = "suspended"  # 挂账: parked in the problem pool, clock paused, until resumed
    DISPOSED = "disposed"  # 待核查派发: feedback given; the intake operator sends the check
    CHECKING = "checking"  # 核查中: an inspector checks the disposal on site
    CHECKED = "checked"  # 待结案: check passed; the shift supervisor closes
    SELF_HANDLED = "self_handled"  # 自处理待审核: the inspector fixed it; shift supervisor audits
    VOID_REQUESTED = "void_requested"  # 作废申请: duplicate or invalid; shift supervisor decides
    CLOSED = "closed"  # 已结案 (terminal; the callback 回访 is still recorded on it)
    DECLINED = "declined"  # 不予立案 (terminal): real, but does not meet the filing criterion
    NOT_ACCEPTED = "not_accepted"  # 不予受理 (terminal): not a matter for this system / not found
    VOIDED = "voided"  # 已作废 (terminal): duplicate or invalid


STATE_LABELS_ZH: Mapping[CaseState, str] = {
    CaseState.REPORTED: "待受理",
    CaseState.VERIFYING: "待核实",
    CaseState.NOT_FOUND: "核实不属实",
    CaseState.VERIFIED: "待立案",
    CaseState.FILED: "待派遣",
    CaseState.DISPATCHED: "处置中",
    CaseState.RETURN_REQUESTED: "回退申请",
    CaseState.EXTENSION_REQUESTED: "延期申请",
    CaseState.SUSPEND_REQUESTED: "挂账申请",
    CaseState.SUSPENDED: "挂账",
    CaseState.DISPOSED: "待核查",
    CaseState.CHECKING: "核查中",
    CaseState.CHECKED: "待结案",
    CaseState.SELF_HANDLED: "自处理待审核",
    CaseState.VOID_REQUESTED: "作废申请",
    CaseState.CLOSED: "已结案",
    CaseState.DECLINED: "不予立案",
    CaseState.NOT_ACCEPTED: "不予受理",
    CaseState.VOIDED: "已作废",
}

TERMINAL_STATES: frozenset[CaseState] = frozenset(
    {CaseState.CLOSED, CaseState.DECLINED, CaseState.NOT_ACCEPTED, CaseState.VOIDED}
)
OPEN_STATES: frozenset[CaseState] = frozenset(CaseState) - TERMINAL_STATES


class CaseAction(StrEnum):
    """What a user does to a case. ``report`` creates one (see ``decide_report``)."""

    REPORT = "report"  # 上报 (any channel)
    SEND_VERIFY = "send_verify"  # 派发核实
    VERIFY_FOUND = "verify_found"  # 核实属实
    VERIFY_NOT_FOUND = "verify_not_found"  # 核实不属实
    FILE = "file"  # 立案
    DECLINE = "decline"  # 不予立案
    NOT_ACCEPT = "not_accept"  # 不予受理
    DISPATCH = "dispatch"  # 派遣
    REQUEST_RETURN = "request_return"  # 申请回退 (退单)
    APPROVE_RETURN = "approve_return"  # 同意回退: back to 待派遣 for re-dispatch
    REJECT_RETURN = "reject_return"  # 驳回回退
    REQUEST_EXTENSION = "request_extension"  # 申请延期
    APPROVE_EXTENSION = "approve_extension"  # 同意延期
    REJECT_EXTENSION = "reject_extension"  # 驳回延期
    REQUEST_SUSPEND = "request_suspend"  # 申请挂账 (缓办)
    APPROVE_SUSPEND = "approve_suspend"  # 同意挂账
    REJECT_SUSPEND = "reject_suspend"  # 驳回挂账
    RESUME = "resume"  # 挂账恢复
    DISPOSE = "dispose"  # 处置反馈 (with evidence)
    SEND_CHECK = "send_check"  # 派发核查
    CHECK_PASS = "check_pass"  # 核查通过
    CHECK_FAIL = "check_fail"  # 核查不通过 → 返工 by the same department
    CLOSE = "close"  # 结案
    REQUEST_VOID = "request_void"  # 申请作废
    APPROVE_VOID = "approve_void"  # 同意作废
    REJECT_VOID = "reject_void"  # 驳回作废: back to the state before the request
    SELF_HANDLE = "self_handle"  # 自处理: the inspector fixed it on site
    URGE = "urge"  # 督办: recorded, raises priority, state unchanged
    CALLBACK = "callback"  # 回访: the citizen rates the outcome


ACTION_LABELS_ZH: Mapping[CaseAction, str] = {
    CaseAction.REPORT: "上报",
    CaseAction.SEND_VERIFY: "派发核实",
    CaseAction.VERIFY_FOUND: "核实属实",
    CaseAction.VERIFY_NOT_FOUND: "核实不属实",
    CaseAction.FILE: "立案",
    CaseAction.DECLINE: "不予立案",
    CaseAction.NOT_ACCEPT: "不予受理",
    CaseAction.DISPATCH: "派遣",
    CaseAction.REQUEST_RETURN: "申请回退",
    CaseAction.APPROVE_RETURN: "同意回退",
    CaseAction.REJECT_RETURN: "驳回回退",
    CaseAction.REQUEST_EXTENSION: "申请延期",
    CaseAction.APPROVE_EXTENSION: "同意延期",
    CaseAction.REJECT_EXTENSION: "驳回延期",
    CaseAction.REQUEST_SUSPEND: "申请挂账",
    CaseAction.APPROVE_SUSPEND: "同意挂账",
    CaseAction.REJECT_SUSPEND: "驳回挂账",
    CaseAction.RESUME: "挂账恢复",
    CaseAction.DISPOSE: "处置反馈",
    CaseAction.SEND_CHECK: "派发核查",
    CaseAction.CHECK_PASS: "核查通过",
    CaseAction.CHECK_FAIL: "核查不通过(返工)",
    CaseAction.CLOSE: "结案",
    CaseAction.REQUEST_VOID: "申请作废",
    CaseAction.APPROVE_VOID: "同意作废",
    CaseAction.REJECT_VOID: "驳回作废",
    CaseAction.SELF_HANDLE: "自处理",
    CaseAction.URGE: "督办",
    CaseAction.CALLBACK: "回访",
}


class Step(StrEnum):
    """A clocked step: each has its own time limit (DOMAIN.md section 2) and its own KPI
    (按期核实率, 按时立案率, 按期派遣率, 按期处置率, 按期核查率, 按时结案率)."""

    SEND_VERIFY = "send_verify"  # 派发核实 (eGova default 30 min)
    VERIFY = "verify"  # 核实 (120 min)
    FILE = "file"  # 立案
    DISPATCH = "dispatch"  # 派遣
    DISPOSE = "dispose"  # 处置 (limit from the filing-standard row chosen at filing)
    SEND_CHECK = "send_check"  # 派发核查 (30 min)
    CHECK = "check"  # 核查 (120 min)
    CLOSE = "close"  # 结案


STEP_LABELS_ZH: Mapping[Step, str] = {
    Step.SEND_VERIFY: "派发核实",
    Step.VERIFY: "核实",
    Step.FILE: "立案",
    Step.DISPATCH: "派遣",
    Step.DISPOSE: "处置",
    Step.SEND_CHECK: "派发核查",
    Step.CHECK: "核查",
    Step.CLOSE: "结案",
}


class Satisfaction(StrEnum):
    """The citizen's rating at callback (回访); feeds the 满意率 of the 12345 three rates."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意


SATISFACTION_LABELS_ZH: Mapping[Satisfaction, str] = {
    Satisfaction.SATISFIED: "满意",
    Satisfaction.BASICALLY_SATISFIED: "基本满意",
    Satisfaction.DISSATISFIED: "不满意",
}


class ClockEffect(StrEnum):
    """What a transition does to the step clock (the service recomputes the deadline column)."""

    START = "start"  # stop what ran; start the next state's step clock from now (new deadline)
    KEEP = "keep"  # the running clock and deadline continue untouched
    EXTEND = "extend"  # the running clock continues; the deadline moves by one original limit
    PAUSE = "pause"  # stop counting; the remaining time is kept for RESUME
    RESUME = "resume"  # count again from where PAUSE stopped (the deadline moves by the pause)
    STOP = "stop"  # no clock runs any more (terminal states)


class Effect(StrEnum):
    """Side effects other than the clock that the service must apply with the transition."""

    REWORK = "rework"  # rework_count += 1; counts against the department (返工率)
    EXTENSION = "extension"  # extension_count += 1
    SUSPENSION = "suspension"  # suspend_count += 1
    RETURN = "return"  # the dispatch was wrong (准确派遣率); the department is released
    REMEMBER_STATE = "remember_state"  # store the from-state as state_before_void
    URGE = "urge"  # record the 督办 and raise the priority
    CALLBACK = "callback"  # record the satisfaction; callback_count += 1


# --------------------------------------------------------------------------------------------
# Facts and policy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the guards need to know about one case, copied from its row.

    Kept small and immutable so guards stay pure functions and tests can build any situation in
    one line.
    """

    channel: Channel
    extension_count: int = 0  # approved extensions so far
    suspend_count: int = 0  # approved suspensions so far
    # Failed checks so far. No guard limits it: refusing a failed check would force a pass. It is
    # here so the facts mirror every counter the transitions change.
    rework_count: int = 0
    callback_count: int = 0  # callbacks (回访) recorded so far
    # The state a pending void request came from; reject_void returns there. Set only while the
    # case is in void_requested.
    state_before_void: CaseState | None = None

    def __post_init__(self) -> None:
        for name in ("extension_count", "suspend_count", "rework_count", "callback_count"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{name} cannot be negative", field=name)


@dataclass(frozen=True, slots=True)
class LoopPolicy:
    """A city's choices about the loop. Defaults follow DOMAIN.md; marks as there ([L]/[U])."""

    # [L] An inspector is trained and on site with a photo: the report goes straight to 待立案.
    inspector_reports_skip_verification: bool = True
    # [L] A citizen may be mistaken about place or problem: an inspector confirms first.
    public_reports_need_verification: bool = True
    # [U] Which of sensor / higher_authority / self_found go through verification. A camera or
    # sensor alarm has no human eye behind it, so it is verified by default; a task assigned by a
    # higher authority or found by staff is trusted.
    other_channels_needing_verification: frozenset[Channel] = frozenset({Channel.SENSOR})
    max_extensions: int = 2  # [L] 延期 at most twice
    max_suspensions: int = 1  # [L] 挂账 at most once
    # [C/L] 回访 is for cases a citizen reported.
    callback_channels: frozenset[Channel] = PUBLIC_CHANNELS
    max_callbacks: int = 1  # one callback per case unless the city repeats them

    def __post_init__(self) -> None:
        for name in ("max_extensions", "max_suspensions", "max_callbacks"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{name} cannot be negative", field=name)
        governed = {Channel.INSPECTOR} | PUBLIC_CHANNELS
        stray = sorted(self.other_channels_needing_verification & governed)
        if stray:
            # Inspector and public channels have their own switches; a second one would conflict.
            raise InvalidInput(
                "other_channels_needing_verification may only name sensor, higher_authority or "
                f"self_found, not {', '.join(stray)}",
                field="other_channels_needing_verification",
            )


DEFAULT_POLICY = LoopPolicy()


# --------------------------------------------------------------------------------------------
# Guards: pure functions over (facts, policy). None means "allowed", a string is the reason.
# The first docstring line is what the printed table shows.
# --------------------------------------------------------------------------------------------

Guard = Callable[[CaseFacts, LoopPolicy], str | None]


def extensions_left(facts: CaseFacts, policy: LoopPolicy) -> str | None:
    """fewer than max_extensions approved extensions (default 2)"""
    if facts.extension_count >= policy.max_extensions:
        return (
            f"the case already had {facts.extension_count} of at most "
            f"{policy.max_extensions} extension(s)"
        )
    return None


def suspensions_left(facts: CaseFacts, policy: LoopPolicy) -> str | None:
    """fewer than max_suspensions approved suspensions (default 1)"""
    if facts.suspend_count >= policy.max_suspensions:
        return (
            f"the case was already suspended {facts.suspend_count} time(s), "
            f"at most {policy.max_suspensions} allowed"
        )
    return None


def inspectors_own_report(facts: CaseFacts, policy: LoopPolicy) -> str | None:
    """the case came from the inspector channel"""
    # Before verification only the reporting inspector has been on site; a case from another
    # channel is self-handled during verification instead (the inspector is there then).
    if facts.channel != Channel.INSPECTOR:
        return (
            f"only an inspector's own report can be self-handled here; this case came "
            f"from channel '{facts.channel}' (self-handle it while verifying)"
        )
    return None


def callback_due(facts: CaseFacts, policy: LoopPolicy) -> str | None:
    """channel in callback_channels and fewer than max_callbacks callbacks"""
    if facts.channel not in policy.callback_channels:
        return f"cases from channel '{facts.channel}' get no callback"
    if facts.callback_count >= policy.max_callbacks:
        return (
            f"the case already had {facts.callback_count} of at most "
            f"{policy.max_callbacks} callback(s)"
        )
    return None


def void_request_pending(facts: CaseFacts, policy: LoopPolicy) -> str | None:
    """the state before the void request is known"""
    # A missing or impossible value means a corrupt row: refuse rather than guess where to go.
    if facts.state_before_void is None:
        return "the state before the void request was not recorded, so there is nowhere to return"
    if facts.state_before_void not in VOIDABLE_STATES:
        return (
            f"the recorded state before the void request, '{facts.state_before_void}', is not "
            "one a void request can come from"
        )
    return None


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: who may take an action in a state, where it leads and what it does.

    ``to_state`` None means "back to ``CaseFacts.state_before_void``" (only reject_void).
    """

    roles: frozenset[Role]
    to_state: CaseState | None
    clock: ClockEffect
    guard: Guard | None = None
    effects: frozenset[Effect] = frozenset()


S = CaseState
A = CaseAction
R = Role
C = ClockEffect
E = Effect

_INSPECTOR = frozenset({R.INSPECTOR})
_INTAKE = frozenset({R.INTAKE_OPERATOR})
_SUPERVISOR = frozenset({R.SHIFT_SUPERVISOR})
_DISPATCHER = frozenset({R.DISPATCHER})
_DEPARTMENT = frozenset({R.DEPARTMENT_OPERATOR})

# Urge (督办) changes no state and moves no responsibility, so separation of duties does not
# forbid it to admin. Admin is allowed for one more reason: the worker's escalation rules (an
# automatic urge at red) act as the system actor, whose role is admin. Admin may do nothing else
# to a case: running the system is not running the loop.
URGE_ROLES: frozenset[Role] = frozenset({R.LEADER, R.ADMIN})

# Resuming from the problem pool: the dispatcher (who approved the suspension and watches the
# pool) or the department itself when it can act again; either way the department's own clock
# resumes, so letting it ask is no loophole.
_RESUMERS = frozenset({R.DISPATCHER, R.DEPARTMENT_OPERATOR})

TRANSITIONS: Mapping[tuple[CaseState, CaseAction], Rule] = {
    # -- intake and verification (监督中心) --------------------------------------------------
    (S.REPORTED, A.SEND_VERIFY): Rule(_INTAKE, S.VERIFYING, C.START),
    (S.REPORTED, A.NOT_ACCEPT): Rule(_SUPERVISOR, S.NOT_ACCEPTED, C.STOP),
    (S.REPORTED, A.SELF_HANDLE): Rule(
        _INSPECTOR, S.SELF_HANDLED, C.START, guard=inspectors_own_report
    ),
    (S.REPORTED, A.REQUEST_VOID): Rule(
        _INTAKE, S.VOID_REQUESTED, C.PAUSE, effects=frozenset({E.REMEMBER_STATE})
    ),
    (S.VERIFYING, A.VERIFY_FOUND): Rule(_INSPECTOR, S.VERIFIED, C.START),
    (S.VERIFYING, A.VERIFY_NOT_FOUND): Rule(_INSPECTOR, S.NOT_FOUND, C.START),
    (S.VERIFYING, A.SELF_HANDLE): Rule(_INSPECTOR, S.SELF_HANDLED, C.START),
    (S.VERIFYING, A.REQUEST_VOID): Rule(
        _INTAKE, S.VOID_REQUESTED, C.PAUSE, effects=frozenset({E.REMEMBER_STATE})
    ),
    # "Not found" does not end the case by itself: one inspector's word is not enough to drop a
    # citizen's report, so the shift supervisor decides (or intake sends it to verify again).
    (S.NOT_FOUND, A.NOT_ACCEPT): Rule(_SUPERVISOR, S.NOT_ACCEPTED, C.STOP),
    (S.NOT_FOUND, A.SEND_VERIFY): Rule(_INTAKE, S.VERIFYING, C.START),
    # -- filing (立案) -------------------------------------------------------------------------
    (S.VERIFIED, A.FILE): Rule(_SUPERVISOR, S.FILED, C.START),
    (S.VERIFIED, A.DECLINE): Rule(_SUPERVISOR, S.DECLINED, C.STOP),
    (S.VERIFIED, A.NOT_ACCEPT): Rule(_SUPERVISOR, S.NOT_ACCEPTED, C.STOP),
    (S.VERIFIED, A.SELF_HANDLE): Rule(
        _INSPECTOR, S.SELF_HANDLED, C.START, guard=inspectors_own_report
    ),
    (S.VERIFIED, A.REQUEST_VOID): Rule(
        _INTAKE, S.VOID_REQUESTED, C.PAUSE, effects=frozenset({E.REMEMBER_STATE})
    ),
    # -- dispatch (派遣, 指挥中心) --------------------------------------------------------------
    (S.FILED, A.DISPATCH): Rule(_DISPATCHER, S.DISPATCHED, C.START),
    (S.FILED, A.REQUEST_VOID): Rule(
        _DISPATCHER, S.VOID_REQUESTED, C.PAUSE, effects=frozenset({E.REMEMBER_STATE})
    ),
    # -- disposal (处置) -----------------------------------------------------------------------
    (S.DISPATCHED, A.DISPOSE): Rule(_DEPARTMENT, S.DISPOSED, C.START),
    # A pending request does not stop the department's clock: otherwise asking would be a free
    # way to buy time. Only an approval changes it (restart, extend or pause).
    (S.DISPATCHED, A.REQUEST_RETURN): Rule(_DEPARTMENT, S.RETURN_REQUESTED, C.KEEP),
    (S.DISPATCHED, A.REQUEST_EXTENSION): Rule(
        _DEPARTMENT, S.EXTENSION_REQUESTED, C.KEEP, guard=extensions_left
    ),
    (S.DISPATCHED, A.REQUEST_SUSPEND): Rule(
        _DEPARTMENT, S.SUSPEND_REQUESTED, C.KEEP, guard=suspensions_left
    ),
    (S.DISPATCHED, A.REQUEST_VOID): Rule(
        _DISPATCHER, S.VOID_REQUESTED, C.PAUSE, effects=frozenset({E.REMEMBER_STATE})
    ),
    (S.RETURN_REQUESTED, A.APPROVE_RETURN): Rule(
        _DISPATCHER, S.FILED, C.START, effects=frozenset({E.RETURN})
    ),
    (S.RETURN_REQUESTED, A.REJECT_RETURN): Rule(_DISPATCHER, S.DISPATCHED, C.KEEP),
    # The count is checked again at approval: the policy may have changed since the request.
    (S.EXTENSION_REQUESTED, A.APPROVE_EXTENSION): Rule(
        _DISPATCHER,
        S.DISPATCHED,
        C.EXTEND,
        guard=extensions_left,
        effects=frozenset({E.EXTENSION}),
    ),
    (S.EXTENSION_REQUESTED, A.REJECT_EXTENSION): Rule(_DISPATCHER, S.DISPATCHED, C.KEEP),
    (S.SUSPEND_REQUESTED, A.APPROVE_SUSPEND): Rule(
        _DISPATCHER,
        S.SUSPENDED,
        C.PAUSE,
        guard=suspensions_left,
        effects=frozenset({E.SUSPENSION}),
    ),
    (S.SUSPEND_REQUESTED, A.REJECT_SUSPEND): Rule(_DISPATCHER, S.DISPATCHED, C.KEEP),
    (S.SUSPENDED, A.RESUME): Rule(_RESUMERS, S.DISPATCHED, C.RESUME),
    # -- check and close (核查, 结案) -----------------------------------------------------------
    (S.DISPOSED, A.SEND_CHECK): Rule(_INTAKE, S.CHECKING, C.START),
    (S.CHECKING, A.CHECK_PASS): Rule(_INSPECTOR, S.CHECKED, C.START),
    # Rework goes back to the same department with a fresh disposal limit [U]; it counts
    # against the department (返工率), which is the deterrent.
    (S.CHECKING, A.CHECK_FAIL): Rule(
        _INSPECTOR, S.DISPATCHED, C.START, effects=frozenset({E.REWORK})
    ),
    (S.CHECKED, A.CLOSE): Rule(_SUPERVISOR, S.CLOSED, C.STOP),
    # -- self-handle audit: close it, or refuse the self-handling and file it for dispatch ---
    (S.SELF_HANDLED, A.CLOSE): Rule(_SUPERVISOR, S.CLOSED, C.STOP),
    (S.SELF_HANDLED, A.FILE): Rule(_SUPERVISOR, S.FILED, C.START),
    # -- void (作废): the clock pauses while the shift supervisor decides, so a rejected request
    # costs the step owner nothing; only intake and the dispatcher may ask, never the
    # department (it would stop its own clock) and never the approver itself.
    (S.VOID_REQUESTED, A.APPROVE_VOID): Rule(_SUPERVISOR, S.VOIDED, C.STOP),
    (S.VOID_REQUESTED, A.REJECT_VOID): Rule(
        _SUPERVISOR, None, C.RESUME, guard=void_request_pending
    ),
    # -- callback (回访) after close ------------------------------------------------------------
    (S.CLOSED, A.CALLBACK): Rule(
        _INTAKE, S.CLOSED, C.KEEP, guard=callback_due, effects=frozenset({E.CALLBACK})
    ),
    # -- urge (督办) in every open state; the state does not change ---------------------------
    **{
        (state, A.URGE): Rule(URGE_ROLES, state, C.KEEP, effects=frozenset({E.URGE}))
        for state in CaseState
        if state in OPEN_STATES
    },
}
"""The whole loop. Key (state, action); anything absent is refused."""

VOIDABLE_STATES: frozenset[CaseState] = frozenset(
    state for (state, action) in TRANSITIONS if action == CaseAction.REQUEST_VOID
)
"""States a void request may come from (and reject_void may return to)."""


# --------------------------------------------------------------------------------------------
# Wait points: who owns each state and which step clock runs in it (the inbox and the worker)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaitPoint:
    """Who must act next in a state, and which step's deadline they are working against.

    ``step`` None means no clock runs (paused or terminal). In the three request states the
    owner is the dispatcher but the clock is still the department's disposal clock (see
    ``TRANSITIONS``): the inbox shows the dispatcher the deadline the department is facing.
    """

    owner: Role | None
    step: Step | None


WAIT_POINTS: Mapping[CaseState, WaitPoint] = {
    S.REPORTED: WaitPoint(R.INTAKE_OPERATOR, Step.SEND_VERIFY),
    S.VERIFYING: WaitPoint(R.INSPECTOR, Step.VERIFY),
    S.NOT_FOUND: WaitPoint(R.SHIFT_SUPERVISOR, Step.FILE),
    S.VERIFIED: WaitPoint(R.SHIFT_SUPERVISOR, Step.FILE),
    S.FILED: WaitPoint(R.DISPATCHER, Step.DISPATCH),
    S.DISPATCHED: WaitPoint(R.DEPARTMENT_OPERATOR, Step.DISPOSE),
    S.RETURN_REQUESTED: WaitPoint(R.DISPATCHER, Step.DISPOSE),
    S.EXTENSION_REQUESTED: WaitPoint(R.DISPATCHER, Step.DISPOSE),
    S.SUSPEND_REQUESTED: WaitPoint(R.DISPATCHER, Step.DISPOSE),
    S.SUSPENDED: WaitPoint(R.DISPATCHER, None),  # paused; the pool is reviewed, not timed here
    S.DISPOSED: WaitPoint(R.INTAKE_OPERATOR, Step.SEND_CHECK),
    S.CHECKING: WaitPoint(R.INSPECTOR, Step.CHECK),
    S.CHECKED: WaitPoint(R.SHIFT_SUPERVISOR, Step.CLOSE),
    S.SELF_HANDLED: WaitPoint(R.SHIFT_SUPERVISOR, Step.CLOSE),
    S.VOID_REQUESTED: WaitPoint(R.SHIFT_SUPERVISOR, None),  # paused while the request is open
    S.CLOSED: WaitPoint(None, None),  # a due callback is found with callback_pending()
    S.DECLINED: WaitPoint(None, None),
    S.NOT_ACCEPTED: WaitPoint(None, None),
    S.VOIDED: WaitPoint(None, None),
}


# --------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    """The answer to "may I, and what then?": the next state and what the service must do."""

    from_state: CaseState | None  # None for report (the case does not exist yet)
    action: CaseAction
    role: Role | None  # None for a report by a citizen or a machine integration
    to_state: CaseState
    clock: ClockEffect
    effects: frozenset[Effect] = frozenset()

    @property
    def starts_clock(self) -> Step | None:
        """The step whose clock (re)starts now, with a fresh deadline, or None."""
        return WAIT_POINTS[self.to_state].step if self.clock == ClockEffect.START else None

    @property
    def stops_clock(self) -> bool:
        return self.clock == ClockEffect.STOP

    @property
    def pauses_clock(self) -> bool:
        return self.clock == ClockEffect.PAUSE

    @property
    def resumes_clock(self) -> bool:
        return self.clock == ClockEffect.RESUME

    @property
    def extends(self) -> bool:
        """The disposal deadline moves by one original limit (and extension_count += 1)."""
        return self.clock == ClockEffect.EXTEND

    @property
    def increments_rework(self) -> bool:
        return Effect.REWORK in self.effects

    @property
    def increments_suspension(self) -> bool:
        return Effect.SUSPENSION in self.effects

    @property
    def counts_return(self) -> bool:
        """The dispatch was returned: release the department; 准确派遣率 counts it."""
        return Effect.RETURN in self.effects

    @property
    def records_state_before_void(self) -> bool:
        return Effect.REMEMBER_STATE in self.effects

    @property
    def records_urge(self) -> bool:
        return Effect.URGE in self.effects

    @property
    def records_callback(self) -> bool:
        return Effect.CALLBACK in self.effects

    @property
    def changes_state(self) -> bool:
        return self.from_state != self.to_state


class RoleNotAllowed(RuleViolation, PermissionDenied):
    """The action exists in this state, but the actor's role may not take it.

    A ``RuleViolation`` like every refusal of the table, and also a ``PermissionDenied`` so the
    HTTP layer can answer 403 ("role or scope") rather than 422 ("not allowed in the state").
    """

    status_code = 403


_E = TypeVar("_E", CaseState, CaseAction, Role, Channel)


def _coerce(kind: type[_E], value: _E | str, field: str) -> _E:
    """Accept the enum or its stored string, so the service can pass a column value as is."""
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise InvalidInput(f"unknown {field} '{value}' (known: {known})", field=field) from None


def _state_name(state: CaseState) -> str:
    return f"state '{state}' ({STATE_LABELS_ZH[state]})"


def decide(
    state: CaseState | str,
    action: CaseAction | str,
    role: Role | str,
    facts: CaseFacts,
    policy: LoopPolicy = DEFAULT_POLICY,
) -> Transition:
    """Return the transition for ``role`` taking ``action`` on a case in ``state``.

    Raises ``RuleViolation`` when the action does not exist in the state (for any role),
    ``RoleNotAllowed`` (also a ``RuleViolation``) when it exists but not for this role, and
    ``RuleViolation`` when a guard refuses; every message names the state, action and role.
    """
    state = _coerce(CaseState, state, "state")
    action = _coerce(CaseAction, action, "action")
    role = _coerce(Role, role, "role")

    rule = TRANSITIONS.get((state, action))
    if rule is None:
        if action == CaseAction.REPORT:
            why = "a report creates a new case (decide_report)"
        elif state in TERMINAL_STATES:
            why = "the state is terminal"
        else:
            possible = ", ".join(a for a in CaseAction if (state, a) in TRANSITIONS)
            why = f"possible there: {possible}"
        raise RuleViolation(
            f"action '{action}' is not possible in {_state_name(state)} for any role "
            f"(asked by role '{role}'): {why}",
            field="action",
        )
    if role not in rule.roles:
        allowed = ", ".join(sorted(rule.roles))
        raise RoleNotAllowed(
            f"action '{action}' is not allowed for role '{role}' in {_state_name(state)}; "
            f"only {allowed} may take it",
            field="action",
        )
    if rule.guard is not None:
        reason = rule.guard(facts, policy)
        if reason is not None:
            raise RuleViolation(
                f"action '{action}' is refused for role '{role}' in {_state_name(state)}: {reason}",
                field="action",
            )
    to_state = rule.to_state
    if to_state is None:  # reject_void: the guard guaranteed the remembered state is valid
        assert facts.state_before_void is not None
        to_state = facts.state_before_void
    return Transition(state, action, role, to_state, rule.clock, rule.effects)


def allowed_actions(
    state: CaseState | str,
    role: Role | str,
    facts: CaseFacts,
    policy: LoopPolicy = DEFAULT_POLICY,
) -> list[CaseAction]:
    """Exactly the actions ``role`` may take now (guards applied), in ``CaseAction`` order.

    Built from the same table as ``decide``, so the UI never offers a button that would fail.
    """
    state = _coerce(CaseState, state, "state")
    role = _coerce(Role, role, "role")
    result: list[CaseAction] = []
    for action in CaseAction:
        rule = TRANSITIONS.get((state, action))
        if rule is None or role not in rule.roles:
            continue
        if rule.guard is None or rule.guard(facts, policy) is None:
            result.append(action)
    return result


def callback_pending(
    state: CaseState | str, facts: CaseFacts, policy: LoopPolicy = DEFAULT_POLICY
) -> bool:
    """True when a closed case still owes the citizen a callback (the intake inbox shows it)."""
    state = _coerce(CaseState, state, "state")
    rule = TRANSITIONS.get((state, CaseAction.CALLBACK))
    return rule is not None and (rule.guard is None or rule.guard(facts, policy) is None)


# --------------------------------------------------------------------------------------------
# Reports: the entry into the loop
# --------------------------------------------------------------------------------------------

REPORT_ROLES: Mapping[Channel, frozenset[Role | None]] = {
    Channel.INSPECTOR: frozenset({R.INSPECTOR}),
    # A hotline call is recorded by the operator who took it (接线员).
    Channel.HOTLINE_12345: frozenset({R.INTAKE_OPERATOR}),
    Channel.HOTLINE_12319: frozenset({R.INTAKE_OPERATOR}),
    # None: the citizen or the integration itself, with no staff role; an intake operator may
    # also type in a report received on paper or by mail.
    Channel.PUBLIC_WEB: frozenset({None, R.INTAKE_OPERATOR}),
    Channel.OPEN311: frozenset({None, R.INTAKE_OPERATOR}),
    Channel.SENSOR: frozenset({None, R.INTAKE_OPERATOR}),
    Channel.HIGHER_AUTHORITY: frozenset({R.INTAKE_OPERATOR, R.SHIFT_SUPERVISOR}),
    Channel.SELF_FOUND: frozenset(
        {R.INTAKE_OPERATOR, R.SHIFT_SUPERVISOR, R.DISPATCHER, R.DEPARTMENT_OPERATOR}
    ),
}
"""Who may submit a report on each channel (None: a non-staff submitter)."""


def needs_verification(channel: Channel | str, policy: LoopPolicy = DEFAULT_POLICY) -> bool:
    """Whether a new report on ``channel`` must be verified (核实) before filing."""
    channel = _coerce(Channel, channel, "channel")
    if channel == Channel.INSPECTOR:
        return not policy.inspector_reports_skip_verification
    if channel in PUBLIC_CHANNELS:
        return policy.public_reports_need_verification
    return channel in policy.other_channels_needing_verification


def initial_state(channel: Channel | str, policy: LoopPolicy = DEFAULT_POLICY) -> CaseState:
    """The state a new report starts in: intake (待受理) if it needs verification, else 待立案."""
    return CaseState.REPORTED if needs_verification(channel, policy) else CaseState.VERIFIED


def decide_report(
    channel: Channel | str,
    role: Role | str | None,
    policy: LoopPolicy = DEFAULT_POLICY,
) -> Transition:
    """The transition that creates a case: checks who may report on the channel.

    ``role`` None stands for a submitter without a staff role (a citizen, a sensor feed).
    """
    channel = _coerce(Channel, channel, "channel")
    actor_role = None if role is None else _coerce(Role, role, "role")
    allowed = REPORT_ROLES[channel]
    if actor_role not in allowed:
        who = "the public" if actor_role is None else f"role '{actor_role}'"
        names = ", ".join(sorted("the public" if r is None else r.value for r in allowed))
        raise RoleNotAllowed(
            f"action 'report' on channel '{channel}' is not allowed for {who}; "
            f"only {names} may report there",
            field="channel",
        )
    return Transition(
        None, CaseAction.REPORT, actor_role, initial_state(channel, policy), ClockEffect.START
    )


# --------------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------------


def _guard_text(guard: Guard | None) -> str:
    if guard is None:
        return ""
    lines = (guard.__doc__ or "").strip().splitlines()
    return lines[0] if lines else ""


def transition_table_markdown() -> str:
    """The table as Markdown for the docs: wait points first, then every transition."""
    state_order = list(CaseState)
    action_order = list(CaseAction)

    def state_cell(state: CaseState) -> str:
        return f"`{state}` {STATE_LABELS_ZH[state]}"

    lines = [
        "| State | Owner (waits on) | Step clock |",
        "|---|---|---|",
    ]
    for state in state_order:
        point = WAIT_POINTS[state]
        owner = (
            point.owner.value if point.owner else ("terminal" if state in TERMINAL_STATES else "")
        )
        step = f"`{point.step}` {STEP_LABELS_ZH[point.step]}" if point.step else "none"
        lines.append(f"| {state_cell(state)} | {owner} | {step} |")
    lines += [
        "",
        "| From | Action | Roles | Guard | To | Clock | Effects |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted(TRANSITIONS, key=lambda k: (state_order.index(k[0]), action_order.index(k[1])))
    for state, action in keys:
        rule = TRANSITIONS[(state, action)]
        to = state_cell(rule.to_state) if rule.to_state else "state before the request"
        roles = ", ".join(sorted(rule.roles))
        effects = ", ".join(sorted(rule.effects))
        lines.append(
            f"| {state_cell(state)} | `{action}` {ACTION_LABELS_ZH[action]} | {roles} | "
            f"{_guard_text(rule.guard)} | {to} | {rule.clock} | {effects} |"
        )
    return "\n".join(lines) + "\n"


# The one-letter aliases only make the literal tables above readable; keep them out of the API.
del S, A, R, C, E
