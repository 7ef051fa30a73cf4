"""Pure ledger rules: the kinds of ledger, the sign-off state machine, deadlines and statistics.

No I/O, no clock, no database. The service layer loads rows, turns them into the frozen
``*Facts`` below, asks ``decide`` whether an action is allowed and what follows, and computes
every statistic from a ``LedgerSnapshot``. The Excel workbook, the bulletin and the chart read
the same snapshot, so a number means the same thing on every output.

One mechanism, three kinds (DOMAIN.md section 7):

- rectification (巡察整改): aspects (方面) → problems (问题) → measures (整改措施);
- hazard survey (隐患排查治理): inspections (检查: date, place or enterprise, inspector) →
  hazards (隐患: class, level, location, deadline);
- checklist (通用清单): sections → items.

Every item, whatever the kind, closes only through the sign-off flow (销号): the responsible
unit submits with evidence, a reviewer reviews, an approver approves; a rejection returns it
with a reason; a look-back (回头看) may reopen a signed-off item as relapsed (反弹).
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from cityloop.errors import InvalidInput, PermissionDenied, RuleViolation
from cityloop.org.domain import Actor, Role
from cityloop.workcal.domain import TimeLimit, WorkingCalendar, parse_time_limit

# --------------------------------------------------------------------------------------------
# Kinds and their shapes
# --------------------------------------------------------------------------------------------


class LedgerKind(StrEnum):
    RECTIFICATION = "rectification"  # 巡察整改台账
    HAZARD = "hazard"  # 隐患排查治理台账
    CHECKLIST = "checklist"  # 通用清单台账


@dataclass(frozen=True, slots=True)
class LedgerShape:
    """What the groups and items of one kind are called and where items hang.

    ``group_levels`` names the levels of groups from the top; items hang under the deepest
    level. ``requires_unit``: whether every item must name a responsible unit (a department).
    """

    label: str
    group_levels: tuple[str, ...]
    item_noun: str
    requires_unit: bool

    @property
    def item_level(self) -> int:
        return len(self.group_levels)


SHAPES: Mapping[LedgerKind, LedgerShape] = {
    LedgerKind.RECTIFICATION: LedgerShape(
        label="巡察整改台账",
        group_levels=("方面", "问题"),
        item_noun="整改措施",
        requires_unit=True,
    ),
    LedgerKind.HAZARD: LedgerShape(
        label="隐患排查治理台账", group_levels=("检查",), item_noun="隐患", requires_unit=False
    ),
    LedgerKind.CHECKLIST: LedgerShape(
        label="清单台账", group_levels=("分类",), item_noun="事项", requires_unit=False
    ),
}

# The Xuzhou plan's three stages (前期准备、全面推进、总结评估); each ledger may replace the list.
DEFAULT_STAGES: tuple[str, ...] = ("前期准备", "全面推进", "总结评估")

# 《安全生产事故隐患排查治理暂行规定》 grades hazards as general (一般) or major (重大).
HAZARD_LEVELS: tuple[str, ...] = ("一般", "重大")


def normalise_hazard_level(text: str) -> str:
    """ "一般事故隐患", "一般隐患", "一般" -> "一般"; anything else is refused."""
    cleaned = re.sub(r"\s+", "", text)
    for level in HAZARD_LEVELS:
        if cleaned in (level, f"{level}隐患", f"{level}事故隐患", f"{level}安全隐患"):
            return level
    raise InvalidInput(
        f"unknown hazard level {text!r}: use one of {', '.join(HAZARD_LEVELS)}", field="level"
    )


def check_stages(stages: Sequence[str]) -> tuple[str, ...]:
    """A ledger's stage list: 1-12 distinct non-empty names of at most 32 characters."""
    cleaned = tuple(s.strip() for s in stages)
    if not cleaned or len(cleaned) > 12:
        raise InvalidInput("a ledger needs between 1 and 12 stages", field="stages")
    if any(not s or len(s) > 32 for s in cleaned):
        raise InvalidInput("a stage name has 1-32 characters", field="stages")
    if len(set(cleaned)) != len(cleaned):
        raise InvalidInput("stage names must differ", field="stages")
    return cleaned


# --------------------------------------------------------------------------------------------
# Status and the sign-off state machine
# --------------------------------------------------------------------------------------------


class ItemStatus(StrEnum):
    """Progress as the responsible unit reports it (整改状态)."""

    NOT_STARTED = "not_started"  # 未启动
    IN_PROGRESS = "in_progress"  # 推进中
    DONE = "done"  # 已完成
    LONG_TERM = "long_term"  # 长期坚持


STATUS_LABELS_ZH: Mapping[ItemStatus, str] = {
    ItemStatus.NOT_STARTED: "未启动",
    ItemStatus.IN_PROGRESS: "推进中",
    ItemStatus.DONE: "已完成",
    ItemStatus.LONG_TERM: "长期坚持",
}


def parse_status(text: str) -> ItemStatus:
    """Accept the code or the Chinese label (and a few usual synonyms)."""
    cleaned = re.sub(r"\s+", "", text)
    synonyms = {
        "未开始": ItemStatus.NOT_STARTED,
        "正在推进": ItemStatus.IN_PROGRESS,
        "持续推进": ItemStatus.IN_PROGRESS,
        "进行中": ItemStatus.IN_PROGRESS,
        "已整改": ItemStatus.DONE,
        "完成": ItemStatus.DONE,
        "长期": ItemStatus.LONG_TERM,
    }
    for status in ItemStatus:
        if cleaned in (status.value, STATUS_LABELS_ZH[status]):
            return status
    if cleaned in synonyms:
        return synonyms[cleaned]
    known = "、".join(STATUS_LABELS_ZH.values())
    raise InvalidInput(f"unknown status {text!r}: use one of {known}", field="status")


class SignoffState(StrEnum):
    """Where an item stands in the sign-off flow (销号)."""

    OPEN = "open"  # 整改中: nothing submitted
    SUBMITTED = "submitted"  # 已申请销号: waits for review
    REVIEWED = "reviewed"  # 已审核: waits for approval
    SIGNED_OFF = "signed_off"  # 已销号
    RETURNED = "returned"  # 已退回: a rejection, with a reason; the unit submits again
    RELAPSED = "relapsed"  # 反弹: a look-back reopened a signed-off item


STATE_LABELS_ZH: Mapping[SignoffState, str] = {
    SignoffState.OPEN: "整改中",
    SignoffState.SUBMITTED: "待审核",
    SignoffState.REVIEWED: "待审批",
    SignoffState.SIGNED_OFF: "已销号",
    SignoffState.RETURNED: "已退回",
    SignoffState.RELAPSED: "反弹",
}

# States in which the unit works on the item: its content may be edited and progress reported.
WORKING_STATES: frozenset[SignoffState] = frozenset(
    {SignoffState.OPEN, SignoffState.RETURNED, SignoffState.RELAPSED}
)
PENDING_STATES: frozenset[SignoffState] = frozenset({SignoffState.SUBMITTED, SignoffState.REVIEWED})


class SignoffAction(StrEnum):
    SUBMIT = "submit"  # 申请销号 (with evidence)
    REVIEW = "review"  # 审核通过
    APPROVE = "approve"  # 审批销号
    REJECT = "reject"  # 退回 (with a reason)
    CONFIRM = "confirm"  # 回头看: the result holds
    RELAPSE = "relapse"  # 回头看: the problem came back (反弹), with a reason


ACTION_LABELS_ZH: Mapping[SignoffAction, str] = {
    SignoffAction.SUBMIT: "申请销号",
    SignoffAction.REVIEW: "审核通过",
    SignoffAction.APPROVE: "审批销号",
    SignoffAction.REJECT: "退回",
    SignoffAction.CONFIRM: "回头看通过",
    SignoffAction.RELAPSE: "回头看反弹",
}

# The whole flow. Anything not listed is refused: a forgotten row can never be accepted.
TRANSITIONS: Mapping[tuple[SignoffState, SignoffAction], SignoffState] = {
    (SignoffState.OPEN, SignoffAction.SUBMIT): SignoffState.SUBMITTED,
    (SignoffState.RETURNED, SignoffAction.SUBMIT): SignoffState.SUBMITTED,
    (SignoffState.RELAPSED, SignoffAction.SUBMIT): SignoffState.SUBMITTED,
    (SignoffState.SUBMITTED, SignoffAction.REVIEW): SignoffState.REVIEWED,
    (SignoffState.SUBMITTED, SignoffAction.REJECT): SignoffState.RETURNED,
    (SignoffState.REVIEWED, SignoffAction.APPROVE): SignoffState.SIGNED_OFF,
    (SignoffState.REVIEWED, SignoffAction.REJECT): SignoffState.RETURNED,
    (SignoffState.SIGNED_OFF, SignoffAction.CONFIRM): SignoffState.SIGNED_OFF,
    (SignoffState.SIGNED_OFF, SignoffAction.RELAPSE): SignoffState.RELAPSED,
}

_REVIEWERS = frozenset({Role.LEADER, Role.ADMIN})

# Who may take each action. The responsible unit's operators submit (for items of their unit
# only: the service checks the scope); leaders and admins review, approve, reject and look back.
ACTION_ROLES: Mapping[SignoffAction, frozenset[Role]] = {
    SignoffAction.SUBMIT: frozenset({Role.DEPARTMENT_OPERATOR, Role.LEADER, Role.ADMIN}),
    SignoffAction.REVIEW: _REVIEWERS,
    SignoffAction.APPROVE: _REVIEWERS,
    SignoffAction.REJECT: _REVIEWERS,
    SignoffAction.CONFIRM: _REVIEWERS,
    SignoffAction.RELAPSE: _REVIEWERS,
}

# Per-kind additions: on a hazard survey the inspector (监督员) verifies rectification on site
# (核查), as in the case loop, so may review and reject a hazard's submission.
KIND_EXTRA_ROLES: Mapping[tuple[LedgerKind, SignoffAction], frozenset[Role]] = {
    (LedgerKind.HAZARD, SignoffAction.REVIEW): frozenset({Role.INSPECTOR}),
    (LedgerKind.HAZARD, SignoffAction.REJECT): frozenset({Role.INSPECTOR}),
}

REASON_REQUIRED: frozenset[SignoffAction] = frozenset({SignoffAction.REJECT, SignoffAction.RELAPSE})
EVIDENCE_REQUIRED: frozenset[SignoffAction] = frozenset(
    {SignoffAction.SUBMIT, SignoffAction.APPROVE}
)
REASON_MAX = 1000


def roles_for(kind: LedgerKind, action: SignoffAction) -> frozenset[Role]:
    return ACTION_ROLES[action] | KIND_EXTRA_ROLES.get((kind, action), frozenset())


@dataclass(frozen=True, slots=True)
class SignoffPolicy:
    """Separation of duties (四眼原则). Both default on; a one-person office may turn them off.

    ``distinct_reviewer``: the reviewer is not the user who submitted.
    ``distinct_approver``: the approver is not the user who reviewed.
    """

    distinct_reviewer: bool = True
    distinct_approver: bool = True


DEFAULT_POLICY = SignoffPolicy()


@dataclass(frozen=True, slots=True)
class SignoffFacts:
    """What ``decide`` needs to know about one item.

    ``fresh_evidence`` counts evidence files uploaded since the item was last returned or
    reopened (all of them if it never was): a resubmission after "证据不足" must bring new proof.
    ``submitted_by``/``reviewed_by`` are the user ids of the current round (None if none).
    """

    kind: LedgerKind
    state: SignoffState
    status: ItemStatus
    fresh_evidence: int
    submitted_by: int | None = None
    reviewed_by: int | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    action: SignoffAction
    from_state: SignoffState
    to_state: SignoffState
    from_status: ItemStatus
    to_status: ItemStatus
    reason: str
    counts_relapse: bool


def allowed_actions(
    facts: SignoffFacts, actor: Actor, policy: SignoffPolicy = DEFAULT_POLICY
) -> list[SignoffAction]:
    """Every action ``actor`` may take now (the UI shows these buttons). Scope is not checked."""
    allowed = []
    for action in SignoffAction:
        try:
            decide(facts, action, actor, reason="(probe)", policy=policy)
        except (PermissionDenied, RuleViolation, InvalidInput):
            continue
        allowed.append(action)
    return allowed


def decide(
    facts: SignoffFacts,
    action: SignoffAction,
    actor: Actor,
    *,
    reason: str = "",
    policy: SignoffPolicy = DEFAULT_POLICY,
) -> Transition:
    """May ``actor`` take ``action`` on an item in ``facts``, and what follows?

    Raises ``PermissionDenied`` (wrong role or same person twice), ``RuleViolation`` (not
    allowed in this state, or no evidence) or ``InvalidInput`` (a reason missing or too long).
    """
    # The role first: someone who may never take this action learns nothing about the state.
    roles = roles_for(facts.kind, action)
    if actor.role not in roles:
        names = ", ".join(sorted(r.value for r in roles))
        raise PermissionDenied(
            f"role '{actor.role.value}' may not {action.value} a ledger item; it needs one of: "
            f"{names}"
        )
    target = TRANSITIONS.get((facts.state, action))
    if target is None:
        raise RuleViolation(
            f"cannot {ACTION_LABELS_ZH[action]} ({action.value}) an item that is "
            f"{STATE_LABELS_ZH[facts.state]} ({facts.state.value})",
            field="action",
        )
    cleaned = reason.strip()
    if action in REASON_REQUIRED and not cleaned:
        raise InvalidInput(f"{action.value} needs a reason", field="reason")
    if len(cleaned) > REASON_MAX:
        raise InvalidInput(
            f"the reason has {len(cleaned)} characters; at most {REASON_MAX} are allowed",
            field="reason",
        )
    if action in EVIDENCE_REQUIRED and facts.fresh_evidence <= 0:
        raise RuleViolation(
            "sign-off needs evidence: attach at least one file to a progress entry "
            "(since the last return or relapse) first",
            field="evidence",
        )
    user = actor.user_id
    if (
        action is SignoffAction.REVIEW
        and policy.distinct_reviewer
        and user is not None
        and user == facts.submitted_by
    ):
        raise PermissionDenied("the reviewer must not be the user who submitted the item")
    if (
        action is SignoffAction.APPROVE
        and policy.distinct_approver
        and user is not None
        and user == facts.reviewed_by
    ):
        raise PermissionDenied("the approver must not be the user who reviewed the item")
    return Transition(
        action=action,
        from_state=facts.state,
        to_state=target,
        from_status=facts.status,
        to_status=_status_after(action, facts.status),
        reason=cleaned,
        counts_relapse=action is SignoffAction.RELAPSE,
    )


def _status_after(action: SignoffAction, status: ItemStatus) -> ItemStatus:
    """A submission claims the work is done; a return or relapse puts it back in progress.

    Long-term measures (长期坚持) keep their status throughout: signing one off means its
    lasting mechanism is in place, not that the work stopped.
    """
    if status is ItemStatus.LONG_TERM:
        return status
    if action is SignoffAction.SUBMIT:
        return ItemStatus.DONE
    if action in (SignoffAction.REJECT, SignoffAction.RELAPSE):
        return ItemStatus.IN_PROGRESS
    return status


def check_status_change(state: SignoffState, new_status: ItemStatus) -> None:
    """The unit reports progress only while it works on the item, not while it is judged."""
    if state not in WORKING_STATES:
        raise RuleViolation(
            f"the item is {STATE_LABELS_ZH[state]}: its status changes only through the "
            f"sign-off flow now (cannot set it to {STATUS_LABELS_ZH[new_status]})",
            field="status",
        )


def check_editable(state: SignoffState) -> None:
    """Content, unit and deadline are fixed once submitted: the reviewer judges what was asked."""
    if state not in WORKING_STATES:
        raise RuleViolation(
            f"the item is {STATE_LABELS_ZH[state]}: reject it or reopen it (回头看) before "
            f"editing it",
            field="state",
        )


# --------------------------------------------------------------------------------------------
# Deadlines (整改时限)
# --------------------------------------------------------------------------------------------


class DeadlineKind(StrEnum):
    NONE = "none"  # no deadline written
    DATE = "date"  # a calendar date: 2023年6月30日, 2023-06-30, 6月底前, 2023年底前
    LIMIT = "limit"  # a time limit from the feedback date on the working calendar: 30个工作日
    MONTHS = "months"  # N months from the feedback date: 3个月内
    LONG_TERM = "long_term"  # 长期坚持: no deadline, the measure is long-term
    IMMEDIATE = "immediate"  # 立行立改: fix at once; no date to be late against


@dataclass(frozen=True, slots=True)
class DeadlineSpec:
    kind: DeadlineKind
    text: str
    due_on: dt.date | None = None
    limit: TimeLimit | None = None
    months: int = 0


LONG_TERM_WORDS = ("长期坚持", "长期", "长期推进", "持续推进", "常态化", "长效推进")
IMMEDIATE_WORDS = ("立行立改", "立即整改", "即知即改")
DEADLINE_TEXT_MAX = 64

_SUFFIX_RE = re.compile(r"(?:前完成|之前|以前|前|完成|内|以内|为止)+$")
_YMD_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_YM_END_RE = re.compile(r"^(?:(\d{4})\s*年)?\s*(\d{1,2})\s*月(?:底|末|份)?$")
_MD_RE = re.compile(r"^(\d{1,2})\s*月\s*(\d{1,2})\s*日$")
_Y_END_RE = re.compile(r"^(?:(\d{4})\s*年)?\s*年?(?:底|末)$")
_MONTHS_RE = re.compile(r"^(\d{1,2})\s*个\s*月$")


def _date(year: int, month: int, day: int, text: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise InvalidInput(f"整改时限 {text!r} is not a real date", field="deadline") from None


def _month_end(year: int, month: int, text: str) -> dt.date:
    if not 1 <= month <= 12:
        raise InvalidInput(f"整改时限 {text!r} has no month {month}", field="deadline")
    return dt.date(year, month, _calendar.monthrange(year, month)[1])


def parse_deadline(
    value: str | dt.date | None, *, reference: dt.date | None = None
) -> DeadlineSpec:
    """Read a 整改时限 as ledgers write it.

    ``reference`` (the feedback date) supplies the year of "6月底前" — the first such date on
    or after it — and is where relative limits start. Dates may carry 前/之前/完成 ("2023年6月30日
    前完成"). Raises ``InvalidInput`` with the text when it cannot be read.
    """
    if value is None:
        return DeadlineSpec(DeadlineKind.NONE, "")
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return DeadlineSpec(DeadlineKind.DATE, cn_date_text(value), due_on=value)
    text = value.strip().replace("\u3000", " ")
    if not text:
        return DeadlineSpec(DeadlineKind.NONE, "")
    if len(text) > DEADLINE_TEXT_MAX:
        raise InvalidInput(
            f"整改时限 has {len(text)} characters; at most {DEADLINE_TEXT_MAX}", field="deadline"
        )
    compact = re.sub(r"\s+", "", text)
    if compact in LONG_TERM_WORDS or compact.startswith("长期"):
        return DeadlineSpec(DeadlineKind.LONG_TERM, text)
    if compact in IMMEDIATE_WORDS:
        return DeadlineSpec(DeadlineKind.IMMEDIATE, text)
    core = _SUFFIX_RE.sub("", compact)
    if m := _YMD_RE.match(core):
        due = _date(int(m[1]), int(m[2]), int(m[3]), text)
        return DeadlineSpec(DeadlineKind.DATE, text, due_on=due)
    if m := _MD_RE.match(core):
        month, day = int(m[1]), int(m[2])
        year = _infer_year(reference, text, lambda y: _date(y, month, day, text))
        return DeadlineSpec(DeadlineKind.DATE, text, due_on=_date(year, month, day, text))
    if m := _YM_END_RE.match(core):
        month = int(m[2])
        if m[1]:
            due = _month_end(int(m[1]), month, text)
        else:
            year = _infer_year(reference, text, lambda y: _month_end(y, month, text))
            due = _month_end(year, month, text)
        return DeadlineSpec(DeadlineKind.DATE, text, due_on=due)
    if m := _Y_END_RE.match(core):
        year = int(m[1]) if m[1] else _infer_year(reference, text, lambda y: dt.date(y, 12, 31))
        return DeadlineSpec(DeadlineKind.DATE, text, due_on=dt.date(year, 12, 31))
    if m := _MONTHS_RE.match(core):
        months = int(m[1])
        if months <= 0:
            raise InvalidInput(f"整改时限 {text!r} must be positive", field="deadline")
        return DeadlineSpec(DeadlineKind.MONTHS, text, months=months)
    limit_text = core.replace("个", "")
    try:
        limit = parse_time_limit(limit_text)
    except InvalidInput:
        raise InvalidInput(
            f"cannot read 整改时限 {text!r}: write a date (2023年6月30日, 2023-06-30, 6月底前), "
            f"a time limit (30个工作日, 3个月内), 长期坚持 or 立行立改",
            field="deadline",
        ) from None
    if limit.remark:
        raise InvalidInput(f"cannot read 整改时限 {text!r}", field="deadline")
    return DeadlineSpec(DeadlineKind.LIMIT, text, limit=limit)


def _infer_year(reference: dt.date | None, text: str, make: Callable[[int], dt.date]) -> int:
    """The year of a date written without one: the first such date on or after the feedback."""
    if reference is None:
        raise InvalidInput(
            f"整改时限 {text!r} has no year and the ledger has no feedback date to take it from",
            field="deadline",
        )
    candidate = make(reference.year)
    return reference.year if candidate >= reference else reference.year + 1


def cn_date_text(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def resolve_deadline(
    spec: DeadlineSpec, *, start: dt.date | None, calendar: WorkingCalendar
) -> tuple[dt.date | None, dt.datetime | None]:
    """The due date (local) and the due instant (aware UTC) of a deadline.

    A date is due at the end of that local day (the item becomes overdue at the next midnight).
    A time limit ("30个工作日") runs on the working calendar from the day after ``start``, the
    feedback date (the day a period starts is not counted): weekends and statutory holidays do
    not count and 调休 make-up days do, so the result is the end of working time on the 30th
    working day after the feedback. "3个月" ends on the same day of the month three months on.
    """
    tz = calendar.tz
    if spec.kind is DeadlineKind.DATE:
        assert spec.due_on is not None
        return spec.due_on, _end_of_local_day(spec.due_on, tz)
    if spec.kind in (DeadlineKind.LIMIT, DeadlineKind.MONTHS):
        if start is None:
            raise InvalidInput(
                f"整改时限 {spec.text!r} counts from the feedback date, which the ledger lacks; "
                f"set the ledger's feedback date or write a date",
                field="deadline",
            )
        if spec.kind is DeadlineKind.MONTHS:
            due = _add_months(start, spec.months)
            return due, _end_of_local_day(due, tz)
        assert spec.limit is not None
        # 开始的当日不计入 (Civil Code art. 201): the count starts the day after the feedback.
        begin = dt.datetime.combine(start + dt.timedelta(days=1), dt.time(0, 0), tzinfo=tz)
        instant = calendar.deadline(begin, spec.limit)
        return calendar.to_local(instant).date(), instant
    return None, None


def _end_of_local_day(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=tz)
    return midnight.astimezone(dt.UTC)


# --------------------------------------------------------------------------------------------
# Snapshots: what statistics, workbooks and bulletins read
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A heading and its paragraph, e.g. "统一思想认识" + what was done (bulletin sections)."""

    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class LedgerFacts:
    id: int
    kind: LedgerKind
    title: str
    subject: str = ""  # 被巡察单位, e.g. 区城市管理委党组
    authority: str = ""  # 统一部署 by, e.g. 海淀区委
    inspection_group: str = ""  # 巡察组, e.g. 区委第四巡察组
    onsite_start: dt.date | None = None
    onsite_end: dt.date | None = None
    feedback_on: dt.date | None = None
    stages: tuple[str, ...] = DEFAULT_STAGES
    bulletin_title: str = ""
    organisation: tuple[TextBlock, ...] = ()  # 一、整改工作组织情况
    next_steps: tuple[TextBlock, ...] = ()  # 下一步工作打算
    as_of: dt.date | None = None  # 截至: the date the counts are stated for
    issuer: str = ""  # 落款
    issued_on: dt.date | None = None
    contact_phone: str = ""
    contact_mailbox: str = ""  # 邮政信箱 (a postal address)
    contact_postcode: str = ""
    contact_email: str = ""


@dataclass(frozen=True, slots=True)
class GroupFacts:
    id: int
    parent_id: int | None
    level: int  # 1 = top (方面 / 检查 / 分类), 2 = 问题
    position: int
    title: str
    held_on: dt.date | None = None  # hazard inspection: date held
    place: str = ""  # hazard inspection: place or enterprise
    inspector: str = ""  # hazard inspection: who inspected
    note: str = ""


@dataclass(frozen=True, slots=True)
class ItemFacts:
    id: int
    group_id: int
    position: int
    content: str
    state: SignoffState = SignoffState.OPEN
    status: ItemStatus = ItemStatus.NOT_STARTED
    responsible_leader: str = ""
    unit_id: int | None = None
    unit_name: str = ""
    co_units: str = ""
    responsible_person: str = ""
    deadline_text: str = ""
    due_on: dt.date | None = None
    due_at: dt.datetime | None = None
    stage: str = ""
    completion: str = ""  # 完成情况
    hazard_class: str = ""
    hazard_level: str = ""
    location: str = ""
    relapse_count: int = 0
    signed_off_at: dt.datetime | None = None

    @property
    def signed_off(self) -> bool:
        return self.state is SignoffState.SIGNED_OFF

    def overdue(self, now: dt.datetime) -> bool:
        """Past its deadline and not signed off (a pending submission is still overdue)."""
        return not self.signed_off and self.due_at is not None and now >= self.due_at


@dataclass(frozen=True)
class LedgerSnapshot:
    """A ledger with its groups and items, each list in document order."""

    ledger: LedgerFacts
    groups: tuple[GroupFacts, ...]
    items: tuple[ItemFacts, ...]
    _children: dict[int | None, list[GroupFacts]] = field(init=False, repr=False, compare=False)
    _items_of: dict[int, list[ItemFacts]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        children: dict[int | None, list[GroupFacts]] = {}
        for g in sorted(self.groups, key=lambda g: (g.level, g.position, g.id)):
            children.setdefault(g.parent_id, []).append(g)
        items_of: dict[int, list[ItemFacts]] = {}
        for i in sorted(self.items, key=lambda i: (i.position, i.id)):
            items_of.setdefault(i.group_id, []).append(i)
        object.__setattr__(self, "_children", children)
        object.__setattr__(self, "_items_of", items_of)

    @property
    def shape(self) -> LedgerShape:
        return SHAPES[self.ledger.kind]

    def top_groups(self) -> list[GroupFacts]:
        return list(self._children.get(None, []))

    def children(self, group_id: int) -> list[GroupFacts]:
        return list(self._children.get(group_id, []))

    def items_of(self, group_id: int) -> list[ItemFacts]:
        return list(self._items_of.get(group_id, []))

    def leaf_groups(self) -> list[GroupFacts]:
        """Groups items hang under (问题 for rectification), in document order."""
        if self.shape.item_level == 1:
            return self.top_groups()
        return [c for top in self.top_groups() for c in self.children(top.id)]

    def ordered_items(self) -> list[ItemFacts]:
        return [i for g in self.leaf_groups() for i in self.items_of(g.id)]

    def top_of(self, group_id: int) -> GroupFacts:
        by_id = {g.id: g for g in self.groups}
        group = by_id[group_id]
        while group.parent_id is not None:
            group = by_id[group.parent_id]
        return group

    def restricted_to(self, visible: Iterable[int]) -> LedgerSnapshot:
        """Only the given items, and only the groups that contain any of them (a department
        operator's share of a ledger)."""
        keep = set(visible)
        items = tuple(i for i in self.items if i.id in keep)
        leafs = {i.group_id for i in items}
        parents = {g.parent_id for g in self.groups if g.id in leafs and g.parent_id is not None}
        groups = tuple(g for g in self.groups if g.id in leafs or g.id in parents)
        return LedgerSnapshot(self.ledger, groups, items)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------

NO_RATE = "—"


def rate(numerator: int, denominator: int) -> Decimal | None:
    """numerator/denominator as a percentage rounded half-up to one decimal; None for 0/0.

    Half-up, not Python's round-half-even: 166/182 = 91.208…% must read 91.2 and 0.25 % must
    read 0.3 %, as a person with a calculator would write it.
    """
    if denominator <= 0:
        return None
    value = Decimal(numerator) * 100 / Decimal(denominator)
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def format_rate(numerator: int, denominator: int) -> str:
    """ "91.2%", or "—" when there is nothing to divide by."""
    value = rate(numerator, denominator)
    return NO_RATE if value is None else f"{value}%"


def problem_done(items: Sequence[ItemFacts]) -> bool:
    """A problem is done when it has measures and every one of them is signed off."""
    return bool(items) and all(i.signed_off for i in items)


@dataclass(frozen=True, slots=True)
class Totals:
    groups_top: int  # 方面 (or inspections / sections)
    groups_leaf: int  # 问题 (equal to groups_top for one-level kinds)
    groups_done: int  # problems whose measures are all signed off
    items: int
    signed_off: int
    pending: int  # submitted or reviewed, waiting for a decision
    relapsed_now: int  # items currently reopened by a look-back
    relapses: int  # relapse events ever (an item that relapsed twice counts twice)
    items_relapsed: int  # items that relapsed at least once
    overdue: int
    ever_signed_off: int  # signed off now, or signed off once and reopened since
    by_status: Mapping[ItemStatus, int]
    by_state: Mapping[SignoffState, int]

    @property
    def groups_remaining(self) -> int:
        return self.groups_leaf - self.groups_done

    @property
    def signoff_rate(self) -> str:
        return format_rate(self.signed_off, self.items)

    @property
    def relapse_rate(self) -> str:
        """Items that relapsed at least once, over items ever signed off."""
        return format_rate(self.items_relapsed, self.ever_signed_off)


def totals(snapshot: LedgerSnapshot, *, now: dt.datetime) -> Totals:
    items = snapshot.ordered_items()
    leafs = snapshot.leaf_groups()
    return Totals(
        groups_top=len(snapshot.top_groups()),
        groups_leaf=len(leafs),
        groups_done=sum(1 for g in leafs if problem_done(snapshot.items_of(g.id))),
        items=len(items),
        signed_off=sum(1 for i in items if i.signed_off),
        pending=sum(1 for i in items if i.state in PENDING_STATES),
        relapsed_now=sum(1 for i in items if i.state is SignoffState.RELAPSED),
        relapses=sum(i.relapse_count for i in items),
        items_relapsed=sum(1 for i in items if i.relapse_count > 0),
        overdue=sum(1 for i in items if i.overdue(now)),
        ever_signed_off=sum(1 for i in items if i.signed_off or i.relapse_count > 0),
        by_status={s: sum(1 for i in items if i.status is s) for s in ItemStatus},
        by_state={s: sum(1 for i in items if i.state is s) for s in SignoffState},
    )


@dataclass(frozen=True, slots=True)
class ProgressRow:
    """One line of a progress table (by aspect, by unit or by stage)."""

    key: str
    label: str
    items: int
    signed_off: int
    pending: int
    overdue: int
    relapsed_now: int
    relapses: int
    groups: int = 0  # by aspect: its problems
    groups_done: int = 0

    @property
    def remaining(self) -> int:
        return self.items - self.signed_off

    @property
    def signoff_rate(self) -> str:
        return format_rate(self.signed_off, self.items)


def _row(key: str, label: str, items: Sequence[ItemFacts], now: dt.datetime) -> ProgressRow:
    return ProgressRow(
        key=key,
        label=label,
        items=len(items),
        signed_off=sum(1 for i in items if i.signed_off),
        pending=sum(1 for i in items if i.state in PENDING_STATES),
        overdue=sum(1 for i in items if i.overdue(now)),
        relapsed_now=sum(1 for i in items if i.state is SignoffState.RELAPSED),
        relapses=sum(i.relapse_count for i in items),
    )


def progress_by_top_group(snapshot: LedgerSnapshot, *, now: dt.datetime) -> list[ProgressRow]:
    """By aspect (方面) — or by inspection / section for one-level kinds."""
    rows = []
    for top in snapshot.top_groups():
        leafs = [top] if snapshot.shape.item_level == 1 else snapshot.children(top.id)
        items = [i for leaf in leafs for i in snapshot.items_of(leaf.id)]
        row = _row(str(top.id), top.title, items, now)
        done = sum(1 for leaf in leafs if problem_done(snapshot.items_of(leaf.id)))
        rows.append(replace(row, groups=len(leafs), groups_done=done))
    return rows


def progress_by_unit(snapshot: LedgerSnapshot, *, now: dt.datetime) -> list[ProgressRow]:
    """By responsible unit, in the order units first appear in the ledger; items without a
    unit come last as 未指定."""
    buckets: dict[int | None, list[ItemFacts]] = {}
    names: dict[int | None, str] = {None: "未指定责任单位"}
    for item in snapshot.ordered_items():
        buckets.setdefault(item.unit_id, []).append(item)
        if item.unit_id is not None:
            names[item.unit_id] = item.unit_name
    keys = [k for k in buckets if k is not None] + ([None] if None in buckets else [])
    return [_row("" if k is None else str(k), names[k], buckets[k], now) for k in keys]


def progress_by_stage(snapshot: LedgerSnapshot, *, now: dt.datetime) -> list[ProgressRow]:
    """By stage, in the ledger's stage order (every stage listed, even an empty one)."""
    items = snapshot.ordered_items()
    rows = [
        _row(stage, stage, [i for i in items if i.stage == stage], now)
        for stage in snapshot.ledger.stages
    ]
    unstaged = [i for i in items if i.stage not in snapshot.ledger.stages]
    if unstaged:
        rows.append(_row("", "未分阶段", unstaged, now))
    return rows


def overdue_items(snapshot: LedgerSnapshot, *, now: dt.datetime) -> list[ItemFacts]:
    """Overdue items, the most overdue first."""
    late = [i for i in snapshot.ordered_items() if i.overdue(now)]
    return sorted(late, key=lambda i: (i.due_at or now, i.position, i.id))


# --- hazard statistics ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HazardStats:
    """The seeds' four numbers: inspections held, hazards found, rectified, rectification rate.

    A hazard counts as rectified when it is signed off, i.e. its rectification was verified:
    "已整改" in a public statement is a claim someone checked.
    """

    since: dt.date | None
    inspections: int
    found: int
    rectified: int
    by_level: Mapping[str, int]

    @property
    def rate(self) -> str:
        return format_rate(self.rectified, self.found)

    def sentence(self) -> str:
        """ "4月18日以来，累计开展检查213次，发现一般安全隐患182项，已整改166项，整改率91.2%"."""
        found_words = "发现安全隐患"
        if self.found and self.by_level.get("一般", 0) == self.found:
            found_words = "发现一般安全隐患"
        major = self.by_level.get("重大", 0)
        major_note = f"（其中重大隐患{major}项）" if major else ""
        head = f"{self.since.month}月{self.since.day}日以来，" if self.since else ""
        return (
            f"{head}累计开展检查{self.inspections}次，{found_words}{self.found}项{major_note}，"
            f"已整改{self.rectified}项，整改率{self.rate}"
        )


def hazard_stats(snapshot: LedgerSnapshot, *, since: dt.date | None = None) -> HazardStats:
    """Counts over inspections held on or after ``since`` (all when None)."""
    inspections = [
        g
        for g in snapshot.top_groups()
        if since is None or (g.held_on is not None and g.held_on >= since)
    ]
    hazards = [i for g in inspections for i in snapshot.items_of(g.id)]
    levels = Counter(i.hazard_level or "一般" for i in hazards)
    return HazardStats(
        since=since,
        inspections=len(inspections),
        found=len(hazards),
        rectified=sum(1 for i in hazards if i.signed_off),
        by_level=dict(levels),
    )


# --------------------------------------------------------------------------------------------
# Progress over time (挂图作战)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFacts:
    """One sign-off event of an item (the ``ledger_item_event`` rows)."""

    item_id: int
    at: dt.datetime
    to_state: SignoffState


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    day: dt.date
    signed_off: int  # items signed off at the end of that day
    groups_done: int  # problems done at the end of that day


def progress_timeline(
    snapshot: LedgerSnapshot,
    events: Iterable[EventFacts],
    *,
    tz: dt.tzinfo,
    until: dt.date | None = None,
) -> list[TimelinePoint]:
    """Signed-off items and done problems at the end of each day that had an event.

    Replays the events, so a relapse takes an item (and its problem) back out of the count on
    the day it happened. A problem counts as done on a day when every measure it has *now* was
    signed off at the end of that day. ``until`` adds a last point (today) so the line reaches
    the present.
    """
    by_day: dict[dt.date, list[EventFacts]] = {}
    for event in sorted(events, key=lambda e: e.at):
        by_day.setdefault(event.at.astimezone(tz).date(), []).append(event)
    leaf_items = {g.id: [i.id for i in snapshot.items_of(g.id)] for g in snapshot.leaf_groups()}
    state: dict[int, SignoffState] = {}
    points = []
    days = sorted(by_day)
    if until is not None and (not days or until > days[-1]):
        days.append(until)
    for day in days:
        for event in by_day.get(day, []):
            state[event.item_id] = event.to_state
        signed = {i for i, s in state.items() if s is SignoffState.SIGNED_OFF}
        done = sum(1 for ids in leaf_items.values() if ids and all(i in signed for i in ids))
        points.append(TimelinePoint(day=day, signed_off=len(signed), groups_done=done))
    return points
