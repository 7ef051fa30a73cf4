from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cityloop.org.domain import DepartmentKind, Role

_CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_USERNAME_RE = re.compile(r"^[a-z0-9_.-]{2,64}$")


class DepartmentCreate(BaseModel):
    code: str = Field(description="Stable business key, e.g. 'drainage' or '110108001'.")
    name: str = Field(min_length=1, max_length=128)
    kind: DepartmentKind
    parent_code: str | None = None
    grid_code: str | None = Field(
        default=None, description="3-digit subdistrict or community segment of grid codes."
    )
    phone: str | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _CODE_RE.match(value):
            raise ValueError("use 1-32 letters, digits, '_', '.' or '-'")
        return value

    @field_validator("grid_code")
    @classmethod
    def _grid_code(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{3}", value):
            raise ValueError("a grid code segment is exactly 3 digits")
        return value


class DepartmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    kind: DepartmentKind
    parent_id: int | None
    grid_code: str | None
    phone: str | None
    active: bool


class UserCreate(BaseModel):
    username: str
    display_name: str = Field(min_length=1, max_length=128)
    password: str
    role: Role
    department_code: str
    phone: str | None = None

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not _USERNAME_RE.match(value):
            raise ValueError("use 2-64 lower-case letters, digits, '_', '.' or '-'")
        return value


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    department_id: int
    active: bool
