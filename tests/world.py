"""The named world every integration test shares (see tests/conftest.py for the cast)."""

from __future__ import annotations

from dataclasses import dataclass

from cityloop.catalog.models import FilingStandard, MajorClass, MinorClass
from cityloop.db.engine import Database
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, Actor, DepartmentKind, Role
from cityloop.org.schemas import DepartmentCreate, UserCreate

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class World:
    centre_id: int
    drainage_id: int
    sanitation_id: int
    inspector: Actor
    intake: Actor
    supervisor: Actor
    dispatcher: Actor
    operator: Actor  # drainage
    outsider: Actor  # sanitation: must never see drainage's cases
    leader: Actor
    admin: Actor


def build_world(database: Database) -> World:
    depts = {}
    for code, name, kind in [
        ("centre", "监督指挥中心(演示)", DepartmentKind.CENTRE),
        ("drainage", "排水服务中心(演示)", DepartmentKind.HANDLING),
        ("sanitation", "环境卫生服务中心(演示)", DepartmentKind.HANDLING),
    ]:
        depts[code] = org.create_department(
            database.uow(), SYSTEM_ACTOR, DepartmentCreate(code=code, name=name, kind=kind)
        ).id
    actors = {}
    for username, role, dept in [
        ("inspector", Role.INSPECTOR, "centre"),
        ("intake", Role.INTAKE_OPERATOR, "centre"),
        ("supervisor", Role.SHIFT_SUPERVISOR, "centre"),
        ("dispatcher", Role.DISPATCHER, "centre"),
        ("operator", Role.DEPARTMENT_OPERATOR, "drainage"),
        ("outsider", Role.DEPARTMENT_OPERATOR, "sanitation"),
        ("leader", Role.LEADER, "centre"),
        ("admin", Role.ADMIN, "centre"),
    ]:
        user = org.add_user(
            database.uow(),
            SYSTEM_ACTOR,
            UserCreate(
                username=username,
                display_name=username.title(),
                password=PASSWORD,
                role=role,
                department_code=dept,
            ),
        )
        actors[username] = org.load_actor(database.uow(), user_id=user.id)
    return World(
        centre_id=depts["centre"],
        drainage_id=depts["drainage"],
        sanitation_id=depts["sanitation"],
        **actors,
    )


def add_manhole_standard(database: Database) -> int:
    """A catalog of one row: 上水井盖 broken > 25 cm² -> 2 working days. Returns the row id."""
    with database.uow() as uow:
        major = MajorClass(family="component", code="01", name="公用设施")
        uow.session.add(major)
        uow.session.flush()
        minor = MinorClass(family="component", major_id=major.id, code="0101", name="上水井盖")
        uow.session.add(minor)
        uow.session.flush()
        row = FilingStandard(
            minor_id=minor.id,
            position=1,
            filing_criterion="破损超过25c㎡",
            closing_criterion="更换或修复",
            limit_text="2工作日",
            limit_amount=2,
            limit_unit="day",
            limit_clock="working",
        )
        uow.session.add(row)
        uow.session.flush()
        uow.commit()
        return row.id
