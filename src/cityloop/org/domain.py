"""Pure organisation rules: roles, department kinds and who may see what.

No I/O. The service layer loads an ``Actor`` and asks these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    INSPECTOR = "inspector"  # 监督员: reports, verifies (核实) and checks (核查) on site
    INTAKE_OPERATOR = "intake_operator"  # 受理员: receives reports, sends verify/check tasks
    SHIFT_SUPERVISOR = "shift_supervisor"  # 值班长: files, declines, closes, approves voiding
    DISPATCHER = "dispatcher"  # 派遣员: dispatches; approves returns, extensions, suspensions
    DEPARTMENT_OPERATOR = "department_operator"  # 处置单位 operator: disposes, gives feedback
    LEADER = "leader"  # 领导/督办人: urges, reads dashboards
    ADMIN = "admin"  # system administration: users, departments, catalog, calendar


ROLE_LABELS_ZH: dict[Role, str] = {
    Role.INSPECTOR: "监督员",
    Role.INTAKE_OPERATOR: "受理员",
    Role.SHIFT_SUPERVISOR: "值班长",
    Role.DISPATCHER: "派遣员",
    Role.DEPARTMENT_OPERATOR: "处置单位操作员",
    Role.LEADER: "领导",
    Role.ADMIN: "系统管理员",
}

# Roles of the supervision and command centres: they work on every case of the city.
CITYWIDE_ROLES: frozenset[Role] = frozenset(
    {
        Role.INTAKE_OPERATOR,
        Role.SHIFT_SUPERVISOR,
        Role.DISPATCHER,
        Role.LEADER,
        Role.ADMIN,
    }
)


class DepartmentKind(StrEnum):
    CENTRE = "centre"  # the supervision/command centre that runs the loop (监督指挥中心)
    HANDLING = "handling"  # 专业部门 / 处置单位, e.g. a drainage centre
    SUBDISTRICT = "subdistrict"  # 街道: a territorial unit
    COMMUNITY = "community"  # 社区: a territorial unit under a subdistrict


TERRITORIAL_KINDS: frozenset[DepartmentKind] = frozenset(
    {DepartmentKind.SUBDISTRICT, DepartmentKind.COMMUNITY}
)

# Which kinds may sit under which. None is the top of the tree.
ALLOWED_PARENT_KINDS: dict[DepartmentKind, frozenset[DepartmentKind | None]] = {
    DepartmentKind.CENTRE: frozenset({None}),
    DepartmentKind.HANDLING: frozenset({None, DepartmentKind.HANDLING}),
    DepartmentKind.SUBDISTRICT: frozenset({None}),
    DepartmentKind.COMMUNITY: frozenset({DepartmentKind.SUBDISTRICT}),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a staff user with one role in one department.

    ``department_path`` holds the ids of the user's department and all its descendants, so a
    subdistrict's operator also covers its communities.
    """

    user_id: int | None  # None only for the system actor (workers, migrations)
    username: str
    role: Role
    department_id: int
    department_scope: frozenset[int]

    @property
    def is_citywide(self) -> bool:
        return self.role in CITYWIDE_ROLES

    def covers_department(self, department_id: int | None) -> bool:
        """True when this actor's scope includes work assigned to ``department_id``."""
        if self.is_citywide:
            return True
        return department_id is not None and department_id in self.department_scope


SYSTEM_ACTOR = Actor(
    user_id=None,
    username="system",
    role=Role.ADMIN,
    department_id=0,
    department_scope=frozenset(),
)
