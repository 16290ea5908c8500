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
from actors.transactions import JobSpec, create_job, quantities_per_feature
from storage import admission as primitives
from storage import jobs as job_rows
from storage.errors import Conflict, NotEnoughLicenses, NotFound


def _resolve(conn: Connection, spec: JobSpec, names: set[str]) -> dict[str, int]:
    job_rows.ensure_new(conn, spec.cluster_client_id, spec.slurm_job_id)
    return primitives.resolve_features(conn, spec.cluster_client_id, names)


async def admit_job(
    supervisor: Supervisor, spec: JobSpec, wanted: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    """Create the job with bookings of ``wanted`` (product.feature, quantity) pairs."""
    storage = supervisor.storage
    try:
        if not wanted:
            return await storage.write(lambda conn: job_rows.insert_job(conn, **asdict(spec)))
        names = {name for name, _ in wanted}
        ids = await storage.priority_read(lambda conn: _resolve(conn, spec, names))
        missing = sorted(names - ids.keys())
        if missing:
            raise NotFound("feature", missing=missing)
        bookings = [(ids[name], quantity) for name, quantity in wanted]
        per_feature = quantities_per_feature(bookings)
        try:
            holds = await supervisor.hold(per_feature)
            slot = supervisor.sampler.due(per_feature)
            try:
                job = await storage.write(lambda conn: create_job(conn, spec, bookings, slot))
            except BaseException:
                supervisor.settle(holds, booked=False)
                raise
        except NotEnoughLicenses as refusal:
            supervisor.refuse(refusal, spec.cluster_client_id)
            raise
        supervisor.settle(holds, booked=True)
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
