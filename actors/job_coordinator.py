"""Admits a job with bookings of several features all or nothing (DESIGN.md §2).

It holds each feature's quantity at its actor (answered at once, never blocking on another
actor), writes the job and all bookings in one transaction that re-checks the rule under
the features' locks, then confirms the holds, or gives them all back on any failure.
"""

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection

from actors.supervisor import Supervisor
from actors.transactions import JobSpec, create_job
from storage import admission as primitives
from storage import jobs as job_rows
from storage.errors import Conflict, NotEnoughLicenses, NotFound


def _resolve(conn: Connection, spec: JobSpec, names: set[str]) -> tuple[dict[str, int], int | None]:
    ids = primitives.resolve_features(conn, spec.cluster_client_id, names)
    return ids, job_rows.existing_id(conn, spec.cluster_client_id, spec.slurm_job_id)


async def admit_job(
    supervisor: Supervisor, spec: JobSpec, wanted: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    """Create the job with bookings of ``wanted`` (product.feature, quantity) pairs."""
    storage = supervisor.storage
    try:
        if not wanted:
            return await storage.write(lambda conn: job_rows.insert_job(conn, **asdict(spec)))
        names = {name for name, _ in wanted}
        ids, existing = await storage.priority_read(lambda conn: _resolve(conn, spec, names))
        if existing is not None:
            raise Conflict("a job with this cluster and slurm_job_id exists", job_id=existing)
        missing = sorted(names - ids.keys())
        if missing:
            raise NotFound("feature", missing=missing)
        bookings = [(ids[name], quantity) for name, quantity in wanted]
        per_feature: dict[int, int] = {}
        for feature_id, quantity in bookings:
            per_feature[feature_id] = per_feature.get(feature_id, 0) + quantity
        try:
            holds = await supervisor.hold(per_feature)
            slot = supervisor.sampler.due(per_feature)
            try:
                job = await storage.write(lambda conn: create_job(conn, spec, bookings, slot))
            except BaseException:
                supervisor.release(holds, booked=False)
                raise
        except NotEnoughLicenses as refusal:
            supervisor.refuse(refusal, spec.cluster_client_id)
            raise
        supervisor.release(holds, booked=True)
        supervisor.admitted += len(bookings)
        return job
    except Conflict as conflict:
        if "job_id" in conflict.ids:
            raise
        # Two creates of the same job raced past the check; name the winner.
        existing = await storage.priority_read(
            lambda conn: job_rows.existing_id(conn, spec.cluster_client_id, spec.slurm_job_id)
        )
        raise Conflict(conflict.reason, job_id=existing) from None
