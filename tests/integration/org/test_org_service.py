import pytest
from sqlalchemy import select
from tests.world import PASSWORD, World

from cityloop.audit.models import AuditEntry
from cityloop.db.engine import Database
from cityloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, DepartmentKind, Role
from cityloop.org.schemas import DepartmentCreate, UserCreate


def test_the_world_has_two_departments_and_one_user_per_role(world: World, db: Database) -> None:
    users = org.list_users(db.uow())
    assert {u.role for u in users} == set(Role)
    assert world.operator.department_id == world.drainage_id
    assert world.outsider.department_id == world.sanitation_id


def test_login_returns_the_actor_with_role_and_scope(world: World, db: Database) -> None:
    actor = org.authenticate(db.uow(), username="operator", password=PASSWORD)
    assert actor.role is Role.DEPARTMENT_OPERATOR
    assert actor.covers_department(world.drainage_id)
    assert not actor.covers_department(world.sanitation_id)


def test_a_wrong_password_and_an_unknown_user_give_the_same_error(
    world: World, db: Database
) -> None:
    with pytest.raises(Unauthenticated) as wrong:
        org.authenticate(db.uow(), username="operator", password="wrong-password")
    with pytest.raises(Unauthenticated) as unknown:
        org.authenticate(db.uow(), username="nobody", password="wrong-password")
    assert wrong.value.message == unknown.value.message


def test_a_disabled_user_cannot_log_in(world: World, db: Database) -> None:
    org.set_active(db.uow(), world.admin, username="operator", active=False)
    with pytest.raises(Unauthenticated):
        org.authenticate(db.uow(), username="operator", password=PASSWORD)


def test_a_subdistrict_user_covers_its_communities(db: Database) -> None:
    create = org.create_department
    sub = create(
        db.uow(),
        SYSTEM_ACTOR,
        DepartmentCreate(code="s1", name="Sub", kind=DepartmentKind.SUBDISTRICT, grid_code="001"),
    )
    com = create(
        db.uow(),
        SYSTEM_ACTOR,
        DepartmentCreate(
            code="c1", name="Com", kind=DepartmentKind.COMMUNITY, parent_code="s1", grid_code="001"
        ),
    )
    user = org.add_user(
        db.uow(),
        SYSTEM_ACTOR,
        UserCreate(
            username="subop",
            display_name="Sub operator",
            password=PASSWORD,
            role=Role.DEPARTMENT_OPERATOR,
            department_code="s1",
        ),
    )
    actor = org.load_actor(db.uow(), user_id=user.id)
    assert actor.department_scope == frozenset({sub.id, com.id})


def test_a_community_must_sit_under_a_subdistrict(world: World, db: Database) -> None:
    with pytest.raises(InvalidInput) as err:
        org.create_department(
            db.uow(),
            SYSTEM_ACTOR,
            DepartmentCreate(
                code="c9", name="C", kind=DepartmentKind.COMMUNITY, parent_code="drainage"
            ),
        )
    assert err.value.field == "parent_code"


def test_only_admins_create_users(world: World, db: Database) -> None:
    data = UserCreate(
        username="newbie",
        display_name="N",
        password=PASSWORD,
        role=Role.INSPECTOR,
        department_code="centre",
    )
    with pytest.raises(PermissionDenied):
        org.add_user(db.uow(), world.dispatcher, data)
    created = org.add_user(db.uow(), world.admin, data)
    assert created.username == "newbie"


def test_duplicate_username_is_a_conflict_and_writes_nothing(world: World, db: Database) -> None:
    before = len(org.list_users(db.uow()))
    with pytest.raises(Conflict):
        org.add_user(
            db.uow(),
            world.admin,
            UserCreate(
                username="operator",
                display_name="dup",
                password=PASSWORD,
                role=Role.INSPECTOR,
                department_code="centre",
            ),
        )
    assert len(org.list_users(db.uow())) == before


def test_unknown_department_is_named(world: World, db: Database) -> None:
    with pytest.raises(NotFound) as err:
        org.add_user(
            db.uow(),
            world.admin,
            UserCreate(
                username="lost",
                display_name="L",
                password=PASSWORD,
                role=Role.INSPECTOR,
                department_code="atlantis",
            ),
        )
    assert "atlantis" in err.value.message


def test_users_change_only_their_own_password(world: World, db: Database) -> None:
    with pytest.raises(PermissionDenied):
        org.set_password(db.uow(), world.operator, username="outsider", password="another-pass1")
    org.set_password(db.uow(), world.operator, username="operator", password="another-pass1")
    assert org.authenticate(db.uow(), username="operator", password="another-pass1")


def test_every_change_leaves_an_audit_row(world: World, db: Database) -> None:
    with db.uow() as uow:
        actions = uow.session.scalars(select(AuditEntry.action)).all()
    assert actions.count("department.create") == 3
    assert actions.count("user.create") == 8
