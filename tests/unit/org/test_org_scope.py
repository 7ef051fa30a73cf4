from cityloop.org.domain import CITYWIDE_ROLES, Actor, Role


def _actor(role: Role, scope: set[int]) -> Actor:
    return Actor(
        user_id=1, username="u", role=role, department_id=1, department_scope=frozenset(scope)
    )


def test_a_department_operator_covers_only_its_own_subtree() -> None:
    operator = _actor(Role.DEPARTMENT_OPERATOR, {10, 11})
    assert operator.covers_department(10)
    assert operator.covers_department(11)
    assert not operator.covers_department(12)
    assert not operator.covers_department(None)


def test_centre_roles_cover_every_department() -> None:
    for role in CITYWIDE_ROLES:
        assert _actor(role, {1}).covers_department(999)


def test_inspectors_and_operators_are_not_citywide() -> None:
    assert Role.INSPECTOR not in CITYWIDE_ROLES
    assert Role.DEPARTMENT_OPERATOR not in CITYWIDE_ROLES
