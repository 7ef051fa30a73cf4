"""The unit of work: one transaction per service call.

Service functions open it, do their work and call ``commit()``; leaving the block without a
commit rolls everything back, so a failed operation leaves no half-written state. Nothing
outside the service layer commits.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session


class UnitOfWork:
    """``with uow:`` opens a writing transaction; ``with uow.read():`` a reading one.

    The distinction matters on SQLite, where a writing transaction takes the database's single
    write lock at BEGIN (so read-then-write never deadlocks) while a reading one must not hold
    it: a long export would otherwise stall every intake.
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        read_session_factory: Callable[[], Session] | None = None,
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self._write_lock = write_lock
        self._holding_lock = False
        self._write_factory = session_factory
        self._read_factory = read_session_factory or session_factory
        self._session_factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open; use it as a context manager")
        return self._session

    def __enter__(self) -> UnitOfWork:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; services must not nest")
        if self._write_lock is not None and self._session_factory is self._write_factory:
            # SQLite has one writer: queueing writers on a lock in this process is fair and
            # cheap, where racing for BEGIN IMMEDIATE makes losers sleep in SQLite's busy
            # handler (backing off up to 100 ms) and starves some requests.
            self._write_lock.__enter__()
            self._holding_lock = True
        try:
            self._session = self._session_factory()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            session.rollback()
        finally:
            session.close()
            self._session = None
            self._session_factory = self._write_factory
            self._release()

    def _release(self) -> None:
        if self._holding_lock and self._write_lock is not None:
            self._holding_lock = False
            self._write_lock.__exit__(None, None, None)

    def read(self) -> UnitOfWork:
        """Use as ``with uow.read():`` for a transaction that only reads."""
        self._session_factory = self._read_factory
        return self

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
