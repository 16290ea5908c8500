"""The async face of storage: ``await storage.read(fn)`` / ``await storage.write(fn)``."""

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, text

from storage import engine as engines
from storage.errors import StorageUnavailable
from storage.runner import ThreadRunner

T = TypeVar("T")

SQLITE_READERS = 2
POSTGRES_THREADS = 4


class Storage:
    """Routes transactions to storage threads.

    SQLite has one writer (``BEGIN IMMEDIATE``, so writers queue here rather than fail on a
    busy database) and a few readers, which WAL lets run beside it. PostgreSQL runs both on
    a small pool; its row locks serialize what must be serialized.
    """

    def __init__(
        self, url: str, *, threads: int = POSTGRES_THREADS, schema: str | None = None
    ) -> None:
        """``schema``: a PostgreSQL schema holding a tenant's tables (multi-tenancy)."""
        self.url = url
        self.errors = 0  # transactions that failed as unavailable, for the metrics
        self.dialect = "sqlite" if engines.is_sqlite(url) else "postgresql"
        if self.dialect == "sqlite":
            self._write_engine = engines.create(url, pool_size=1, immediate=True)
            self._read_engine = engines.create(url, pool_size=SQLITE_READERS)
            self._writer = ThreadRunner(self._write_engine, 1, "lmrpc-sqlite-writer")
            self._reader = ThreadRunner(self._read_engine, SQLITE_READERS, "lmrpc-sqlite-reader")
        else:
            self._write_engine = self._read_engine = engines.create(
                url, pool_size=threads, schema=schema
            )
            self._writer = self._reader = ThreadRunner(self._write_engine, threads, "lmrpc-pg")

    async def read(self, fn: Callable[[Connection], T]) -> T:
        try:
            return await self._reader.run(fn)
        except StorageUnavailable:
            self.errors += 1
            raise

    async def write(self, fn: Callable[[Connection], T]) -> T:
        try:
            return await self._writer.run(fn)
        except StorageUnavailable:
            self.errors += 1
            raise

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers a trivial query."""
        await self.read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())

    async def close(self) -> None:
        await self._writer.close()
        if self._reader is not self._writer:
            await self._reader.close()
        self._write_engine.dispose()
        self._read_engine.dispose()
