"""The async face of storage: ``await storage.read(fn)`` / ``await storage.write(fn)``."""

import copy
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import trio
from sqlalchemy import Connection, text

from storage import engine as engines
from storage.checkpoint import Checkpointer
from storage.health import CachedCheck
from storage.runner import ThreadRunner
from storage.timeouts import DEFAULT_DB_TIMEOUT_S

T = TypeVar("T")

SQLITE_READERS = 2
POSTGRES_THREADS = 4
PRIORITY_THREADS = 1

# Entered around each transaction of a gated view; may raise to refuse it.
Gate = Callable[[], AbstractAsyncContextManager[None]]


class Storage:
    """Routes transactions to three lanes of storage threads, each with its own queue.

    - writes: SQLite has one writer (``BEGIN IMMEDIATE``, so writers queue here rather than
      fail on a busy database); PostgreSQL a small pool whose row locks serialize what must
      be serialized.
    - reads: callers' reads, beside the writer (WAL on SQLite).
    - priority reads: admissions and the health check. Their own threads, so callers' reads
      queued by a big batch never delay or time out an admission or ``/healthz``.

    On PostgreSQL ``threads`` is the size of the read and of the write pool each.
    """

    def __init__(
        self,
        url: str,
        *,
        threads: int = POSTGRES_THREADS,
        schema: str | None = None,
        timeout: float = DEFAULT_DB_TIMEOUT_S,
    ) -> None:
        """``schema``: a PostgreSQL schema holding a tenant's tables (multi-tenancy);
        ``timeout``: the seconds a transaction may wait on the database or in a queue."""
        self.url = url
        self.dialect = "sqlite" if engines.is_sqlite(url) else "postgresql"
        self._gates: tuple[Gate, Gate] | None = None  # (reads, writes) of a gated view
        if self.dialect == "sqlite":
            self._write_engine = engines.create(url, pool_size=1, immediate=True, timeout=timeout)
            self._read_engine = engines.create(
                url, pool_size=SQLITE_READERS + PRIORITY_THREADS, timeout=timeout
            )
            readers = SQLITE_READERS
            self._writer = ThreadRunner(
                self._write_engine, 1, "lmrpc-sqlite-writer", queue_timeout=timeout
            )
            path = engines.sqlite_file(url)
            self._checkpointer = Checkpointer(path, timeout) if path else None
        else:
            pool = 2 * threads + PRIORITY_THREADS
            self._write_engine = self._read_engine = engines.create(
                url, pool_size=pool, schema=schema, timeout=timeout
            )
            readers = threads
            self._writer = ThreadRunner(
                self._write_engine, threads, "lmrpc-pg-writer", queue_timeout=timeout
            )
            self._checkpointer = None
        prefix = f"lmrpc-{self.dialect}"
        self._reader = ThreadRunner(
            self._read_engine, readers, f"{prefix}-reader", queue_timeout=timeout
        )
        self._priority = ThreadRunner(
            self._read_engine, PRIORITY_THREADS, f"{prefix}-priority", queue_timeout=timeout
        )
        self._lanes = (self._writer, self._reader, self._priority)
        self.recent_ping = CachedCheck(self.ping)

    @property
    def errors(self) -> int:
        """Transactions that failed as unavailable, for the metrics."""
        return sum(lane.unavailable for lane in self._lanes)

    def gated(self, reads: Gate, writes: Gate) -> "Storage":
        """This storage with every ``read`` entering ``reads`` first and every ``write``
        ``writes``: the calls of one batch share a few slots through them
        (lmrpc/dispatch.py), so a batch cannot fill a queue. Priority reads, and the
        actors' transactions (they hold the tenant's own storage), are not gated."""
        view = copy.copy(self)
        view._gates = (reads, writes)
        return view

    async def read(self, fn: Callable[[Connection], T]) -> T:
        if self._gates is None:
            return await self._reader.run(fn)
        async with self._gates[0]():
            return await self._reader.run(fn)

    async def priority_read(self, fn: Callable[[Connection], T]) -> T:
        """A read that must not wait behind callers' reads: admissions, the health check."""
        return await self._priority.run(fn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        if self._gates is None:
            return await self._writer.run(fn)
        async with self._gates[1]():
            return await self._writer.run(fn)

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers a trivial query. For a
        poller, ``recent_ping()``: the same, answered from the last second's ping."""
        await self.priority_read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())

    async def close(self) -> None:
        for lane in self._lanes:
            await lane.close()
        if self._checkpointer is not None:
            await trio.to_thread.run_sync(self._checkpointer.close)
        self._write_engine.dispose()
        self._read_engine.dispose()
