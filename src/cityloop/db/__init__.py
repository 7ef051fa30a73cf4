"""Storage: engine set-up, the declarative base, the unit of work and migrations."""

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow
from cityloop.db.engine import Database, make_engine
from cityloop.db.uow import UnitOfWork

__all__ = ["Base", "BigIntPK", "Database", "UTCDateTime", "UnitOfWork", "make_engine", "utcnow"]
