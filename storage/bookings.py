"""Bookings: reading and deleting (admitting them is the actors' work)."""

from typing import Any

from sqlalchemy import Connection, select

from storage import admission
from storage.errors import NotFound, OwnerCheck
from storage.jobs import booking_json
from storage.list_fields import ListQuery
from storage.listing import apply
from storage.schema import bookings, jobs


def get(conn: Connection, id_: int) -> dict[str, Any]:
    row = conn.execute(select(bookings).where(bookings.c.id == id_)).first()
    if row is None:
        raise NotFound("booking", id_)
    return booking_json(row)


def list_(conn: Connection, spec: ListQuery) -> list[dict[str, Any]]:
    query = apply(select(bookings), spec, "bookings")
    return [booking_json(row) for row in conn.execute(query)]


def _owner(conn: Connection, id_: int) -> str:
    """The cluster of the booking's job (whose ownership the caller's identity decides)."""
    cluster: str | None = conn.execute(
        select(jobs.c.cluster_client_id)
        .join(bookings, jobs.c.id == bookings.c.job_id)
        .where(bookings.c.id == id_)
    ).scalar()
    if cluster is None:
        raise NotFound("booking", id_)
    return cluster


def delete_(conn: Connection, id_: int, check_owner: OwnerCheck) -> dict[str, Any]:
    """Delete one booking, if ``check_owner`` lets the caller."""
    check_owner(_owner(conn, id_))
    admission.delete_bookings(conn, bookings.c.id == id_)
    return {"deleted": id_}
