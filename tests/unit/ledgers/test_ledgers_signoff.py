"""The sign-off state machine (销号), exhaustively: every state × action × role."""

from __future__ import annotations

import itertools

import pytest

from cityloop.errors import InvalidInput, PermissionDenied, RuleViolation
from cityloop.ledgers.domain import (
    ACTION_ROLES,
    EVIDENCE_REQUIRED,
    PENDING_STATES,
    REASON_REQUIRED,
    TRANSITIONS,
    WORKING_STATES,
    ItemFacts,
    ItemStatus,
    LedgerKind,
    SignoffAction,
    SignoffFacts,
    SignoffPolicy,
    SignoffState,
    allowed_actions,
    check_editable,
    check_status_change,
    decide,
    problem_done,
    roles_for,
)
from cityloop.org.domain import Actor, Role

S, A = SignoffState, SignoffAction


def actor(role: Role, user_id: int = 1) -> Actor:
    return Actor(
        user_id=user_id,
        username=f"{role.value}{user_id}",
        role=role,
        department_id=1,
        department_scope=frozenset({1}),
    )


def facts(
    state: SignoffState,
    *,
    kind: LedgerKind = LedgerKind.RECTIFICATION,
    status: ItemStatus = ItemStatus.IN_PROGRESS,
    evidence: int = 1,
    submitted_by: int | None = 90,
    reviewed_by: int | None = 91,
) -> SignoffFacts:
    return SignoffFacts(
        kind=kind,
        state=state,
        status=status,
        fresh_evidence=evidence,
        submitted_by=submitted_by,
        reviewed_by=reviewed_by,
    )


ALL_CASES = list(itertools.product(SignoffState, SignoffAction, Role, LedgerKind))


@pytest.mark.parametrize(("state", "action", "role", "kind"), ALL_CASES)
def test_every_state_action_role_combination_is_decided_by_the_table(
    state: SignoffState, action: SignoffAction, role: Role, kind: LedgerKind
) -> None:
    f = facts(state, kind=kind)
    who = actor(role)
    target = TRANSITIONS.get((state, action))
    if role not in roles_for(kind, action):
        with pytest.raises(PermissionDenied):
            decide(f, action, who, reason="原因")
    elif target is None:
        with pytest.raises(RuleViolation):
            decide(f, action, who, reason="原因")
    else:
        transition = decide(f, action, who, reason="原因")
        assert transition.to_state is target
        assert transition.from_state is state


def test_the_flow_is_submit_review_approve_and_a_rejection_or_relapse_goes_back() -> None:
    assert TRANSITIONS == {
        (S.OPEN, A.SUBMIT): S.SUBMITTED,
        (S.RETURNED, A.SUBMIT): S.SUBMITTED,
        (S.RELAPSED, A.SUBMIT): S.SUBMITTED,
        (S.SUBMITTED, A.REVIEW): S.REVIEWED,
        (S.SUBMITTED, A.REJECT): S.RETURNED,
        (S.REVIEWED, A.APPROVE): S.SIGNED_OFF,
        (S.REVIEWED, A.REJECT): S.RETURNED,
        (S.SIGNED_OFF, A.CONFIRM): S.SIGNED_OFF,
        (S.SIGNED_OFF, A.RELAPSE): S.RELAPSED,
    }


def test_a_submitted_item_cannot_be_approved_without_review() -> None:
    with pytest.raises(RuleViolation, match="submitted"):
        decide(facts(S.SUBMITTED), A.APPROVE, actor(Role.LEADER))


def test_a_role_that_may_never_act_is_refused_whatever_the_state() -> None:
    with pytest.raises(PermissionDenied):
        decide(facts(S.OPEN), A.REVIEW, actor(Role.DEPARTMENT_OPERATOR))


def test_only_a_signed_off_item_can_relapse() -> None:
    for state in set(SignoffState) - {S.SIGNED_OFF}:
        with pytest.raises(RuleViolation):
            decide(facts(state), A.RELAPSE, actor(Role.LEADER), reason="反弹")


def test_department_operators_submit_but_never_judge() -> None:
    assert Role.DEPARTMENT_OPERATOR in ACTION_ROLES[A.SUBMIT]
    for action in set(SignoffAction) - {A.SUBMIT}:
        assert Role.DEPARTMENT_OPERATOR not in ACTION_ROLES[action]


def test_on_a_hazard_survey_the_inspector_verifies_but_does_not_approve() -> None:
    inspector = actor(Role.INSPECTOR)
    hazard = LedgerKind.HAZARD
    assert decide(facts(S.SUBMITTED, kind=hazard), A.REVIEW, inspector).to_state is S.REVIEWED
    rejected = decide(facts(S.SUBMITTED, kind=hazard), A.REJECT, inspector, reason="未整改到位")
    assert rejected.to_state is S.RETURNED
    with pytest.raises(PermissionDenied):
        decide(facts(S.REVIEWED, kind=hazard), A.APPROVE, inspector)
    with pytest.raises(PermissionDenied):
        decide(facts(S.SUBMITTED), A.REVIEW, inspector)


@pytest.mark.parametrize("action", sorted(REASON_REQUIRED))
def test_a_rejection_and_a_relapse_need_a_reason(action: SignoffAction) -> None:
    state = S.SUBMITTED if action is A.REJECT else S.SIGNED_OFF
    with pytest.raises(InvalidInput) as err:
        decide(facts(state), action, actor(Role.LEADER), reason="   ")
    assert err.value.field == "reason"
    assert (
        decide(facts(state), action, actor(Role.LEADER), reason=" 证据不足 ").reason == "证据不足"
    )


def test_a_reason_longer_than_1000_characters_is_refused() -> None:
    with pytest.raises(InvalidInput):
        decide(facts(S.SUBMITTED), A.REJECT, actor(Role.LEADER), reason="长" * 1001)


@pytest.mark.parametrize("action", sorted(EVIDENCE_REQUIRED))
def test_submission_and_approval_need_fresh_evidence(action: SignoffAction) -> None:
    state = S.OPEN if action is A.SUBMIT else S.REVIEWED
    role = Role.DEPARTMENT_OPERATOR if action is A.SUBMIT else Role.ADMIN
    with pytest.raises(RuleViolation) as err:
        decide(facts(state, evidence=0), action, actor(role))
    assert err.value.field == "evidence"


def test_review_and_rejection_do_not_need_evidence() -> None:
    decide(facts(S.SUBMITTED, evidence=0), A.REVIEW, actor(Role.LEADER))
    decide(facts(S.SUBMITTED, evidence=0), A.REJECT, actor(Role.LEADER), reason="x")


def test_the_submitter_cannot_review_their_own_submission() -> None:
    leader = actor(Role.LEADER, user_id=7)
    with pytest.raises(PermissionDenied, match="reviewer"):
        decide(facts(S.SUBMITTED, submitted_by=7), A.REVIEW, leader)
    relaxed = SignoffPolicy(distinct_reviewer=False)
    assert decide(facts(S.SUBMITTED, submitted_by=7), A.REVIEW, leader, policy=relaxed)


def test_the_reviewer_cannot_approve_what_they_reviewed() -> None:
    leader = actor(Role.LEADER, user_id=7)
    with pytest.raises(PermissionDenied, match="approver"):
        decide(facts(S.REVIEWED, reviewed_by=7), A.APPROVE, leader)
    relaxed = SignoffPolicy(distinct_approver=False)
    assert decide(facts(S.REVIEWED, reviewed_by=7), A.APPROVE, leader, policy=relaxed)


def test_the_system_actor_is_never_blocked_by_separation_of_duties() -> None:
    system = Actor(None, "system", Role.ADMIN, 0, frozenset())
    decide(facts(S.SUBMITTED, submitted_by=None), A.REVIEW, system)
    decide(facts(S.REVIEWED, reviewed_by=None), A.APPROVE, system)


@pytest.mark.parametrize(
    ("action", "state", "before", "after"),
    [
        (A.SUBMIT, S.OPEN, ItemStatus.NOT_STARTED, ItemStatus.DONE),
        (A.SUBMIT, S.OPEN, ItemStatus.IN_PROGRESS, ItemStatus.DONE),
        (A.SUBMIT, S.RELAPSED, ItemStatus.IN_PROGRESS, ItemStatus.DONE),
        (A.SUBMIT, S.OPEN, ItemStatus.LONG_TERM, ItemStatus.LONG_TERM),
        (A.REVIEW, S.SUBMITTED, ItemStatus.DONE, ItemStatus.DONE),
        (A.APPROVE, S.REVIEWED, ItemStatus.DONE, ItemStatus.DONE),
        (A.APPROVE, S.REVIEWED, ItemStatus.LONG_TERM, ItemStatus.LONG_TERM),
        (A.REJECT, S.SUBMITTED, ItemStatus.DONE, ItemStatus.IN_PROGRESS),
        (A.REJECT, S.REVIEWED, ItemStatus.LONG_TERM, ItemStatus.LONG_TERM),
        (A.RELAPSE, S.SIGNED_OFF, ItemStatus.DONE, ItemStatus.IN_PROGRESS),
        (A.CONFIRM, S.SIGNED_OFF, ItemStatus.DONE, ItemStatus.DONE),
    ],
)
def test_status_follows_the_flow_and_long_term_measures_keep_theirs(
    action: SignoffAction, state: SignoffState, before: ItemStatus, after: ItemStatus
) -> None:
    role = Role.DEPARTMENT_OPERATOR if action is A.SUBMIT else Role.ADMIN
    transition = decide(facts(state, status=before), action, actor(role), reason="原因")
    assert transition.from_status is before
    assert transition.to_status is after
    assert transition.counts_relapse is (action is A.RELAPSE)


def test_a_whole_life_submit_reject_resubmit_approve_confirm_relapse_approve() -> None:
    operator, leader, admin = (
        actor(Role.DEPARTMENT_OPERATOR, 1),
        actor(Role.LEADER, 2),
        actor(Role.ADMIN, 3),
    )
    state, status = S.OPEN, ItemStatus.IN_PROGRESS
    submitted_by = reviewed_by = None
    steps = [
        (operator, A.SUBMIT, S.SUBMITTED),
        (leader, A.REJECT, S.RETURNED),
        (operator, A.SUBMIT, S.SUBMITTED),
        (leader, A.REVIEW, S.REVIEWED),
        (admin, A.APPROVE, S.SIGNED_OFF),
        (leader, A.CONFIRM, S.SIGNED_OFF),
        (leader, A.RELAPSE, S.RELAPSED),
        (operator, A.SUBMIT, S.SUBMITTED),
        (leader, A.REVIEW, S.REVIEWED),
        (admin, A.APPROVE, S.SIGNED_OFF),
    ]
    relapses = 0
    for who, action, expected in steps:
        f = SignoffFacts(LedgerKind.RECTIFICATION, state, status, 1, submitted_by, reviewed_by)
        t = decide(f, action, who, reason="回头看" if action in REASON_REQUIRED else "")
        assert t.to_state is expected
        state, status = t.to_state, t.to_status
        relapses += t.counts_relapse
        if action is A.SUBMIT:
            submitted_by, reviewed_by = who.user_id, None
        if action is A.REVIEW:
            reviewed_by = who.user_id
    assert (state, status, relapses) == (S.SIGNED_OFF, ItemStatus.DONE, 1)


@pytest.mark.parametrize("state", list(SignoffState))
def test_allowed_actions_lists_exactly_what_decide_accepts(state: SignoffState) -> None:
    for role in Role:
        who = actor(role)
        listed = allowed_actions(facts(state), who)
        for action in SignoffAction:
            accepted = (state, action) in TRANSITIONS and role in roles_for(
                LedgerKind.RECTIFICATION, action
            )
            assert (action in listed) is accepted, (state, role, action)


def test_allowed_actions_hide_submit_without_evidence() -> None:
    assert allowed_actions(facts(S.OPEN, evidence=0), actor(Role.DEPARTMENT_OPERATOR)) == []


@pytest.mark.parametrize("state", list(SignoffState))
def test_status_and_content_change_only_while_the_item_is_worked_on(state: SignoffState) -> None:
    if state in WORKING_STATES:
        check_status_change(state, ItemStatus.DONE)
        check_editable(state)
    else:
        with pytest.raises(RuleViolation):
            check_status_change(state, ItemStatus.DONE)
        with pytest.raises(RuleViolation):
            check_editable(state)


def test_pending_and_working_states_do_not_overlap() -> None:
    assert not PENDING_STATES & WORKING_STATES
    assert S.SIGNED_OFF not in PENDING_STATES | WORKING_STATES


def _item(state: SignoffState) -> ItemFacts:
    return ItemFacts(id=1, group_id=1, position=1, content="x", state=state)


def test_a_problem_is_done_only_when_every_measure_is_signed_off() -> None:
    assert problem_done([_item(S.SIGNED_OFF), _item(S.SIGNED_OFF)])
    assert not problem_done([_item(S.SIGNED_OFF), _item(S.REVIEWED)])
    assert not problem_done([_item(S.SIGNED_OFF), _item(S.RELAPSED)])
    assert not problem_done([])
