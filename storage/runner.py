"""Long-lived storage threads fed by a queue, awaited from Trio.

A transaction is one plain function ``fn(connection)``; it runs whole in one thread.
Handing work to a standing thread costs about half of ``trio.to_thread.run_sync`` (DESIGN.md
§3), and each thread keeps its own connection, so no pool checkout or ping per call.
"""

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from storage.errors import StorageFailure, StorageUnavailable

T = TypeVar("T")


class _Job:
    """A transaction in the queue: started by a thread, or abandoned by its caller first."""

    __slots__ = ("_lock", "_state", "deliver", "fn")

    def __init__(
        self, fn: Callable[[Connection], Any], deliver: Callable[[outcome.Outcome[Any]], None]
    ) -> None:
        self.fn = fn
        self.deliver = deliver
        self._lock = threading.Lock()
        self._state = "queued"

    def start(self) -> bool:
        """Called by the thread that takes it: False if the caller already gave up."""
        with self._lock:
            if self._state == "abandoned":
                return False
            self._state = "started"
            return True

    def abandon(self) -> bool:
        """Called by the caller giving up: False if a thread already started it."""
        with self._lock:
            if self._state == "started":
                return False
            self._state = "abandoned"
            return True


# Errors that mean "the database is not there or did not answer in time": transient.
_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


class ThreadRunner:
    """``threads`` workers, each with one connection of ``engine``, taking jobs in order."""

    def __init__(self, engine: Engine, threads: int, name: str, *, queue_timeout: float) -> None:
        self._engine = engine
        # How long a transaction may wait for a free thread before it is given up:
        # a stuck database fails callers fast instead of piling them up behind it.
        self._queue_timeout = queue_timeout
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.unavailable = 0  # transactions that failed as unavailable, for the metrics
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction on a storage thread and return its result.

        A transaction still waiting in the queue after the queue timeout is abandoned
        (StorageUnavailable), and so is one whose caller is cancelled: it never started,
        so nothing changed. Once a thread has taken it, the wait cannot be cancelled: the
        transaction runs to its end (bounded by the database timeouts) so that a caller
        never abandons a commit half-way.
        """
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()

        def deliver(result: outcome.Outcome[Any]) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        job = _Job(fn, deliver)

        def abort(_: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.SUCCEEDED if job.abandon() else trio.lowlevel.Abort.FAILED

        self._queue.put(job)
        try:
            with trio.move_on_after(self._queue_timeout) as waited:
                result: T = await trio.lowlevel.wait_task_rescheduled(abort)
                return result
            assert waited.cancelled_caught
            raise StorageUnavailable("the storage queue wait timed out")
        except StorageUnavailable:
            self.unavailable += 1
            raise

    def _work(self) -> None:
        connection: Connection | None = None
        while (job := self._queue.get()) is not None:
            if not job.start():
                continue  # its caller gave up before it started
            try:
                if connection is None or connection.closed:
                    connection = self._engine.connect()
                result = outcome.capture(self._transact, connection, job.fn)
            except _UNAVAILABLE as error:
                result = outcome.Error(_unavailable(error))
            job.deliver(result)
        if connection is not None:
            connection.close()

    @staticmethod
    def _transact(connection: Connection, fn: Callable[[Connection], T]) -> T:
        try:
            with connection.begin():
                return fn(connection)
        except _UNAVAILABLE as error:
            if not connection.invalidated:
                connection.invalidate()
            raise _unavailable(error) from error
        except sa_exc.StatementError as error:
            raise _failure(error) from None

    async def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            await trio.to_thread.run_sync(thread.join)


def _unavailable(error: BaseException) -> StorageUnavailable:
    return StorageUnavailable(type(error).__name__)


def _failure(error: sa_exc.StatementError) -> StorageFailure:
    """The error without its values: the driver's class, SQLSTATE and primary message
    (psycopg keeps the DETAIL, which may quote the row, apart) and the statement text."""
    orig = error.orig
    diag = getattr(orig, "diag", None)
    message = getattr(diag, "message_primary", None) or str(orig).partition("\n")[0]
    state = getattr(orig, "sqlstate", None)
    return StorageFailure(
        f"{type(orig).__name__}{f' ({state})' if state else ''}: {message} [SQL: {error.statement}]"
    )
