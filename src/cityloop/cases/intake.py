"""Group commit for the intake API: one writer thread, one transaction per batch of reports.

A hotline integration or a sensor feed sends reports in bursts. Committing each in its own
transaction makes every report pay for a BEGIN, a COMMIT, a disk sync and a hand-off to a
worker thread, one after the other behind the database's single writer (SQLite) or its WAL
flush (PostgreSQL). Here the API's coroutines put their reports on a queue; one writer thread
takes whatever has arrived (up to ``max_batch``), runs ``service.report_many`` (each report in
its own savepoint, all committed together) and only then answers each waiting request. A quiet
server still commits each report on its own, at once: batches only form while the writer is
busy, which is exactly when they help.

Durability is unchanged: a request gets its 201 after the COMMIT that holds its case, never
before. A report refused on its own merits gets its own error; a failed COMMIT fails every
request of the batch, none of which was acknowledged.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass

from cityloop.cases import service
from cityloop.cases.schemas import CaseCreate
from cityloop.db.engine import Database
from cityloop.org.domain import Actor

MAX_BATCH = 32  # a batch holds the write lock for roughly this many reports' CPU time
IDLE_SECONDS = 30.0  # the writer thread exits after this long without work (restarts lazily)


@dataclass
class _Waiting:
    request: service.IntakeRequest
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[service.Reported]


def _settle(future: asyncio.Future[service.Reported], outcome: object) -> None:
    if future.done():  # the client went away; its case stands (a retry gets it back)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        assert isinstance(outcome, service.Reported)
        future.set_result(outcome)


class IntakeQueue:
    """Reports from many coroutines, committed by one thread in batches."""

    def __init__(
        self, database: Database, *, max_batch: int = MAX_BATCH, idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self._database = database
        self._max_batch = max_batch
        self._idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def report(
        self, actor: Actor | None, data: CaseCreate, idempotency_key: str | None = None
    ) -> service.Reported:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[service.Reported] = loop.create_future()
        self._queue.put(_Waiting(service.IntakeRequest(actor, data, idempotency_key), loop, future))
        self._ensure_writer()
        return await future

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cityloop-intake", daemon=True
                )
                self._thread.start()

    def _next_batch(self) -> list[_Waiting] | None:
        """The next batch, or None when the writer has been idle long enough to stop."""
        while True:
            try:
                first = self._queue.get(timeout=self._idle_seconds)
                break
            except queue.Empty:
                with self._lock:
                    # Checked under the lock ``_ensure_writer`` takes after every put: either
                    # the new item is seen here, or its sender starts a fresh writer.
                    if self._queue.empty():
                        self._thread = None
                        return None
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            outcomes: list[object]
            try:
                outcomes = list(
                    service.report_many(self._database.uow(), [w.request for w in batch])
                )
            except Exception as exc:  # the COMMIT failed: no report of the batch counts
                outcomes = [exc] * len(batch)
            for waiting, outcome in zip(batch, outcomes, strict=True):
                try:
                    waiting.loop.call_soon_threadsafe(_settle, waiting.future, outcome)
                except RuntimeError:  # that event loop has closed: nobody is waiting any more
                    continue


__all__ = ["IntakeQueue"]
