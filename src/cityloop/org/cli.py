"""`cityloop user ...` and `cityloop dept ...`."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from cityloop.cli_support import open_database
from cityloop.errors import InvalidInput
from cityloop.org import service
from cityloop.org.domain import SYSTEM_ACTOR, DepartmentKind, Role
from cityloop.org.schemas import DepartmentCreate, UserCreate

user_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
dept_app = typer.Typer(
    help="Departments: handling departments, subdistricts, communities.", no_args_is_help=True
)


def _read_password(password: str | None) -> str:
    if password is not None:
        return password
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Repeat password: ")
    if first != second:
        raise InvalidInput("the two passwords differ", field="password")
    return first


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name: lower-case letters, digits, _ . -")],
    role: Annotated[Role, typer.Option(help="One role per account.")],
    department: Annotated[str, typer.Option(help="Department code.")],
    name: Annotated[
        str | None, typer.Option(help="Display name (defaults to the username).")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Password; prompted for when omitted.")
    ] = None,
) -> None:
    """Create a staff account."""
    data = UserCreate(
        username=username,
        display_name=name or username,
        password=_read_password(password),
        role=role,
        department_code=department,
    )
    user = service.add_user(open_database().uow(), SYSTEM_ACTOR, data)
    typer.echo(f"created user {user.username} ({user.role.value}) id={user.id}")


@user_app.command("passwd")
def user_passwd(
    username: str,
    password: Annotated[
        str | None, typer.Option(help="New password; prompted for when omitted.")
    ] = None,
) -> None:
    """Set a user's password."""
    service.set_password(
        open_database().uow(), SYSTEM_ACTOR, username=username, password=_read_password(password)
    )
    typer.echo(f"password changed for {username}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable an account (it keeps its history)."""
    service.set_active(open_database().uow(), SYSTEM_ACTOR, username=username, active=False)
    typer.echo(f"disabled {username}")


@user_app.command("enable")
def user_enable(username: str) -> None:
    service.set_active(open_database().uow(), SYSTEM_ACTOR, username=username, active=True)
    typer.echo(f"enabled {username}")


@user_app.command("list")
def user_list() -> None:
    for u in service.list_users(open_database().uow()):
        state = "" if u.active else " (disabled)"
        typer.echo(f"{u.username}\t{u.role.value}\t{u.display_name}{state}")


@dept_app.command("add")
def dept_add(
    code: str,
    name: Annotated[str, typer.Option()],
    kind: Annotated[DepartmentKind, typer.Option()],
    parent: Annotated[str | None, typer.Option(help="Parent department code.")] = None,
    grid_code: Annotated[str | None, typer.Option(help="3-digit grid segment.")] = None,
) -> None:
    """Create a department."""
    data = DepartmentCreate(
        code=code, name=name, kind=kind, parent_code=parent, grid_code=grid_code
    )
    dept = service.create_department(open_database().uow(), SYSTEM_ACTOR, data)
    typer.echo(f"created department {dept.code} ({dept.kind.value}) id={dept.id}")


@dept_app.command("list")
def dept_list() -> None:
    for d in service.list_departments(open_database().uow()):
        typer.echo(f"{d.code}\t{d.kind.value}\t{d.name}")
