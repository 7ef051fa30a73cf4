"""Guards, policy switches and the entry into the loop (who may report, where a report lands)."""

from __future__ import annotations

import pytest

from cityloop.cases.domain import (
    ACTION_LABELS_ZH,
    PUBLIC_CHANNELS,
    SATISFACTION_LABELS_ZH,
    STATE_LABELS_ZH,
    STEP_LABELS_ZH,
    CaseAction,
    CaseFacts,
    CaseState,
    Channel,
    ClockEffect,
    LoopPolicy,
    RoleNotAllowed,
    Satisfaction,
    Step,
    allowed_actions,
    callback_due,
    decide,
    decide_report,
    extensions_left,
    initial_state,
    inspectors_own_report,
    needs_verification,
    suspensions_left,
    void_request_pending,
)
from cityloop.errors import InvalidInput, RuleViolation
from cityloop.org.domain import Role

POLICY = LoopPolicy()
HOTLINE = CaseFacts(channel=Channel.HOTLINE_12345)

# -- guards as plain functions -----------------------------------------------------------------


def test_extensions_left_counts_against_the_policy() -> None:
    assert extensions_left(CaseFacts(Channel.INSPECTOR, extension_count=1), POLICY) is None
    assert extensions_left(CaseFacts(Channel.INSPECTOR, extension_count=2), POLICY) is not None
    three = LoopPolicy(max_extensions=3)
    assert extensions_left(CaseFacts(Channel.INSPECTOR, extension_count=2), three) is None
    none = LoopPolicy(max_extensions=0)
    assert extensions_left(CaseFacts(Channel.INSPECTOR), none) is not None


def test_suspensions_left_counts_against_the_policy() -> None:
    assert suspensions_left(CaseFacts(Channel.INSPECTOR), POLICY) is None
    assert suspensions_left(CaseFacts(Channel.INSPECTOR, suspend_count=1), POLICY) is not None
    twice = LoopPolicy(max_suspensions=2)
    assert suspensions_left(CaseFacts(Channel.INSPECTOR, suspend_count=1), twice) is None


def test_inspectors_own_report_looks_at_the_channel() -> None:
    assert inspectors_own_report(CaseFacts(Channel.INSPECTOR), POLICY) is None
    assert inspectors_own_report(HOTLINE, POLICY) is not None


def test_callback_due_needs_a_callback_channel_and_a_callback_left() -> None:
    assert callback_due(HOTLINE, POLICY) is None
    assert callback_due(CaseFacts(Channel.HOTLINE_12345, callback_count=1), POLICY) is not None
    assert callback_due(CaseFacts(Channel.SENSOR), POLICY) is not None
    twice = LoopPolicy(max_callbacks=2)
    assert callback_due(CaseFacts(Channel.HOTLINE_12345, callback_count=1), twice) is None


def test_void_request_pending_needs_a_state_a_void_can_come_from() -> None:
    assert void_request_pending(HOTLINE, POLICY) is not None
    ok = CaseFacts(Channel.HOTLINE_12345, state_before_void=CaseState.DISPATCHED)
    assert void_request_pending(ok, POLICY) is None
    # A corrupt row (a state no void request can come from) is refused, not followed.
    bad = CaseFacts(Channel.HOTLINE_12345, state_before_void=CaseState.CLOSED)
    assert void_request_pending(bad, POLICY) is not None


def test_reject_void_without_a_remembered_state_is_refused_with_the_names() -> None:
    with pytest.raises(RuleViolation) as caught:
        decide(CaseState.VOID_REQUESTED, CaseAction.REJECT_VOID, Role.SHIFT_SUPERVISOR, HOTLINE)
    assert not isinstance(caught.value, RoleNotAllowed)
    for name in ("'void_requested'", "'reject_void'", "'shift_supervisor'"):
        assert name in caught.value.message


def test_a_guard_refusal_names_state_action_and_role() -> None:
    facts = CaseFacts(Channel.HOTLINE_12345, extension_count=2)
    with pytest.raises(RuleViolation) as caught:
        decide(CaseState.DISPATCHED, CaseAction.REQUEST_EXTENSION, Role.DEPARTMENT_OPERATOR, facts)
    message = caught.value.message
    assert message.startswith(
        "action 'request_extension' is refused for role 'department_operator' in state 'dispatched'"
    )
    assert caught.value.status_code == 422


def test_approval_rechecks_the_limit() -> None:
    """A request made under a looser policy cannot be approved past the current limit."""
    facts = CaseFacts(Channel.HOTLINE_12345, extension_count=2)
    with pytest.raises(RuleViolation, match="2 of at most 2"):
        decide(CaseState.EXTENSION_REQUESTED, CaseAction.APPROVE_EXTENSION, Role.DISPATCHER, facts)
    assert decide(
        CaseState.EXTENSION_REQUESTED, CaseAction.REJECT_EXTENSION, Role.DISPATCHER, facts
    ).to_state == (CaseState.DISPATCHED)
    suspended_once = CaseFacts(Channel.HOTLINE_12345, suspend_count=1)
    with pytest.raises(RuleViolation):
        decide(
            CaseState.SUSPEND_REQUESTED,
            CaseAction.APPROVE_SUSPEND,
            Role.DISPATCHER,
            suspended_once,
        )


def test_allowed_actions_applies_guards() -> None:
    used_up = CaseFacts(Channel.HOTLINE_12345, extension_count=2, suspend_count=1)
    assert allowed_actions(CaseState.DISPATCHED, Role.DEPARTMENT_OPERATOR, used_up) == [
        CaseAction.REQUEST_RETURN,
        CaseAction.DISPOSE,
    ]
    fresh = CaseFacts(Channel.HOTLINE_12345)
    assert allowed_actions(CaseState.DISPATCHED, Role.DEPARTMENT_OPERATOR, fresh) == [
        CaseAction.REQUEST_RETURN,
        CaseAction.REQUEST_EXTENSION,
        CaseAction.REQUEST_SUSPEND,
        CaseAction.DISPOSE,
    ]


# -- policy switches: both values of each -------------------------------------------------------


@pytest.mark.parametrize(("skip", "expected"), [(True, "verified"), (False, "reported")])
def test_inspector_reports_skip_verification_switch(skip: bool, expected: str) -> None:
    policy = LoopPolicy(inspector_reports_skip_verification=skip)
    assert initial_state(Channel.INSPECTOR, policy) == expected
    assert needs_verification(Channel.INSPECTOR, policy) is not skip
    # The switch concerns inspectors only.
    assert initial_state(Channel.HOTLINE_12345, policy) == CaseState.REPORTED


def test_inspector_report_in_intake_can_still_be_self_handled() -> None:
    policy = LoopPolicy(inspector_reports_skip_verification=False)
    start = decide_report(Channel.INSPECTOR, Role.INSPECTOR, policy)
    assert start.to_state == CaseState.REPORTED
    assert start.starts_clock == Step.SEND_VERIFY
    handled = decide(
        start.to_state,
        CaseAction.SELF_HANDLE,
        Role.INSPECTOR,
        CaseFacts(Channel.INSPECTOR),
        policy,
    )
    assert handled.to_state == CaseState.SELF_HANDLED


@pytest.mark.parametrize(("verify", "expected"), [(True, "reported"), (False, "verified")])
@pytest.mark.parametrize("channel", sorted(PUBLIC_CHANNELS))
def test_public_reports_need_verification_switch(
    channel: Channel, verify: bool, expected: str
) -> None:
    policy = LoopPolicy(public_reports_need_verification=verify)
    assert initial_state(channel, policy) == expected
    # The switch concerns public channels only.
    assert initial_state(Channel.INSPECTOR, policy) == CaseState.VERIFIED


def test_other_channels_follow_their_set() -> None:
    assert initial_state(Channel.SENSOR) == CaseState.REPORTED
    assert initial_state(Channel.HIGHER_AUTHORITY) == CaseState.VERIFIED
    assert initial_state(Channel.SELF_FOUND) == CaseState.VERIFIED
    policy = LoopPolicy(other_channels_needing_verification=frozenset({Channel.SELF_FOUND}))
    assert initial_state(Channel.SENSOR, policy) == CaseState.VERIFIED
    assert initial_state(Channel.SELF_FOUND, policy) == CaseState.REPORTED


def test_other_channels_cannot_override_the_two_named_switches() -> None:
    with pytest.raises(InvalidInput) as caught:
        LoopPolicy(other_channels_needing_verification=frozenset({Channel.HOTLINE_12345}))
    assert caught.value.field == "other_channels_needing_verification"


@pytest.mark.parametrize("name", ["max_extensions", "max_suspensions", "max_callbacks"])
def test_policy_limits_cannot_be_negative(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        LoopPolicy(**{name: -1})  # type: ignore[arg-type]
    assert caught.value.field == name


@pytest.mark.parametrize(
    "name", ["extension_count", "suspend_count", "rework_count", "callback_count"]
)
def test_fact_counters_cannot_be_negative(name: str) -> None:
    with pytest.raises(InvalidInput):
        CaseFacts(Channel.INSPECTOR, **{name: -1})  # type: ignore[arg-type]


def test_callback_channels_are_configurable() -> None:
    closed = CaseState.CLOSED
    sensor = CaseFacts(Channel.SENSOR)
    assert allowed_actions(closed, Role.INTAKE_OPERATOR, sensor) == []
    policy = LoopPolicy(callback_channels=frozenset({Channel.SENSOR}))
    assert allowed_actions(closed, Role.INTAKE_OPERATOR, sensor, policy) == [CaseAction.CALLBACK]
    assert allowed_actions(closed, Role.INTAKE_OPERATOR, HOTLINE, policy) == []


# -- reports -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "role"),
    [
        (Channel.INSPECTOR, Role.INSPECTOR),
        (Channel.HOTLINE_12345, Role.INTAKE_OPERATOR),
        (Channel.HOTLINE_12319, Role.INTAKE_OPERATOR),
        (Channel.PUBLIC_WEB, None),
        (Channel.PUBLIC_WEB, Role.INTAKE_OPERATOR),
        (Channel.OPEN311, None),
        (Channel.SENSOR, None),
        (Channel.HIGHER_AUTHORITY, Role.INTAKE_OPERATOR),
        (Channel.HIGHER_AUTHORITY, Role.SHIFT_SUPERVISOR),
        (Channel.SELF_FOUND, Role.DISPATCHER),
        (Channel.SELF_FOUND, Role.DEPARTMENT_OPERATOR),
    ],
)
def test_who_may_report_where(channel: Channel, role: Role | None) -> None:
    transition = decide_report(channel, role)
    assert transition.from_state is None
    assert transition.action == CaseAction.REPORT
    assert transition.to_state == initial_state(channel)
    assert transition.clock == ClockEffect.START
    assert transition.starts_clock in (Step.SEND_VERIFY, Step.FILE)


@pytest.mark.parametrize(
    ("channel", "role", "who"),
    [
        (Channel.INSPECTOR, Role.INTAKE_OPERATOR, "role 'intake_operator'"),
        (Channel.HOTLINE_12345, None, "the public"),
        (Channel.HOTLINE_12345, Role.ADMIN, "role 'admin'"),
        (Channel.HIGHER_AUTHORITY, None, "the public"),
        (Channel.SENSOR, Role.LEADER, "role 'leader'"),
    ],
)
def test_report_refused_names_channel_and_role(
    channel: Channel, role: Role | None, who: str
) -> None:
    with pytest.raises(RoleNotAllowed) as caught:
        decide_report(channel, role)
    assert f"'report' on channel '{channel.value}'" in caught.value.message
    assert who in caught.value.message


def test_unknown_channel_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        initial_state("carrier_pigeon")
    assert caught.value.field == "channel"


# -- vocabulary ----------------------------------------------------------------------------------


def test_every_name_has_a_chinese_label() -> None:
    assert set(STATE_LABELS_ZH) == set(CaseState)
    assert set(ACTION_LABELS_ZH) == set(CaseAction)
    assert set(STEP_LABELS_ZH) == set(Step)
    assert set(SATISFACTION_LABELS_ZH) == set(Satisfaction)


def test_satisfaction_values() -> None:
    assert [s.value for s in Satisfaction] == ["satisfied", "basically_satisfied", "dissatisfied"]


def test_channel_values() -> None:
    assert {c.value for c in Channel} == {
        "inspector",
        "hotline_12345",
        "hotline_12319",
        "public_web",
        "open311",
        "sensor",
        "higher_authority",
        "self_found",
    }
