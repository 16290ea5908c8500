"""Bookings: reading and deleting (admitting them is the actors' work)."""

from typing import Any

from sqlalchemy import Connection, select

from storage import admission
from storage.errors import Forbidden, NotFound
from storage.jobs import booking_json
from storage.listing import ListQuery, apply
from storage.schema import bookings, jobs


def get(conn: Connection, id_: int) -> dict[str, Any]:
    row = conn.execute(select(bookings).where(bookings.c.id == id_)).first()
    if row is None:
        raise NotFound("booking", id_)
    return booking_json(row)


def list_(conn: Connection, spec: ListQuery) -> list[dict[str, Any]]:
    query = apply(select(bookings), spec, "bookings")
    return [booking_json(row) for row in conn.execute(query)]


def delete_(conn: Connection, id_: int, caller_cluster: str | None) -> tuple[int, list[int]]:
    """Delete one booking of a job of the caller's cluster (``None``: an admin)."""
    row = conn.execute(
        select(bookings.c.id, jobs.c.cluster_client_id)
        .join(jobs, jobs.c.id == bookings.c.job_id)
        .where(bookings.c.id == id_)
    ).first()
    if row is None:
        raise NotFound("booking", id_)
    if caller_cluster is not None and row.cluster_client_id != caller_cluster:
        raise Forbidden("the booking's job belongs to another cluster")
    return id_, admission.release(conn, bookings.c.id == id_)
