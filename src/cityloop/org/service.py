"""Organisation use cases. Each public function owns one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cityloop.audit.service import record
from cityloop.db import cache
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from cityloop.org.domain import ALLOWED_PARENT_KINDS, Actor, DepartmentKind, Role
from cityloop.org.models import ApiToken, Department, User
from cityloop.org.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from cityloop.org.schemas import DepartmentCreate, DepartmentPublic, UserCreate, UserPublic


def require_role(actor: Actor, *roles: Role) -> None:
    """Refuse unless the actor has one of ``roles``. The system actor passes as admin."""
    if actor.role not in roles:
        names = ", ".join(r.value for r in roles)
        raise PermissionDenied(
            f"role '{actor.role.value}' may not do this; it needs one of: {names}"
        )


# Who may list staff accounts: the centre's managers and admins, not department operators.
USER_READERS = (Role.ADMIN, Role.LEADER, Role.SHIFT_SUPERVISOR, Role.DISPATCHER)


# --- departments -------------------------------------------------------------------------


def department_by_code(session: Session, code: str) -> Department:
    dept = session.scalar(select(Department).where(Department.code == code))
    if dept is None:
        raise NotFound(f"no department with code '{code}'", field="department_code")
    return dept


def descendant_ids(session: Session, department_id: int) -> frozenset[int]:
    """The department and everything below it. Trees are shallow (centre/subdistrict/community),
    so a breadth-first walk over one small query per level is cheap and portable."""
    found = {department_id}
    frontier = [department_id]
    while frontier:
        children = session.scalars(
            select(Department.id).where(Department.parent_id.in_(frontier))
        ).all()
        frontier = [c for c in children if c not in found]
        found.update(frontier)
    return frozenset(found)


def create_department(uow: UnitOfWork, actor: Actor, data: DepartmentCreate) -> DepartmentPublic:
    require_role(actor, Role.ADMIN)
    with uow:
        session = uow.session
        if session.scalar(select(Department.id).where(Department.code == data.code)):
            raise Conflict(f"department code '{data.code}' is already taken", field="code")
        parent: Department | None = None
        if data.parent_code is not None:
            parent = department_by_code(session, data.parent_code)
        parent_kind = DepartmentKind(parent.kind) if parent is not None else None
        if parent_kind not in ALLOWED_PARENT_KINDS[data.kind]:
            where = f"under a '{parent_kind.value}'" if parent_kind else "at the top level"
            raise InvalidInput(
                f"a '{data.kind.value}' department cannot sit {where}", field="parent_code"
            )
        dept = Department(
            code=data.code,
            name=data.name,
            kind=data.kind.value,
            parent_id=parent.id if parent else None,
            grid_code=data.grid_code,
            phone=data.phone,
        )
        session.add(dept)
        session.flush()
        record(
            session,
            actor,
            action="department.create",
            entity="department",
            entity_id=dept.id,
            detail=data.model_dump(mode="json"),
        )
        result = DepartmentPublic.model_validate(dept)
        uow.commit()
        return result


def list_departments(
    uow: UnitOfWork, *, kind: DepartmentKind | None = None
) -> list[DepartmentPublic]:
    with uow.read():
        stmt = select(Department).order_by(Department.code)
        if kind is not None:
            stmt = stmt.where(Department.kind == kind.value)
        return [DepartmentPublic.model_validate(d) for d in uow.session.scalars(stmt)]


# --- users -------------------------------------------------------------------------------


def _user_by_username(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named '{username}'", field="username")
    return user


def add_user(uow: UnitOfWork, actor: Actor, data: UserCreate) -> UserPublic:
    require_role(actor, Role.ADMIN)
    password_hash = hash_password(data.password)  # validates before any write
    with uow:
        session = uow.session
        if session.scalar(select(User.id).where(User.username == data.username)):
            raise Conflict(f"username '{data.username}' is already taken", field="username")
        dept = department_by_code(session, data.department_code)
        user = User(
            username=data.username,
            display_name=data.display_name,
            password_hash=password_hash,
            role=data.role.value,
            department_id=dept.id,
            phone=data.phone,
        )
        session.add(user)
        session.flush()
        record(
            session,
            actor,
            action="user.create",
            entity="user",
            entity_id=user.id,
            detail={"username": user.username, "role": user.role, "department": dept.code},
        )
        result = UserPublic.model_validate(user)
        uow.commit()
        return result


def set_password(uow: UnitOfWork, actor: Actor, *, username: str, password: str) -> None:
    """Admins reset anyone's password; a user changes only their own."""
    if actor.role is not Role.ADMIN and actor.username != username:
        raise PermissionDenied("only an admin may set another user's password")
    password_hash = hash_password(password)
    with uow:
        session = uow.session
        user = _user_by_username(session, username)
        user.password_hash = password_hash
        user.password_changed_at = utcnow()
        # A new password ends every session of the account.
        session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
        record(session, actor, action="user.passwd", entity="user", entity_id=user.id)
        uow.commit()
    cache.bump("token")


def set_active(uow: UnitOfWork, actor: Actor, *, username: str, active: bool) -> None:
    require_role(actor, Role.ADMIN)
    with uow:
        user = _user_by_username(uow.session, username)
        user.active = active
        record(
            uow.session,
            actor,
            action="user.activate" if active else "user.deactivate",
            entity="user",
            entity_id=user.id,
        )
        uow.commit()
    cache.bump("token")


def list_users(uow: UnitOfWork, *, roles: Iterable[Role] | None = None) -> list[UserPublic]:
    with uow.read():
        stmt = select(User).order_by(User.username)
        if roles is not None:
            stmt = stmt.where(User.role.in_([r.value for r in roles]))
        return [UserPublic.model_validate(u) for u in uow.session.scalars(stmt)]


def actor_for(session: Session, user: User) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        department_id=user.department_id,
        department_scope=descendant_ids(session, user.department_id),
    )


def load_actor(uow: UnitOfWork, *, user_id: int) -> Actor:
    with uow.read():
        user = uow.session.get(User, user_id)
        if user is None or not user.active:
            raise Unauthenticated("this account does not exist or is disabled")
        return actor_for(uow.session, user)


def actor_by_username(uow: UnitOfWork, username: str) -> Actor:
    """The actor for a trusted local caller (the CLI run by someone with a shell on the server)."""
    with uow.read():
        user = _user_by_username(uow.session, username)
        if not user.active:
            raise Unauthenticated(f"the account '{username}' is disabled")
        return actor_for(uow.session, user)


def authenticate(uow: UnitOfWork, *, username: str, password: str) -> Actor:
    """Check a password. The same error for an unknown user and a wrong password."""
    with uow:
        session = uow.session
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            verify_password(dummy_hash(), password)
            raise Unauthenticated("wrong username or password")
        if not verify_password(user.password_hash, password) or not user.active:
            raise Unauthenticated("wrong username or password")
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
            uow.commit()
        return actor_for(session, user)


# --- tokens ------------------------------------------------------------------------------

TOKEN_LIFETIME = {"bearer": dt.timedelta(hours=12), "session": dt.timedelta(hours=12)}


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(uow: UnitOfWork, actor: Actor, *, kind: str = "bearer") -> str:
    """Create a random token for ``actor``; the caller hands it out once and never stores it."""
    if actor.user_id is None:
        raise PermissionDenied("the system actor cannot hold a token")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with uow:
        session = uow.session
        # Expired tokens are dead weight; sweeping them here keeps the table small.
        session.execute(delete(ApiToken).where(ApiToken.expires_at < now))
        session.add(
            ApiToken(
                token_hash=_token_hash(token),
                user_id=actor.user_id,
                kind=kind,
                created_at=now,
                expires_at=now + TOKEN_LIFETIME[kind],
            )
        )
        record(session, actor, action=f"auth.{kind}", entity="user", entity_id=actor.user_id)
        uow.commit()
    return token


TOKEN_CACHE_TTL = 30.0  # seconds a revocation made by another process may take to show


def cached_actor_for_token(info: dict[str, Any], token: str) -> Actor | None:
    """The actor of a token seen in the last ``TOKEN_CACHE_TTL`` s, without touching the database.

    ``info`` is the ``Database.info`` its sessions share. None means "ask ``actor_for_token``":
    the async API dependency answers most requests from here without a worker thread.
    """
    hit = cache.peek(info, "token", _token_hash(token))
    if hit is None:
        return None
    actor, expires_at = hit
    return actor if expires_at > utcnow() else None


def actor_for_token(uow: UnitOfWork, token: str) -> Actor:
    """The actor a token stands for; cached briefly, since every API request asks."""
    digest = _token_hash(token)
    with uow.read():
        session = uow.session
        hit = cache.get(session, "token", digest)
        if hit is not None:
            actor, expires_at = hit
            if expires_at > utcnow():
                return actor  # type: ignore[no-any-return]
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if row is None or row.expires_at <= utcnow():
            raise Unauthenticated("the token is unknown or has expired; log in again")
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            raise Unauthenticated("this account is disabled")
        actor = actor_for(session, user)
        cache.put(session, "token", (actor, row.expires_at), ttl=TOKEN_CACHE_TTL, key=digest)
        return actor


def revoke_token(uow: UnitOfWork, token: str) -> None:
    with uow:
        uow.session.execute(delete(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
        uow.commit()
    cache.bump("token")
