"""Small helpers shared by the query modules: time, row lookups, integrity errors."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import IntegrityError

from storage.errors import Conflict, NotFound


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC; SQLite hands back naive datetimes that were stored as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def require(conn: Connection, table: Table, id_: int, resource: str) -> dict[str, Any]:
    """The row of ``table`` with ``id_``, or NotFound naming ``resource``."""
    row = conn.execute(select(table).where(table.c.id == id_)).mappings().first()
    if row is None:
        raise NotFound(resource, id_)
    return dict(row)


@contextmanager
def unique(reason: str, **ids: Any) -> Iterator[None]:
    """Turn a unique-key violation inside the block into Conflict(reason, **ids).

    The transaction is then rolled back whole; other integrity errors are bugs and re-raise.
    """
    try:
        yield
    except IntegrityError as error:
        text = str(error.orig).lower()
        if "unique" in text or "duplicate key" in text:
            raise Conflict(reason, **ids) from None
        raise
