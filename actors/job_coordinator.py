"""Admits a job with bookings of several features all or nothing (DESIGN.md §2).

The job goes to the committer whole: its transaction resolves the feature names, checks
each feature against the rule under the features' locks together with the other bookings
and jobs of that commit, and writes the job with all its bookings, or nothing.
"""

from collections.abc import Sequence
from typing import Any

from actors.supervisor import Supervisor
from actors.transactions import JobRequest, JobSpec
from storage import jobs as job_rows
from storage.errors import Conflict


async def admit_job(
    supervisor: Supervisor, spec: JobSpec, wanted: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    """Create the job with bookings of ``wanted`` (product.feature, quantity) pairs."""
    try:
        return await supervisor.create_job(JobRequest(spec, wanted))
    except Conflict as conflict:
        if "job_id" in conflict.ids:
            raise
        # Two creates of the same job raced in one commit or across processes; name the winner.
        existing = await supervisor.storage.priority_read(
            lambda conn: job_rows.existing_id(conn, spec.cluster_client_id, spec.slurm_job_id)
        )
        raise Conflict(conflict.reason, job_id=existing) from None
