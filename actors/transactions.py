"""The admitting transactions: the rule re-checked against the locked database rows.

The actors' counters are a cache; these functions run in one storage transaction each,
read the truth under a write lock, decide with the pure rule, write, and return the fresh
row. So several server processes on one database never overbook.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Connection

from actors.admission import Counters, admit
from storage import admission as primitives
from storage import jobs as job_rows
from storage.errors import Conflict, DomainError, Forbidden, NotEnoughLicenses, NotFound


@dataclass(frozen=True, slots=True)
class BookingRequest:
    job_id: int
    quantity: int
    cluster: str | None  # the caller's cluster; None for an admin, who may book any job


Outcome = dict[str, Any] | DomainError


def counters_of(row: primitives.FeatureRow) -> Counters:
    return Counters(row.total, row.used, row.reserved, row.booked_total)


def _job_problem(
    owner: str | None, request: BookingRequest, feature: primitives.FeatureRow
) -> DomainError | None:
    if owner is None:
        return NotFound("job", request.job_id)
    if request.cluster is not None and owner != request.cluster:
        return Forbidden("the job belongs to another cluster")
    if owner != feature.cluster_client_id:
        return Conflict(
            "the feature belongs to another cluster than the job",
            job_id=request.job_id,
            feature_id=feature.id,
        )
    return None


def book_group(
    conn: Connection, feature_id: int, requests: Sequence[BookingRequest], held: int
) -> tuple[list[Outcome], primitives.FeatureRow]:
    """Admit a group of bookings of one feature in one transaction, in request order."""
    feature = primitives.read_feature(conn, feature_id, lock=True)
    owners = primitives.job_owners(conn, {r.job_id for r in requests})
    problems = [_job_problem(owners.get(r.job_id), r, feature) for r in requests]
    valid = [r for r, problem in zip(requests, problems, strict=True) if problem is None]
    verdicts, after = admit(counters_of(feature), [r.quantity for r in valid], held)
    admitted = [r for r, v in zip(valid, verdicts, strict=True) if v.admitted]
    created = iter(
        primitives.insert_bookings(conn, feature_id, [(r.job_id, r.quantity) for r in admitted])
    )
    if admitted:
        primitives.set_booked_total(conn, feature_id, after.booked_total)
    verdict = iter(verdicts)
    outcomes: list[Outcome] = []
    for request, problem in zip(requests, problems, strict=True):
        if problem is not None:
            outcomes.append(problem)
            continue
        v = next(verdict)
        outcomes.append(
            next(created)
            if v.admitted
            else NotEnoughLicenses(
                feature_id, feature.product_feature, request.quantity, v.available
            )
        )
    return outcomes, replace(feature, booked_total=after.booked_total)


@dataclass(frozen=True, slots=True)
class JobSpec:
    slurm_job_id: str
    cluster_client_id: str
    username: str
    lead_host: str


def create_job(
    conn: Connection, spec: JobSpec, wanted: Sequence[tuple[int, int]]
) -> dict[str, Any]:
    """Insert a job and all its (feature_id, quantity) bookings, or nothing.

    The features are locked in id order (the lock order of every writer) and each is
    checked against the rule for the job's whole quantity of it.
    """
    existing = job_rows.existing_id(conn, spec.cluster_client_id, spec.slurm_job_id)
    if existing is not None:
        raise Conflict("a job with this cluster and slurm_job_id exists", job_id=existing)
    per_feature: dict[int, int] = {}
    for feature_id, quantity in wanted:
        per_feature[feature_id] = per_feature.get(feature_id, 0) + quantity
    rows = primitives.read_features(conn, per_feature, lock=True)
    for feature_id, quantity in sorted(per_feature.items()):
        row = rows.get(feature_id)
        if row is None:
            raise NotFound("feature", feature_id)
        [verdict], after = admit(counters_of(row), [quantity])
        if not verdict.admitted:
            raise NotEnoughLicenses(feature_id, row.product_feature, quantity, verdict.available)
        primitives.set_booked_total(conn, feature_id, after.booked_total)
    job = job_rows.insert_job(conn, **asdict(spec))
    for feature_id, quantity in wanted:
        job["bookings"] += primitives.insert_bookings(conn, feature_id, [(job["id"], quantity)])
    return job
