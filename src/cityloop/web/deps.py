"""Typed FastAPI dependencies shared by every capability's ``views.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from cityloop.db.engine import Database
from cityloop.db.uow import UnitOfWork
from cityloop.errors import Unauthenticated
from cityloop.org import service as org
from cityloop.org.domain import Actor

SESSION_COOKIE = "cityloop_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_uow(database: DatabaseDep) -> UnitOfWork:
    return database.uow()


UowDep = Annotated[UnitOfWork, Depends(get_uow)]


async def get_current_actor(
    request: Request,
    database: DatabaseDep,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
) -> Actor:
    """The API takes a bearer token; the web UI sends its session cookie instead.

    Async, so a token seen in the last few seconds is answered from the cache on the event
    loop; only a miss goes to a worker thread for the database lookup.
    """
    token = bearer
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        # The browser sends the cookie on its own, so a cookie alone authorises only reads
        # here: the web forms carry CSRF tokens, the API's writes need a bearer token.
        if token and request.method not in SAFE_METHODS:
            raise Unauthenticated(
                "API writes need 'Authorization: Bearer <token>'; the session cookie only reads"
            )
    if not token:
        raise Unauthenticated("log in first: send 'Authorization: Bearer <token>'")
    actor = org.cached_actor_for_token(database.info, token)
    if actor is not None:
        return actor
    return await run_in_threadpool(org.actor_for_token, database.uow(), token)


CurrentActor = Annotated[Actor, Depends(get_current_actor)]
