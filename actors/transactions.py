"""The admitting transactions: the rule re-checked against the locked database rows.

The actors' counters are a cache; these functions run in one storage transaction each,
read the truth under a write lock, decide with the pure rule, write, and return the fresh
row. So several server processes on one database never overbook.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Connection

from actors.rule import Counters, admit
from actors.usage import SampleSlot
from storage import admission as primitives
from storage import history
from storage import jobs as job_rows
from storage.errors import Conflict, DomainError, NotEnoughLicenses, NotFound, OwnerCheck


@dataclass(frozen=True, slots=True)
class BookingRequest:
    job_id: int
    quantity: int
    check_owner: OwnerCheck  # the caller's identity decides whether it may book the job


Outcome = dict[str, Any] | DomainError


def counters_of(row: primitives.FeatureRow) -> Counters:
    return Counters(row.total, row.used, row.reserved, row.booked_total)


def _job_problem(
    owner: str | None, request: BookingRequest, feature: primitives.FeatureRow
) -> DomainError | None:
    if owner is None:
        return NotFound("job", request.job_id)
    try:
        request.check_owner(owner)
    except DomainError as refused:
        return refused
    if owner != feature.cluster_client_id:
        return Conflict(
            "the feature belongs to another cluster than the job",
            job_id=request.job_id,
            feature_id=feature.id,
        )
    return None


@dataclass(frozen=True, slots=True)
class FeatureGroup:
    """One actor's waiting bookings of its feature, and what it holds for pending jobs."""

    feature_id: int
    requests: Sequence[BookingRequest]
    held: int


GroupResult = tuple[list[Outcome], primitives.FeatureRow] | NotFound


def sample_booked(
    conn: Connection,
    slot: SampleSlot | None,
    rows: dict[int, primitives.FeatureRow],
    booked_totals: dict[int, int],
) -> None:
    """Sample the slot's features as this transaction leaves them (usage history)."""
    if slot is not None:
        history.record(
            conn,
            slot.step,
            slot.now,
            [
                (f.id, f.total, f.used, f.reserved, booked_totals.get(f.id, f.booked_total))
                for f in rows.values()
                if f.id in slot.feature_ids
            ],
        )


def book_groups(
    conn: Connection, groups: Sequence[FeatureGroup], slot: SampleSlot | None = None
) -> list[GroupResult]:
    """Admit several actors' groups in one transaction (group commit across features).

    All features are locked in id order in one statement; each group is decided in request
    order against its locked row; all bookings go in with one insert and the counters with
    one update. A deleted feature fails its own group only. The ``slot``'s features are
    sampled for the usage history in the same transaction.
    """
    rows = primitives.read_features(conn, (g.feature_id for g in groups), lock=True)
    owners = primitives.job_owners(conn, {r.job_id for g in groups for r in g.requests})
    plan: list[tuple[list[Outcome | None], primitives.FeatureRow] | NotFound] = []
    to_insert: list[tuple[int, int, int]] = []
    booked_totals: dict[int, int] = {}
    for group in groups:
        feature = rows.get(group.feature_id)
        if feature is None:
            plan.append(NotFound("feature", group.feature_id))
            continue
        outcomes, admitted, after = _decide(group, feature, owners)
        to_insert += [(r.job_id, feature.id, r.quantity) for r in admitted]
        if admitted:
            booked_totals[feature.id] = after.booked_total
        plan.append((outcomes, replace(feature, booked_total=after.booked_total)))
    created = iter(primitives.insert_bookings(conn, to_insert))
    primitives.set_booked_totals(conn, booked_totals)
    sample_booked(conn, slot, rows, booked_totals)
    results: list[GroupResult] = []
    for item in plan:
        if isinstance(item, NotFound):
            results.append(item)
        else:
            outcomes, feature = item
            results.append(([o if o is not None else next(created) for o in outcomes], feature))
    return results


def _decide(
    group: FeatureGroup, feature: primitives.FeatureRow, owners: dict[int, str]
) -> tuple[list[Outcome | None], list[BookingRequest], Counters]:
    """Verdicts for one group in request order: an error, or None for an admitted booking
    (its row is filled in after the insert). Returns them, the admitted requests and the
    counters after them."""
    problems = [_job_problem(owners.get(r.job_id), r, feature) for r in group.requests]
    valid = [r for r, problem in zip(group.requests, problems, strict=True) if problem is None]
    verdicts, after = admit(counters_of(feature), [r.quantity for r in valid], group.held)
    verdict = iter(verdicts)
    outcomes: list[Outcome | None] = []
    admitted: list[BookingRequest] = []
    for request, problem in zip(group.requests, problems, strict=True):
        if problem is not None:
            outcomes.append(problem)
            continue
        v = next(verdict)
        if v.admitted:
            admitted.append(request)
            outcomes.append(None)
        else:
            outcomes.append(
                NotEnoughLicenses(
                    feature.id, feature.product_feature, request.quantity, v.available
                )
            )
    return outcomes, admitted, after


@dataclass(frozen=True, slots=True)
class JobSpec:
    slurm_job_id: str
    cluster_client_id: str
    username: str
    lead_host: str


def quantities_per_feature(wanted: Sequence[tuple[int, int]]) -> dict[int, int]:
    """A job's whole quantity of each feature, in the job's order of first mention."""
    per_feature: dict[int, int] = {}
    for feature_id, quantity in wanted:
        per_feature[feature_id] = per_feature.get(feature_id, 0) + quantity
    return per_feature


def create_job(
    conn: Connection,
    spec: JobSpec,
    wanted: Sequence[tuple[int, int]],
    slot: SampleSlot | None = None,
) -> dict[str, Any]:
    """Insert a job and all its (feature_id, quantity) bookings, or nothing.

    The features are locked in id order (the lock order of every writer) and each is
    checked against the rule for the job's whole quantity of it.
    """
    job_rows.ensure_new(conn, spec.cluster_client_id, spec.slurm_job_id)
    per_feature = quantities_per_feature(wanted)
    rows = primitives.read_features(conn, per_feature, lock=True)
    booked_totals: dict[int, int] = {}
    for feature_id, quantity in per_feature.items():  # the job's order: name its first short one
        row = rows.get(feature_id)
        if row is None:
            raise NotFound("feature", feature_id)
        [verdict], after = admit(counters_of(row), [quantity])
        if not verdict.admitted:
            raise NotEnoughLicenses(feature_id, row.product_feature, quantity, verdict.available)
        booked_totals[feature_id] = after.booked_total
    primitives.set_booked_totals(conn, booked_totals)
    sample_booked(conn, slot, rows, booked_totals)
    job = job_rows.insert_job(conn, **asdict(spec))
    job["bookings"] = primitives.insert_bookings(
        conn, [(job["id"], feature_id, quantity) for feature_id, quantity in wanted]
    )
    return job
