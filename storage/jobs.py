"""Jobs and their bookings: reading, creating without bookings, deleting."""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, String, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from storage import admission
from storage.errors import NotFound, OwnerCheck
from storage.list_fields import ListQuery
from storage.listing import apply
from storage.row_sets import RowSet
from storage.rows import chunked, now, timestamp
from storage.schema import bookings, jobs


def booking_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "job_id": row.job_id,
        "feature_id": row.feature_id,
        "quantity": row.quantity,
        "created_at": timestamp(row.created_at),
    }


def _job_json(row: Any, job_bookings: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "slurm_job_id": row.slurm_job_id,
        "cluster_client_id": row.cluster_client_id,
        "username": row.username,
        "lead_host": row.lead_host,
        "created_at": timestamp(row.created_at),
        "bookings": job_bookings,
    }


def _with_bookings(conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    """Attach bookings to job rows with one query per chunk of jobs (never one per job)."""
    by_job: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
    ids = list(by_job)
    for chunk in chunked(ids):
        query = select(bookings).where(bookings.c.job_id.in_(chunk)).order_by(bookings.c.id)
        for booking in conn.execute(query):
            by_job[booking.job_id].append(booking_json(booking))
    return [_job_json(row, by_job[row.id]) for row in rows]


def existing_id(conn: Connection, cluster_client_id: str, slurm_job_id: str) -> int | None:
    return conn.execute(
        select(jobs.c.id).where(
            jobs.c.cluster_client_id == cluster_client_id, jobs.c.slurm_job_id == slurm_job_id
        )
    ).scalar()


# Each key probed on the unique key (storage.row_sets says why).
_SLURM_JOB_IDS = RowSet("keys", (("slurm_job_id", String()),))


def _existing_ids(keys: Any) -> Any:
    found = select(jobs.c.id).where(
        jobs.c.cluster_client_id == bindparam("cluster"),
        jobs.c.slurm_job_id == keys.c.slurm_job_id,
    )
    return select(found.scalar_subquery(), keys.c.slurm_job_id)


_EXISTING_IDS = _SLURM_JOB_IDS.statements(_existing_ids)


def existing_ids(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(cluster_client_id, slurm_job_id) → id of the jobs that exist (a query per cluster)."""
    by_cluster: dict[str, list[tuple[str]]] = {}
    for cluster, slurm_job_id in keys:
        by_cluster.setdefault(cluster, []).append((slurm_job_id,))
    statement = _EXISTING_IDS[conn.dialect.name]
    return {
        (cluster, slurm_job_id): id_
        for cluster, slurm_job_ids in by_cluster.items()
        for id_, slurm_job_id in conn.execute(
            statement, {"cluster": cluster, **_SLURM_JOB_IDS.params(conn, slurm_job_ids)}
        )
        if id_ is not None
    }


def _insert_new(dialect: Any) -> Any:
    """INSERT that skips a job whose (cluster, slurm_job_id) exists instead of failing the
    transaction: it is shared by other callers' bookings and jobs (group commit)."""
    return (
        dialect.insert(jobs)
        .on_conflict_do_nothing()
        .returning(jobs.c.id, jobs.c.cluster_client_id, jobs.c.slurm_job_id)
    )


_INSERT_NEW = {"postgresql": _insert_new(postgresql), "sqlite": _insert_new(sqlite)}


def insert_jobs(conn: Connection, specs: Sequence[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Insert jobs (objects with the job's fields) without bookings; the new ones by
    (cluster_client_id, slurm_job_id). A job that exists already is left out."""
    if not specs:
        return {}
    created = now()
    rows = [
        {
            "slurm_job_id": spec.slurm_job_id,
            "cluster_client_id": spec.cluster_client_id,
            "username": spec.username,
            "lead_host": spec.lead_host,
            "created_at": created,
        }
        for spec in specs
    ]
    ids = {
        (cluster, slurm_job_id): id_
        for id_, cluster, slurm_job_id in conn.execute(_INSERT_NEW[conn.dialect.name], rows)
    }
    stamp = timestamp(created)
    return {
        key: {"id": ids[key], **row, "created_at": stamp, "bookings": []}
        for row in rows
        if (key := (row["cluster_client_id"], row["slurm_job_id"])) in ids
    }


def get(conn: Connection, id_: int) -> dict[str, Any]:
    row = conn.execute(select(jobs).where(jobs.c.id == id_)).first()
    if row is None:
        raise NotFound("job", id_)
    return _with_bookings(conn, [row])[0]


def get_by_slurm_id(conn: Connection, cluster_client_id: str, slurm_job_id: str) -> dict[str, Any]:
    row = conn.execute(
        select(jobs).where(
            jobs.c.cluster_client_id == cluster_client_id, jobs.c.slurm_job_id == slurm_job_id
        )
    ).first()
    if row is None:
        raise NotFound("job", slurm_job_id)
    return _with_bookings(conn, [row])[0]


def list_(
    conn: Connection, spec: ListQuery, cluster_client_id: str | None = None
) -> list[dict[str, Any]]:
    query = select(jobs)
    if cluster_client_id is not None:
        query = query.where(jobs.c.cluster_client_id == cluster_client_id)
    query = apply(query, spec, "jobs")
    return _with_bookings(conn, list(conn.execute(query)))


def _owner(conn: Connection, id_: int) -> str:
    """The cluster a job belongs to (whose ownership the caller's identity decides)."""
    cluster: str | None = conn.execute(
        select(jobs.c.cluster_client_id).where(jobs.c.id == id_)
    ).scalar()
    if cluster is None:
        raise NotFound("job", id_)
    return cluster


def delete_(conn: Connection, id_: int, check_owner: OwnerCheck) -> dict[str, Any]:
    """Delete a job and its bookings, if ``check_owner`` lets the caller."""
    check_owner(_owner(conn, id_))
    return _delete(conn, id_)


def delete_by_slurm_id(
    conn: Connection, cluster_client_id: str, slurm_job_id: str
) -> dict[str, Any]:
    id_ = existing_id(conn, cluster_client_id, slurm_job_id)
    if id_ is None:
        raise NotFound("job", slurm_job_id)
    return _delete(conn, id_)


def _delete(conn: Connection, id_: int) -> dict[str, Any]:
    admission.delete_bookings(conn, bookings.c.job_id == id_)
    conn.execute(delete(jobs).where(jobs.c.id == id_))
    return {"deleted": id_}
