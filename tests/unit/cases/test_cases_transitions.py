"""The case transition table, exhaustively: every state x action x role.

The expected table below is written out by hand with plain strings, independently of
``cityloop.cases.domain.TRANSITIONS``: a row added, dropped or re-routed there must be mirrored
here on purpose. The strings are also the stored values (database, API), so renaming an enum
member's value fails here too.
"""

from __future__ import annotations

import pytest

from cityloop.cases.domain import (
    TERMINAL_STATES,
    TRANSITIONS,
    WAIT_POINTS,
    CaseAction,
    CaseFacts,
    CaseState,
    Channel,
    ClockEffect,
    RoleNotAllowed,
    Step,
    allowed_actions,
    decide,
    transition_table_markdown,
)
from cityloop.errors import InvalidInput, PermissionDenied, RuleViolation
from cityloop.org.domain import Role

PRIOR = "<state before the void request>"

INTAKE = {"intake_operator"}
INSPECTOR = {"inspector"}
SUPERVISOR = {"shift_supervisor"}
DISPATCHER = {"dispatcher"}
DEPARTMENT = {"department_operator"}
URGERS = {"leader", "admin"}

OPEN = [
    "reported",
    "verifying",
    "not_found",
    "verified",
    "filed",
    "dispatched",
    "return_requested",
    "extension_requested",
    "suspend_requested",
    "suspended",
    "disposed",
    "checking",
    "checked",
    "self_handled",
    "void_requested",
]

# (state, action) -> (roles allowed, next state). Everything absent must be refused.
EXPECTED: dict[tuple[str, str], tuple[set[str], str]] = {
    ("reported", "send_verify"): (INTAKE, "verifying"),
    ("reported", "not_accept"): (SUPERVISOR, "not_accepted"),
    ("reported", "self_handle"): (INSPECTOR, "self_handled"),
    ("reported", "request_void"): (INTAKE, "void_requested"),
    ("verifying", "verify_found"): (INSPECTOR, "verified"),
    ("verifying", "verify_not_found"): (INSPECTOR, "not_found"),
    ("verifying", "self_handle"): (INSPECTOR, "self_handled"),
    ("verifying", "request_void"): (INTAKE, "void_requested"),
    ("not_found", "not_accept"): (SUPERVISOR, "not_accepted"),
    ("not_found", "send_verify"): (INTAKE, "verifying"),
    ("verified", "file"): (SUPERVISOR, "filed"),
    ("verified", "decline"): (SUPERVISOR, "declined"),
    ("verified", "not_accept"): (SUPERVISOR, "not_accepted"),
    ("verified", "self_handle"): (INSPECTOR, "self_handled"),
    ("verified", "request_void"): (INTAKE, "void_requested"),
    ("filed", "dispatch"): (DISPATCHER, "dispatched"),
    ("filed", "request_void"): (DISPATCHER, "void_requested"),
    ("dispatched", "dispose"): (DEPARTMENT, "disposed"),
    ("dispatched", "request_return"): (DEPARTMENT, "return_requested"),
    ("dispatched", "request_extension"): (DEPARTMENT, "extension_requested"),
    ("dispatched", "request_suspend"): (DEPARTMENT, "suspend_requested"),
    ("dispatched", "request_void"): (DISPATCHER, "void_requested"),
    ("return_requested", "approve_return"): (DISPATCHER, "filed"),
    ("return_requested", "reject_return"): (DISPATCHER, "dispatched"),
    ("extension_requested", "approve_extension"): (DISPATCHER, "dispatched"),
    ("extension_requested", "reject_extension"): (DISPATCHER, "dispatched"),
    ("suspend_requested", "approve_suspend"): (DISPATCHER, "suspended"),
    ("suspend_requested", "reject_suspend"): (DISPATCHER, "dispatched"),
    ("suspended", "resume"): (DISPATCHER | DEPARTMENT, "dispatched"),
    ("disposed", "send_check"): (INTAKE, "checking"),
    ("checking", "check_pass"): (INSPECTOR, "checked"),
    ("checking", "check_fail"): (INSPECTOR, "dispatched"),
    ("checked", "close"): (SUPERVISOR, "closed"),
    ("self_handled", "close"): (SUPERVISOR, "closed"),
    ("self_handled", "file"): (SUPERVISOR, "filed"),
    ("void_requested", "approve_void"): (SUPERVISOR, "voided"),
    ("void_requested", "reject_void"): (SUPERVISOR, PRIOR),
    ("closed", "callback"): (INTAKE, "closed"),
    **{(state, "urge"): (URGERS, state) for state in OPEN},
}

# Facts under which every guard passes, so only state and role decide in the sweep. The guards
# themselves are tested in test_cases_guards.py.
PERMISSIVE = CaseFacts(channel=Channel.INSPECTOR, state_before_void=CaseState.FILED)
PERMISSIVE_CALLBACK = CaseFacts(channel=Channel.HOTLINE_12345)


def facts_for(action: CaseAction) -> CaseFacts:
    return PERMISSIVE_CALLBACK if action == CaseAction.CALLBACK else PERMISSIVE


def test_the_expected_table_names_only_real_states_actions_and_roles() -> None:
    for (state, action), (roles, target) in EXPECTED.items():
        CaseState(state)
        CaseAction(action)
        for role in roles:
            Role(role)
        if target != PRIOR:
            CaseState(target)


def test_the_module_table_has_exactly_the_expected_rows() -> None:
    actual = {(str(s), str(a)) for (s, a) in TRANSITIONS}
    assert actual == set(EXPECTED)


@pytest.mark.parametrize(
    ("state", "action"),
    [(s, a) for s in CaseState for a in CaseAction],
    ids=lambda v: str(v),
)
def test_every_role_gets_the_documented_answer(state: CaseState, action: CaseAction) -> None:
    expected = EXPECTED.get((state.value, action.value))
    for role in Role:
        facts = facts_for(action)
        if expected is not None and role.value in expected[0]:
            transition = decide(state, action, role, facts)
            target = expected[1]
            if target == PRIOR:
                assert transition.to_state == facts.state_before_void
            else:
                assert transition.to_state.value == target
            assert (transition.from_state, transition.action, transition.role) == (
                state,
                action,
                role,
            )
            continue
        with pytest.raises(RuleViolation) as caught:
            decide(state, action, role, facts)
        message = caught.value.message
        assert f"'{state.value}'" in message
        assert f"'{action.value}'" in message
        assert f"'{role.value}'" in message
        assert caught.value.field == "action"
        # The two refusals are told apart: wrong role (403) versus impossible in this state (422).
        if expected is None:
            assert not isinstance(caught.value, RoleNotAllowed)
            assert caught.value.status_code == 422
            assert "for any role" in message
        else:
            assert isinstance(caught.value, RoleNotAllowed)
            assert isinstance(caught.value, PermissionDenied)
            assert caught.value.status_code == 403
            assert f"not allowed for role '{role.value}'" in message


def test_the_brief_example_message_reads_naturally() -> None:
    with pytest.raises(RuleViolation) as caught:
        decide(CaseState.CHECKED, CaseAction.CLOSE, Role.DISPATCHER, PERMISSIVE)
    assert caught.value.message.startswith(
        "action 'close' is not allowed for role 'dispatcher' in state 'checked'"
    )
    with pytest.raises(RuleViolation) as caught:
        decide(CaseState.DISPATCHED, CaseAction.CLOSE, Role.DISPATCHER, PERMISSIVE)
    assert caught.value.message.startswith("action 'close' is not possible in state 'dispatched'")
    assert "dispose" in caught.value.message  # it says what is possible there


def test_a_terminal_state_says_so() -> None:
    with pytest.raises(RuleViolation, match="terminal"):
        decide(CaseState.VOIDED, CaseAction.URGE, Role.LEADER, PERMISSIVE)


def test_report_is_never_an_action_on_an_existing_case() -> None:
    with pytest.raises(RuleViolation, match="decide_report"):
        decide(CaseState.REPORTED, CaseAction.REPORT, Role.INSPECTOR, PERMISSIVE)


@pytest.mark.parametrize("state", list(CaseState), ids=str)
@pytest.mark.parametrize("role", list(Role), ids=str)
def test_allowed_actions_lists_exactly_what_decide_accepts(state: CaseState, role: Role) -> None:
    facts = PERMISSIVE_CALLBACK if state == CaseState.CLOSED else PERMISSIVE
    expected = [
        action
        for action in CaseAction
        if role.value in EXPECTED.get((state.value, action.value), (set(), ""))[0]
    ]
    assert allowed_actions(state, role, facts) == expected


def test_admin_may_only_urge() -> None:
    """Separation of duties: admin runs the system, not the loop (urge is the one exception)."""
    for state in CaseState:
        actions = allowed_actions(state, Role.ADMIN, PERMISSIVE_CALLBACK)
        assert actions == ([CaseAction.URGE] if state not in TERMINAL_STATES else [])


def test_urge_never_changes_state_or_clock() -> None:
    for state in CaseState:
        if state in TERMINAL_STATES:
            continue
        transition = decide(state, CaseAction.URGE, Role.LEADER, PERMISSIVE)
        assert transition.to_state == state
        assert not transition.changes_state
        assert transition.clock == ClockEffect.KEEP
        assert transition.records_urge


def test_stored_strings_are_accepted_and_unknown_ones_are_invalid_input() -> None:
    transition = decide("checked", "close", "shift_supervisor", PERMISSIVE)
    assert transition.to_state == CaseState.CLOSED
    with pytest.raises(InvalidInput) as caught:
        decide("checked", "shut", "shift_supervisor", PERMISSIVE)
    assert caught.value.field == "action"
    assert "'shut'" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        decide("limbo", "close", "shift_supervisor", PERMISSIVE)
    assert caught.value.field == "state"
    with pytest.raises(InvalidInput) as caught:
        decide("checked", "close", "mayor", PERMISSIVE)
    assert caught.value.field == "role"


# -- wait points: the inbox and the worker rely on these -------------------------------------


def test_every_state_has_a_wait_point() -> None:
    assert set(WAIT_POINTS) == set(CaseState)


def test_every_open_state_has_an_owner_who_can_move_it_on() -> None:
    for state in CaseState:
        point = WAIT_POINTS[state]
        if state in TERMINAL_STATES:
            assert point.owner is None
            assert point.step is None
            continue
        assert point.owner is not None, state
        moves = [a for a in allowed_actions(state, point.owner, PERMISSIVE) if a != CaseAction.URGE]
        assert moves, f"the owner of {state} has nothing to do there"


def test_terminal_states_have_no_way_out() -> None:
    for (state, action), rule in TRANSITIONS.items():
        if state in TERMINAL_STATES:
            assert (state, action) == (CaseState.CLOSED, CaseAction.CALLBACK)
            assert rule.to_state == CaseState.CLOSED


def test_clock_effects_are_consistent_with_the_wait_points() -> None:
    for (state, action), rule in TRANSITIONS.items():
        if rule.clock == ClockEffect.START:
            assert rule.to_state is not None
            assert WAIT_POINTS[rule.to_state].step is not None, (state, action)
        if rule.clock == ClockEffect.STOP:
            assert rule.to_state in TERMINAL_STATES, (state, action)
        if rule.clock in (ClockEffect.KEEP, ClockEffect.EXTEND) and rule.to_state is not None:
            # The clock that keeps running must be the one the next state expects.
            assert WAIT_POINTS[rule.to_state].step == WAIT_POINTS[state].step, (state, action)
        if rule.clock == ClockEffect.PAUSE:
            assert rule.to_state is not None
            assert WAIT_POINTS[rule.to_state].step is None, (state, action)


def test_each_clocked_step_runs_somewhere() -> None:
    running = {point.step for point in WAIT_POINTS.values() if point.step is not None}
    assert running == set(Step)


def test_every_open_state_is_reachable_from_some_report() -> None:
    reached = {CaseState.REPORTED, CaseState.VERIFIED}
    frontier = list(reached)
    while frontier:
        state = frontier.pop()
        for (source, _action), rule in TRANSITIONS.items():
            targets = [rule.to_state] if rule.to_state is not None else []
            if source == state:
                for target in targets:
                    if target not in reached:
                        reached.add(target)
                        frontier.append(target)
    assert reached == set(CaseState)


# -- documentation ------------------------------------------------------------------------------


def test_markdown_table_has_a_row_per_transition_and_per_state() -> None:
    text = transition_table_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(TRANSITIONS) + len(CaseState)
    assert "| `checked` 待结案 | `close` 结案 | shift_supervisor |" in text
    assert "fewer than max_extensions" in text
    assert "state before the request" in text
