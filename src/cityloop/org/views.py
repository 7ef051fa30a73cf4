"""HTTP routes for authentication, users and departments (thin: the service decides)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from pydantic import BaseModel

from cityloop.org import service
from cityloop.org.domain import DepartmentKind
from cityloop.org.schemas import DepartmentCreate, DepartmentPublic, UserCreate, UserPublic
from cityloop.web.deps import CurrentActor, UowDep

router = APIRouter(prefix="/api/v1", tags=["organisation"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    id: int | None
    username: str
    role: str
    department_id: int


@router.post("/auth/token", response_model=Token)
def login(
    uow: UowDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Token:
    actor = service.authenticate(uow, username=username, password=password)
    return Token(access_token=service.issue_token(uow, actor, kind="bearer"))


@router.get("/me", response_model=Me)
def me(actor: CurrentActor) -> Me:
    return Me(
        id=actor.user_id,
        username=actor.username,
        role=actor.role.value,
        department_id=actor.department_id,
    )


@router.get("/departments", response_model=list[DepartmentPublic])
def list_departments(
    uow: UowDep, _actor: CurrentActor, kind: DepartmentKind | None = None
) -> list[DepartmentPublic]:
    return service.list_departments(uow, kind=kind)


@router.post("/departments", response_model=DepartmentPublic, status_code=201)
def create_department(uow: UowDep, actor: CurrentActor, data: DepartmentCreate) -> DepartmentPublic:
    return service.create_department(uow, actor, data)


@router.get("/users", response_model=list[UserPublic])
def list_users(uow: UowDep, actor: CurrentActor) -> list[UserPublic]:
    service.require_role(actor, *service.USER_READERS)
    return service.list_users(uow)


@router.post("/users", response_model=UserPublic, status_code=201)
def create_user(uow: UowDep, actor: CurrentActor, data: UserCreate) -> UserPublic:
    return service.add_user(uow, actor, data)
