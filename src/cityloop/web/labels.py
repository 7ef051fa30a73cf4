"""Display names of the domain's enums, in English source form, translated per request.

Each entry is a (context, English) pair marked with ``NP_`` so the extractor picks it up with its
context ("state", "action", ...): the same English word may need different Chinese in two
places. The Chinese of states, actions, roles, steps, satisfaction and families must equal the
domain's own ``*_LABELS_ZH`` tables; a unit test holds the catalog to that.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from cityloop.cases.domain import CaseAction, CaseState, Channel, Satisfaction, Step
from cityloop.catalog.domain import Family
from cityloop.evaluation.config import SolvedRule, Subject
from cityloop.ledgers.domain import ItemStatus, LedgerKind, SignoffAction, SignoffState
from cityloop.org.domain import DepartmentKind, Role
from cityloop.web.i18n import Translator
from cityloop.workcal.domain import Light
from cityloop.workcal.schedule import DayKind


def NP_(context: str, message: str) -> tuple[str, str]:
    """Mark a (context, message) pair for extraction."""
    return context, message


STATE: Mapping[CaseState, tuple[str, str]] = {
    CaseState.REPORTED: NP_("state", "Awaiting intake"),
    CaseState.VERIFYING: NP_("state", "Being verified"),
    CaseState.NOT_FOUND: NP_("state", "Not found on site"),
    CaseState.VERIFIED: NP_("state", "Awaiting filing"),
    CaseState.FILED: NP_("state", "Awaiting dispatch"),
    CaseState.DISPATCHED: NP_("state", "Being handled"),
    CaseState.RETURN_REQUESTED: NP_("state", "Return requested"),
    CaseState.EXTENSION_REQUESTED: NP_("state", "Extension requested"),
    CaseState.SUSPEND_REQUESTED: NP_("state", "Suspension requested"),
    CaseState.SUSPENDED: NP_("state", "Suspended"),
    CaseState.DISPOSED: NP_("state", "Awaiting check"),
    CaseState.CHECKING: NP_("state", "Being checked"),
    CaseState.CHECKED: NP_("state", "Awaiting closing"),
    CaseState.SELF_HANDLED: NP_("state", "Self-handled, awaiting audit"),
    CaseState.VOID_REQUESTED: NP_("state", "Void requested"),
    CaseState.CLOSED: NP_("state", "Closed"),
    CaseState.DECLINED: NP_("state", "Declined"),
    CaseState.NOT_ACCEPTED: NP_("state", "Not accepted"),
    CaseState.VOIDED: NP_("state", "Voided"),
}

ACTION: Mapping[CaseAction, tuple[str, str]] = {
    CaseAction.REPORT: NP_("action", "Report"),
    CaseAction.SEND_VERIFY: NP_("action", "Send for verification"),
    CaseAction.VERIFY_FOUND: NP_("action", "Verified: found"),
    CaseAction.VERIFY_NOT_FOUND: NP_("action", "Verified: not found"),
    CaseAction.FILE: NP_("action", "File"),
    CaseAction.DECLINE: NP_("action", "Decline"),
    CaseAction.NOT_ACCEPT: NP_("action", "Do not accept"),
    CaseAction.DISPATCH: NP_("action", "Dispatch"),
    CaseAction.REQUEST_RETURN: NP_("action", "Request return"),
    CaseAction.APPROVE_RETURN: NP_("action", "Approve return"),
    CaseAction.REJECT_RETURN: NP_("action", "Reject return"),
    CaseAction.REQUEST_EXTENSION: NP_("action", "Request extension"),
    CaseAction.APPROVE_EXTENSION: NP_("action", "Approve extension"),
    CaseAction.REJECT_EXTENSION: NP_("action", "Reject extension"),
    CaseAction.REQUEST_SUSPEND: NP_("action", "Request suspension"),
    CaseAction.APPROVE_SUSPEND: NP_("action", "Approve suspension"),
    CaseAction.REJECT_SUSPEND: NP_("action", "Reject suspension"),
    CaseAction.RESUME: NP_("action", "Resume"),
    CaseAction.DISPOSE: NP_("action", "Disposal feedback"),
    CaseAction.SEND_CHECK: NP_("action", "Send for check"),
    CaseAction.CHECK_PASS: NP_("action", "Check passed"),
    CaseAction.CHECK_FAIL: NP_("action", "Check failed (rework)"),
    CaseAction.CLOSE: NP_("action", "Close"),
    CaseAction.REQUEST_VOID: NP_("action", "Request void"),
    CaseAction.APPROVE_VOID: NP_("action", "Approve void"),
    CaseAction.REJECT_VOID: NP_("action", "Reject void"),
    CaseAction.SELF_HANDLE: NP_("action", "Self-handle"),
    CaseAction.URGE: NP_("action", "Urge"),
    CaseAction.CALLBACK: NP_("action", "Callback"),
}

ROLE: Mapping[Role, tuple[str, str]] = {
    Role.INSPECTOR: NP_("role", "Inspector"),
    Role.INTAKE_OPERATOR: NP_("role", "Intake operator"),
    Role.SHIFT_SUPERVISOR: NP_("role", "Shift supervisor"),
    Role.DISPATCHER: NP_("role", "Dispatcher"),
    Role.DEPARTMENT_OPERATOR: NP_("role", "Department operator"),
    Role.LEADER: NP_("role", "Leader"),
    Role.ADMIN: NP_("role", "Administrator"),
}

CHANNEL: Mapping[Channel, tuple[str, str]] = {
    Channel.INSPECTOR: NP_("channel", "Inspector report"),
    Channel.HOTLINE_12345: NP_("channel", "12345 hotline"),
    Channel.HOTLINE_12319: NP_("channel", "12319 hotline"),
    Channel.PUBLIC_WEB: NP_("channel", "Public (web)"),
    Channel.OPEN311: NP_("channel", "Open311"),
    Channel.SENSOR: NP_("channel", "Video / sensor"),
    Channel.HIGHER_AUTHORITY: NP_("channel", "Higher authority"),
    Channel.SELF_FOUND: NP_("channel", "Found by staff"),
}

SATISFACTION: Mapping[Satisfaction, tuple[str, str]] = {
    Satisfaction.SATISFIED: NP_("satisfaction", "Satisfied"),
    Satisfaction.BASICALLY_SATISFIED: NP_("satisfaction", "Basically satisfied"),
    Satisfaction.DISSATISFIED: NP_("satisfaction", "Dissatisfied"),
}

STEP: Mapping[Step, tuple[str, str]] = {
    Step.SEND_VERIFY: NP_("step", "Send for verification"),
    Step.VERIFY: NP_("step", "Verification"),
    Step.FILE: NP_("step", "Filing"),
    Step.DISPATCH: NP_("step", "Dispatch"),
    Step.DISPOSE: NP_("step", "Disposal"),
    Step.SEND_CHECK: NP_("step", "Send for check"),
    Step.CHECK: NP_("step", "Check"),
    Step.CLOSE: NP_("step", "Closing"),
}

LIGHT: Mapping[Light, tuple[str, str]] = {
    Light.GREEN: NP_("light", "On time"),
    Light.YELLOW: NP_("light", "Warning"),
    Light.RED: NP_("light", "Overdue"),
}

DEPARTMENT_KIND: Mapping[DepartmentKind, tuple[str, str]] = {
    DepartmentKind.CENTRE: NP_("department kind", "Supervision and command centre"),
    DepartmentKind.HANDLING: NP_("department kind", "Handling department"),
    DepartmentKind.SUBDISTRICT: NP_("department kind", "Subdistrict"),
    DepartmentKind.COMMUNITY: NP_("department kind", "Community"),
}

FAMILY: Mapping[Family, tuple[str, str]] = {
    Family.COMPONENT: NP_("family", "Component"),
    Family.EVENT: NP_("family", "Event"),
}

DAY_KIND: Mapping[DayKind, tuple[str, str]] = {
    DayKind.HOLIDAY: NP_("day kind", "Holiday"),
    DayKind.WORKDAY: NP_("day kind", "Working day"),
}

# What a citizen sees of the timeline: the milestones, worded for the public. Internal steps
# (sending tasks, requests and their approvals, urges) are left out: they name no outcome the
# citizen can act on, and their reasons may name staff.
PUBLIC_MILESTONE: Mapping[CaseAction, tuple[str, str]] = {
    CaseAction.REPORT: NP_("public", "Report received"),
    CaseAction.VERIFY_FOUND: NP_("public", "Confirmed on site"),
    CaseAction.VERIFY_NOT_FOUND: NP_("public", "Not found on site"),
    CaseAction.FILE: NP_("public", "Accepted as a case"),
    CaseAction.DECLINE: NP_("public", "Not accepted as a case"),
    CaseAction.NOT_ACCEPT: NP_("public", "Not accepted"),
    CaseAction.DISPATCH: NP_("public", "Sent to the responsible department"),
    CaseAction.APPROVE_RETURN: NP_("public", "Being reassigned"),
    CaseAction.APPROVE_EXTENSION: NP_("public", "More time granted for handling"),
    CaseAction.APPROVE_SUSPEND: NP_("public", "Put on hold"),
    CaseAction.RESUME: NP_("public", "Handling resumed"),
    CaseAction.DISPOSE: NP_("public", "Handled by the department"),
    CaseAction.CHECK_PASS: NP_("public", "Result checked on site"),
    CaseAction.CHECK_FAIL: NP_("public", "Sent back for rework"),
    CaseAction.SELF_HANDLE: NP_("public", "Fixed on site"),
    CaseAction.CLOSE: NP_("public", "Closed"),
    CaseAction.APPROVE_VOID: NP_("public", "Closed as a duplicate or invalid report"),
    CaseAction.CALLBACK: NP_("public", "Follow-up call made"),
}

# The status a citizen sees: coarser than the staff states.
PUBLIC_STATUS: Mapping[CaseState, tuple[str, str]] = {
    **{
        s: NP_("public status", "Received")
        for s in (CaseState.REPORTED, CaseState.VERIFYING, CaseState.NOT_FOUND)
    },
    CaseState.VERIFIED: NP_("public status", "Confirmed, awaiting acceptance"),
    CaseState.FILED: NP_("public status", "Accepted, being assigned"),
    **{
        s: NP_("public status", "Being handled")
        for s in (
            CaseState.DISPATCHED,
            CaseState.RETURN_REQUESTED,
            CaseState.EXTENSION_REQUESTED,
            CaseState.SUSPEND_REQUESTED,
            CaseState.VOID_REQUESTED,
        )
    },
    CaseState.SUSPENDED: NP_("public status", "On hold"),
    **{
        s: NP_("public status", "Handled, being checked")
        for s in (
            CaseState.DISPOSED,
            CaseState.CHECKING,
            CaseState.CHECKED,
            CaseState.SELF_HANDLED,
        )
    },
    CaseState.CLOSED: NP_("public status", "Closed"),
    CaseState.DECLINED: NP_("public status", "Not accepted"),
    CaseState.NOT_ACCEPTED: NP_("public status", "Not accepted"),
    CaseState.VOIDED: NP_("public status", "Closed as invalid"),
}

# Ledgers (整改台账). The Chinese equals the ledgers domain's own labels (a unit test checks).
LEDGER_KIND: Mapping[LedgerKind, tuple[str, str]] = {
    LedgerKind.RECTIFICATION: NP_("ledger kind", "Inspection rectification ledger"),
    LedgerKind.HAZARD: NP_("ledger kind", "Hazard survey ledger"),
    LedgerKind.CHECKLIST: NP_("ledger kind", "Checklist ledger"),
}

LEDGER_STATUS: Mapping[ItemStatus, tuple[str, str]] = {
    ItemStatus.NOT_STARTED: NP_("ledger status", "Not started"),
    ItemStatus.IN_PROGRESS: NP_("ledger status", "In progress"),
    ItemStatus.DONE: NP_("ledger status", "Done"),
    ItemStatus.LONG_TERM: NP_("ledger status", "Long-term"),
}

LEDGER_STATE: Mapping[SignoffState, tuple[str, str]] = {
    SignoffState.OPEN: NP_("ledger state", "Being rectified"),
    SignoffState.SUBMITTED: NP_("ledger state", "Awaiting review"),
    SignoffState.REVIEWED: NP_("ledger state", "Awaiting approval"),
    SignoffState.SIGNED_OFF: NP_("ledger state", "Signed off"),
    SignoffState.RETURNED: NP_("ledger state", "Returned"),
    SignoffState.RELAPSED: NP_("ledger state", "Relapsed"),
}

LEDGER_ACTION: Mapping[SignoffAction, tuple[str, str]] = {
    SignoffAction.SUBMIT: NP_("ledger action", "Apply for sign-off"),
    SignoffAction.REVIEW: NP_("ledger action", "Pass the review"),
    SignoffAction.APPROVE: NP_("ledger action", "Approve the sign-off"),
    SignoffAction.REJECT: NP_("ledger action", "Return"),
    SignoffAction.CONFIRM: NP_("ledger action", "Look-back: it holds"),
    SignoffAction.RELAPSE: NP_("ledger action", "Look-back: relapsed"),
}

# Evaluation (综合评价). The Chinese of the indicators equals ``evaluation.domain.INDICATORS``
# own ``label_zh`` (a unit test checks); the volume score is the composites' pseudo-indicator.
INDICATOR: Mapping[str, tuple[str, str]] = {
    "filed": NP_("indicator", "Cases filed"),
    "due_disposal": NP_("indicator", "Due for disposal"),
    "disposal_rate": NP_("indicator", "Disposal rate"),
    "on_time_disposal_rate": NP_("indicator", "On-time disposal rate"),
    "closing_rate": NP_("indicator", "Closing rate"),
    "on_time_closing_rate": NP_("indicator", "On-time closing rate"),
    "rework_rate": NP_("indicator", "Rework rate"),
    "satisfaction_rate": NP_("indicator", "Satisfaction rate"),
    "audit_pass_rate": NP_("indicator", "Audit pass rate"),
    "valid_report_rate": NP_("indicator", "Valid report rate"),
    "missed_report_rate": NP_("indicator", "Missed report rate"),
    "on_time_verify_rate": NP_("indicator", "On-time verification rate"),
    "on_time_check_rate": NP_("indicator", "On-time check rate"),
    "on_time_send_verify_rate": NP_("indicator", "On-time verification sending rate"),
    "on_time_send_check_rate": NP_("indicator", "On-time check sending rate"),
    "on_time_filing_rate": NP_("indicator", "On-time filing rate"),
    "accurate_filing_rate": NP_("indicator", "Accurate filing rate"),
    "on_time_close_rate": NP_("indicator", "On-time close rate"),
    "on_time_dispatch_rate": NP_("indicator", "On-time dispatch rate"),
    "accurate_dispatch_rate": NP_("indicator", "Accurate dispatch rate"),
    "volume_score": NP_("indicator", "Volume score"),
}

SUBJECT: Mapping[Subject, tuple[str, str]] = {
    Subject.DEPARTMENT: NP_("subject", "Handling departments"),
    Subject.SUBDISTRICT: NP_("subject", "Subdistricts"),
    Subject.COMMUNITY: NP_("subject", "Communities"),
    Subject.INSPECTOR: NP_("subject", "Inspectors"),
    Subject.INTAKE_OPERATOR: NP_("subject", "Intake operators"),
    Subject.SHIFT_SUPERVISOR: NP_("subject", "Shift supervisors"),
    Subject.DISPATCHER: NP_("subject", "Dispatchers"),
}

SOLVED_RULE: Mapping[SolvedRule, tuple[str, str]] = {
    SolvedRule.CLOSED_NOT_DISSATISFIED: NP_(
        "solved rule", "Closed, and the callback is not dissatisfied"
    ),
    SolvedRule.CLOSED_AND_SATISFIED: NP_(
        "solved rule", "Closed, and satisfied or basically satisfied at the callback"
    ),
    SolvedRule.CLOSED: NP_("solved rule", "Closed"),
}

AUDIT_OUTCOME: Mapping[str, tuple[str, str]] = {
    "pass": NP_("audit outcome", "Passed"),
    "fail": NP_("audit outcome", "Failed"),
    "pending": NP_("audit outcome", "Pending"),
}

TABLES: Mapping[str, Mapping[Any, tuple[str, str]]] = {
    "state": STATE,
    "action": ACTION,
    "role": ROLE,
    "channel": CHANNEL,
    "satisfaction": SATISFACTION,
    "step": STEP,
    "light": LIGHT,
    "department_kind": DEPARTMENT_KIND,
    "family": FAMILY,
    "day_kind": DAY_KIND,
    "public_milestone": PUBLIC_MILESTONE,
    "public_status": PUBLIC_STATUS,
    "ledger_kind": LEDGER_KIND,
    "ledger_status": LEDGER_STATUS,
    "ledger_state": LEDGER_STATE,
    "ledger_action": LEDGER_ACTION,
    "indicator": INDICATOR,
    "subject": SUBJECT,
    "solved_rule": SOLVED_RULE,
    "audit_outcome": AUDIT_OUTCOME,
}


class Labels:
    """``labels("state", "filed")`` -> the display name in the request's language."""

    def __init__(self, translator: Translator) -> None:
        self.t = translator

    def __call__(self, kind: str, value: StrEnum | str | None) -> str:
        if value is None or value == "":
            return ""
        entry = TABLES[kind].get(str(value))
        if entry is None:
            return str(value)
        return self.t.pgettext(*entry)

    def choices(self, kind: str) -> list[tuple[str, str]]:
        """(value, label) pairs in the enum's order, for a select."""
        return [(str(k), self.t.pgettext(*v)) for k, v in TABLES[kind].items()]
