"""SQLite's WAL checkpoints run on their own thread, off the commit path. SQLite only:
PostgreSQL has no such checkpoint in the service's hands."""

import shutil
import sqlite3
from pathlib import Path

import trio

from storage.checkpoint import WRITER_LIMIT_PAGES
from storage.facade import Storage
from tests.factories import make_feature


async def test_committed_rows_reach_the_database_file_without_a_writer_checkpoint(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "lmrpc.sqlite3"
    shutil.copy(sqlite_template, path)
    storage = Storage(f"sqlite:///{path}")
    try:
        limit = await storage.write(
            lambda conn: conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        )
        assert limit == WRITER_LIMIT_PAGES  # the writer alone would not checkpoint yet
        for _ in range(20):
            await make_feature(storage, 5)
        assert storage._checkpointer is not None
        after_writes = storage._checkpointer.done
        with trio.fail_after(10):
            while storage._checkpointer.done < after_writes + 1:
                await trio.sleep(0.05)
        # The database file alone, without its WAL, holds every committed feature.
        alone = tmp_path / "alone.sqlite3"
        shutil.copy(path, alone)
        with sqlite3.connect(alone) as conn:
            assert conn.execute("SELECT count(*) FROM features").fetchone() == (20,)
    finally:
        await storage.close()
