"""SQLite WAL checkpoints off the commit path.

By default the connection whose commit pushes the WAL past 1,000 pages copies the WAL
into the database and fsyncs it, inside that commit: one booking in a few hundred waited
for a checkpoint, which made the p99. Here a thread of its own runs a PASSIVE checkpoint
(it never blocks readers or the writer) every ``interval`` seconds on its own connection,
and the writer checkpoints itself only when the WAL grows past ``WRITER_LIMIT_PAGES``,
i.e. when this thread falls far behind.
"""

import sqlite3
import threading

INTERVAL_S = 0.5
WRITER_LIMIT_PAGES = 20_000  # 80 MB of WAL at 4 KiB pages
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the WAL file is cut back to after a reset


class Checkpointer:
    def __init__(self, path: str, timeout: float, interval: float = INTERVAL_S) -> None:
        self._path = path
        self._timeout = timeout
        self._interval = interval
        self._stop = threading.Event()
        self.done = 0  # checkpoints run, for tests and the curious
        self._thread = threading.Thread(
            target=self._run, name="lmrpc-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, timeout=self._timeout, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy or gone for a moment: the next round tries again
                self.done += 1
        finally:
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
