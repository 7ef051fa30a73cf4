"""Whole paths through the loop, walked one action at a time as a user would.

``Walk`` is a minimal stand-in for the service layer: it applies each ``Transition`` to the
state and the counters in ``CaseFacts`` and logs the clock effects, so a test reads as the
story of one case.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from cityloop.cases.domain import (
    DEFAULT_POLICY,
    CaseAction,
    CaseFacts,
    CaseState,
    Channel,
    ClockEffect,
    LoopPolicy,
    Step,
    Transition,
    allowed_actions,
    callback_pending,
    decide,
    decide_report,
)
from cityloop.errors import RuleViolation
from cityloop.org.domain import Role

A = CaseAction
S = CaseState
INSPECTOR = Role.INSPECTOR
INTAKE = Role.INTAKE_OPERATOR
SUPERVISOR = Role.SHIFT_SUPERVISOR
DISPATCHER = Role.DISPATCHER
DEPARTMENT = Role.DEPARTMENT_OPERATOR
LEADER = Role.LEADER


@dataclass
class Walk:
    """One case: its state, its counters and what happened to its clock."""

    state: CaseState
    facts: CaseFacts
    policy: LoopPolicy = DEFAULT_POLICY
    clocks: list[Step | ClockEffect] = field(default_factory=list)
    history: list[Transition] = field(default_factory=list)

    @classmethod
    def report(
        cls, channel: Channel, role: Role | None, policy: LoopPolicy = DEFAULT_POLICY
    ) -> Walk:
        transition = decide_report(channel, role, policy)
        walk = cls(transition.to_state, CaseFacts(channel=channel), policy)
        walk._log(transition)
        return walk

    def act(self, action: CaseAction, role: Role) -> Transition:
        transition = decide(self.state, action, role, self.facts, self.policy)
        facts = self.facts
        if transition.extends:
            facts = replace(facts, extension_count=facts.extension_count + 1)
        if transition.increments_suspension:
            facts = replace(facts, suspend_count=facts.suspend_count + 1)
        if transition.increments_rework:
            facts = replace(facts, rework_count=facts.rework_count + 1)
        if transition.records_callback:
            facts = replace(facts, callback_count=facts.callback_count + 1)
        if transition.records_state_before_void:
            facts = replace(facts, state_before_void=transition.from_state)
        elif transition.from_state == CaseState.VOID_REQUESTED:
            facts = replace(facts, state_before_void=None)
        self.facts = facts
        self.state = transition.to_state
        self._log(transition)
        return transition

    def steps(self, *moves: tuple[CaseAction, Role]) -> None:
        for action, role in moves:
            self.act(action, role)

    def _log(self, transition: Transition) -> None:
        self.history.append(transition)
        started = transition.starts_clock
        self.clocks.append(started if started is not None else transition.clock)


VERIFY = ((A.SEND_VERIFY, INTAKE), (A.VERIFY_FOUND, INSPECTOR))
FILE_AND_DISPATCH = ((A.FILE, SUPERVISOR), (A.DISPATCH, DISPATCHER))
CHECK_AND_CLOSE = (
    (A.DISPOSE, DEPARTMENT),
    (A.SEND_CHECK, INTAKE),
    (A.CHECK_PASS, INSPECTOR),
    (A.CLOSE, SUPERVISOR),
)


def dispatched_case(channel: Channel = Channel.HOTLINE_12345) -> Walk:
    walk = Walk.report(channel, INTAKE)
    walk.steps(*VERIFY, *FILE_AND_DISPATCH)
    assert walk.state == S.DISPATCHED
    return walk


def test_normal_path_runs_every_step_clock_in_order() -> None:
    walk = Walk.report(Channel.HOTLINE_12345, INTAKE)
    assert walk.state == S.REPORTED
    walk.steps(*VERIFY, *FILE_AND_DISPATCH, *CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED
    assert [t.to_state for t in walk.history] == [
        S.REPORTED,
        S.VERIFYING,
        S.VERIFIED,
        S.FILED,
        S.DISPATCHED,
        S.DISPOSED,
        S.CHECKING,
        S.CHECKED,
        S.CLOSED,
    ]
    assert walk.clocks == [
        Step.SEND_VERIFY,
        Step.VERIFY,
        Step.FILE,
        Step.DISPATCH,
        Step.DISPOSE,
        Step.SEND_CHECK,
        Step.CHECK,
        Step.CLOSE,
        ClockEffect.STOP,
    ]


def test_inspector_report_skips_verification_and_goes_to_filing() -> None:
    walk = Walk.report(Channel.INSPECTOR, INSPECTOR)
    assert walk.state == S.VERIFIED
    assert walk.clocks == [Step.FILE]
    with pytest.raises(RuleViolation):
        walk.act(A.SEND_VERIFY, INTAKE)
    walk.steps(*FILE_AND_DISPATCH, *CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED


def test_return_is_approved_and_the_case_is_dispatched_again() -> None:
    walk = dispatched_case()
    request = walk.act(A.REQUEST_RETURN, DEPARTMENT)
    assert walk.state == S.RETURN_REQUESTED
    assert request.clock == ClockEffect.KEEP  # asking does not stop the department's clock
    approval = walk.act(A.APPROVE_RETURN, DISPATCHER)
    assert walk.state == S.FILED
    assert approval.counts_return
    assert approval.starts_clock == Step.DISPATCH
    redispatch = walk.act(A.DISPATCH, DISPATCHER)
    assert redispatch.starts_clock == Step.DISPOSE  # the new department gets a fresh limit
    walk.steps(*CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED


def test_rejected_return_keeps_the_same_department_and_clock() -> None:
    walk = dispatched_case()
    walk.act(A.REQUEST_RETURN, DEPARTMENT)
    rejection = walk.act(A.REJECT_RETURN, DISPATCHER)
    assert walk.state == S.DISPATCHED
    assert rejection.clock == ClockEffect.KEEP
    assert not rejection.counts_return


def test_extension_twice_then_refused() -> None:
    walk = dispatched_case()
    for expected_count in (1, 2):
        walk.act(A.REQUEST_EXTENSION, DEPARTMENT)
        assert walk.state == S.EXTENSION_REQUESTED
        approval = walk.act(A.APPROVE_EXTENSION, DISPATCHER)
        assert approval.extends
        assert approval.starts_clock is None  # the deadline moves; the clock is not restarted
        assert walk.facts.extension_count == expected_count
    assert A.REQUEST_EXTENSION not in allowed_actions(walk.state, DEPARTMENT, walk.facts)
    with pytest.raises(RuleViolation) as caught:
        walk.act(A.REQUEST_EXTENSION, DEPARTMENT)
    assert "2 of at most 2" in caught.value.message
    assert "'request_extension'" in caught.value.message
    walk.steps(*CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED


def test_rejected_extension_does_not_use_up_an_extension() -> None:
    walk = dispatched_case()
    walk.act(A.REQUEST_EXTENSION, DEPARTMENT)
    rejection = walk.act(A.REJECT_EXTENSION, DISPATCHER)
    assert walk.state == S.DISPATCHED
    assert not rejection.extends
    assert walk.facts.extension_count == 0


def test_suspension_pauses_resume_restarts_and_a_second_suspension_is_refused() -> None:
    walk = dispatched_case()
    walk.act(A.REQUEST_SUSPEND, DEPARTMENT)
    approval = walk.act(A.APPROVE_SUSPEND, DISPATCHER)
    assert walk.state == S.SUSPENDED
    assert approval.pauses_clock
    assert walk.facts.suspend_count == 1
    assert allowed_actions(walk.state, DEPARTMENT, walk.facts) == [A.RESUME]
    resumed = walk.act(A.RESUME, DISPATCHER)
    assert walk.state == S.DISPATCHED
    assert resumed.resumes_clock
    with pytest.raises(RuleViolation, match="already suspended 1 time"):
        walk.act(A.REQUEST_SUSPEND, DEPARTMENT)
    walk.steps(*CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED


def test_the_department_may_resume_its_own_suspended_case() -> None:
    walk = dispatched_case()
    walk.steps((A.REQUEST_SUSPEND, DEPARTMENT), (A.APPROVE_SUSPEND, DISPATCHER))
    assert walk.act(A.RESUME, DEPARTMENT).to_state == S.DISPATCHED


def test_rejected_suspension_keeps_the_clock_running() -> None:
    walk = dispatched_case()
    walk.act(A.REQUEST_SUSPEND, DEPARTMENT)
    rejection = walk.act(A.REJECT_SUSPEND, DISPATCHER)
    assert walk.state == S.DISPATCHED
    assert rejection.clock == ClockEffect.KEEP
    assert walk.facts.suspend_count == 0


def test_failed_check_sends_the_case_back_to_the_same_department_for_rework() -> None:
    walk = dispatched_case()
    walk.steps((A.DISPOSE, DEPARTMENT), (A.SEND_CHECK, INTAKE))
    failure = walk.act(A.CHECK_FAIL, INSPECTOR)
    assert walk.state == S.DISPATCHED
    assert failure.increments_rework
    assert failure.starts_clock == Step.DISPOSE
    assert not failure.counts_return  # the department keeps the case
    assert walk.facts.rework_count == 1
    walk.steps(*CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED
    assert walk.facts.rework_count == 1


def test_void_is_requested_and_approved() -> None:
    walk = Walk.report(Channel.PUBLIC_WEB, None)
    request = walk.act(A.REQUEST_VOID, INTAKE)
    assert walk.state == S.VOID_REQUESTED
    assert request.pauses_clock
    assert walk.facts.state_before_void == S.REPORTED
    approval = walk.act(A.APPROVE_VOID, SUPERVISOR)
    assert walk.state == S.VOIDED
    assert approval.stops_clock
    assert allowed_actions(walk.state, LEADER, walk.facts) == []


def test_rejected_void_returns_to_where_the_case_was_and_resumes_its_clock() -> None:
    walk = dispatched_case()
    walk.act(A.REQUEST_VOID, DISPATCHER)
    rejection = walk.act(A.REJECT_VOID, SUPERVISOR)
    assert walk.state == S.DISPATCHED
    assert rejection.resumes_clock
    assert walk.facts.state_before_void is None
    walk.steps(*CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED


def test_the_department_cannot_ask_for_voiding() -> None:
    walk = dispatched_case()
    with pytest.raises(RuleViolation, match="not allowed for role 'department_operator'"):
        walk.act(A.REQUEST_VOID, DEPARTMENT)


def test_self_handled_inspector_report_is_audited_then_closed() -> None:
    walk = Walk.report(Channel.INSPECTOR, INSPECTOR)
    handled = walk.act(A.SELF_HANDLE, INSPECTOR)
    assert walk.state == S.SELF_HANDLED
    assert handled.starts_clock == Step.CLOSE
    walk.act(A.CLOSE, SUPERVISOR)
    assert walk.state == S.CLOSED


def test_self_handled_while_verifying_a_public_report() -> None:
    walk = Walk.report(Channel.HOTLINE_12345, INTAKE)
    walk.steps((A.SEND_VERIFY, INTAKE), (A.SELF_HANDLE, INSPECTOR), (A.CLOSE, SUPERVISOR))
    assert walk.state == S.CLOSED
    assert callback_pending(walk.state, walk.facts)  # the citizen is still called back


def test_self_handling_refused_at_audit_is_filed_for_dispatch() -> None:
    walk = Walk.report(Channel.INSPECTOR, INSPECTOR)
    walk.steps((A.SELF_HANDLE, INSPECTOR), (A.FILE, SUPERVISOR))
    assert walk.state == S.FILED
    walk.steps((A.DISPATCH, DISPATCHER), *CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED


def test_an_inspector_cannot_self_handle_someone_elses_report_before_verifying() -> None:
    walk = Walk.report(Channel.HOTLINE_12345, INTAKE)
    assert A.SELF_HANDLE not in allowed_actions(walk.state, INSPECTOR, walk.facts)
    with pytest.raises(RuleViolation, match="inspector's own report"):
        walk.act(A.SELF_HANDLE, INSPECTOR)


@pytest.mark.parametrize(
    "channel",
    [Channel.HOTLINE_12345, Channel.HOTLINE_12319, Channel.PUBLIC_WEB, Channel.OPEN311],
)
def test_callback_once_after_close_for_public_channels(channel: Channel) -> None:
    walk = Walk.report(channel, INTAKE)
    walk.steps(*VERIFY, *FILE_AND_DISPATCH, (A.DISPOSE, DEPARTMENT))
    assert not callback_pending(walk.state, walk.facts)
    with pytest.raises(RuleViolation, match="not possible in state 'disposed'"):
        walk.act(A.CALLBACK, INTAKE)
    walk.steps(*CHECK_AND_CLOSE[1:])
    assert callback_pending(walk.state, walk.facts)
    callback = walk.act(A.CALLBACK, INTAKE)
    assert walk.state == S.CLOSED
    assert callback.records_callback
    assert not callback.changes_state
    assert not callback_pending(walk.state, walk.facts)
    with pytest.raises(RuleViolation, match="1 of at most 1 callback"):
        walk.act(A.CALLBACK, INTAKE)


@pytest.mark.parametrize(
    ("channel", "role"),
    [
        (Channel.INSPECTOR, INSPECTOR),
        (Channel.SENSOR, None),
        (Channel.HIGHER_AUTHORITY, INTAKE),
        (Channel.SELF_FOUND, DEPARTMENT),
    ],
)
def test_no_callback_for_cases_no_citizen_reported(channel: Channel, role: Role | None) -> None:
    walk = Walk.report(channel, role)
    if walk.state == S.REPORTED:
        walk.steps(*VERIFY)
    walk.steps(*FILE_AND_DISPATCH, *CHECK_AND_CLOSE)
    assert walk.state == S.CLOSED
    assert not callback_pending(walk.state, walk.facts)
    with pytest.raises(RuleViolation, match=f"channel '{channel.value}' get no callback"):
        walk.act(A.CALLBACK, INTAKE)


def test_decline_after_verification() -> None:
    walk = Walk.report(Channel.PUBLIC_WEB, None)
    walk.steps(*VERIFY, (A.DECLINE, SUPERVISOR))
    assert walk.state == S.DECLINED
    assert walk.clocks[-1] == ClockEffect.STOP


@pytest.mark.parametrize(
    "channel", [Channel.HOTLINE_12345, Channel.INSPECTOR], ids=["from_intake", "from_filing"]
)
def test_not_accept(channel: Channel) -> None:
    walk = Walk.report(channel, INTAKE if channel != Channel.INSPECTOR else INSPECTOR)
    walk.act(A.NOT_ACCEPT, SUPERVISOR)
    assert walk.state == S.NOT_ACCEPTED


def test_verify_not_found_goes_to_the_shift_supervisor_who_does_not_accept_it() -> None:
    walk = Walk.report(Channel.HOTLINE_12345, INTAKE)
    walk.steps((A.SEND_VERIFY, INTAKE), (A.VERIFY_NOT_FOUND, INSPECTOR))
    assert walk.state == S.NOT_FOUND
    assert walk.clocks[-1] == Step.FILE
    with pytest.raises(RuleViolation, match="not possible in state 'not_found'"):
        walk.act(A.FILE, SUPERVISOR)
    walk.act(A.NOT_ACCEPT, SUPERVISOR)
    assert walk.state == S.NOT_ACCEPTED


def test_verify_not_found_can_be_sent_to_verify_again() -> None:
    walk = Walk.report(Channel.HOTLINE_12345, INTAKE)
    walk.steps(
        (A.SEND_VERIFY, INTAKE),
        (A.VERIFY_NOT_FOUND, INSPECTOR),
        (A.SEND_VERIFY, INTAKE),
        (A.VERIFY_FOUND, INSPECTOR),
    )
    assert walk.state == S.VERIFIED


def test_leader_urges_an_overdue_case_without_moving_it() -> None:
    walk = dispatched_case()
    urge = walk.act(A.URGE, LEADER)
    assert walk.state == S.DISPATCHED
    assert urge.records_urge
    assert urge.clock == ClockEffect.KEEP
    walk.steps(*CHECK_AND_CLOSE)
    with pytest.raises(RuleViolation, match="not possible in state 'closed'"):
        walk.act(A.URGE, LEADER)
