"""Small helpers shared by the query modules: time, row lookups, integrity errors."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import IntegrityError

from storage.errors import Conflict, NotFound

T = TypeVar("T")

CHUNK = 5_000  # values per IN list, well under SQLite's bound on parameters


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; SQLite hands back naive datetimes that were stored as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC."""
    return utc(value).isoformat().replace("+00:00", "Z")


def chunked(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most ``size``: one query per chunk of parents, not per row."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def require(
    conn: Connection, table: Table, id_: int, resource: str, *, lock: bool = False
) -> dict[str, Any]:
    """The row of ``table`` with ``id_``, or NotFound naming ``resource``.

    ``lock``: hold the row (PostgreSQL ``FOR NO KEY UPDATE``, which still lets other
    transactions insert children referencing it) until the transaction ends.
    """
    query = select(table).where(table.c.id == id_)
    if lock:
        query = query.with_for_update(key_share=True)
    row = conn.execute(query).mappings().first()
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
