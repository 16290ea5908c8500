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

from storage.errors import StorageUnavailable

T = TypeVar("T")
Transaction = Callable[[Connection], T]

_Job = tuple[Callable[[Connection], Any], Callable[[outcome.Outcome[Any]], None]]

# Errors that mean "the database is not there or did not answer in time": transient.
_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


class ThreadRunner:
    """``threads`` workers, each with one connection of ``engine``, taking jobs in order."""

    def __init__(self, engine: Engine, threads: int, name: str) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction on a storage thread and return its result.

        The wait cannot be cancelled: the transaction runs to its end (bounded by the
        database timeouts) so that a caller never abandons a commit half-way.
        """
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()

        def deliver(result: outcome.Outcome[Any]) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        self._queue.put((fn, deliver))
        result: T = await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)
        return result

    def _work(self) -> None:
        connection: Connection | None = None
        while (job := self._queue.get()) is not None:
            fn, deliver = job
            try:
                if connection is None or connection.closed:
                    connection = self._engine.connect()
                result = outcome.capture(self._transact, connection, fn)
            except _UNAVAILABLE as error:
                result = outcome.Error(_unavailable(error))
            deliver(result)
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

    async def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            await trio.to_thread.run_sync(thread.join)


def _unavailable(error: BaseException) -> StorageUnavailable:
    return StorageUnavailable(type(error).__name__)
