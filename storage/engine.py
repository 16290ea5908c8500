"""Engines for the two backends, with the connection settings each one needs."""

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from storage.checkpoint import WAL_SIZE_LIMIT, WRITER_LIMIT_PAGES
from storage.timeouts import DEFAULT_DB_TIMEOUT_S

PG_CONNECT_TIMEOUT_S = 5


def normalize_url(url: str) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL, the stdlib module for SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")


def _private_file(path: Path) -> None:
    """Create the SQLite file with mode 0600 (in a 0700 directory when that is new) before
    SQLite does: SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.
    Files of an older version that others could read are tightened."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    database = make_url(url).database
    return database if database and database != ":memory:" else None


def create(
    url: str,
    *,
    pool_size: int = 4,
    immediate: bool = False,
    schema: str | None = None,
    timeout: float = DEFAULT_DB_TIMEOUT_S,
) -> Engine:
    """An engine for ``url``.

    SQLite: WAL, full fsync on commit (an answered booking must survive a crash), foreign
    keys on, and our own BEGIN so that writers take the lock at the start (``immediate``).
    Checkpoints are left to storage/checkpoint.py; a commit runs one only when the WAL has
    grown past its limit.
    PostgreSQL: bounded connect, statement and lock waits so an outage becomes an error.
    ``timeout``: the seconds a transaction may wait on the database.
    Both: errors never carry the statement's parameters (names, hosts, users), so no log
    line that shows an error can hold them (logs.py's promise).
    """
    url = normalize_url(url)
    timeout_ms = int(timeout * 1000)
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": timeout_ms / 1000},
            pool_size=pool_size,
            max_overflow=0,
            hide_parameters=True,
        )
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "foreign_keys=ON",
                f"busy_timeout={timeout_ms}",
                f"wal_autocheckpoint={WRITER_LIMIT_PAGES}",
                f"journal_size_limit={WAL_SIZE_LIMIT}",
            ):
                dbapi_conn.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

        return engine
    options = (
        f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms * 4 // 5}"
        " -c idle_in_transaction_session_timeout=60000"
    )
    engine = create_engine(
        url,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "options": options},
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        hide_parameters=True,
    )
    if schema is not None:  # a tenant's schema: every table name is qualified with it
        return engine.execution_options(schema_translate_map={None: schema})
    return engine
