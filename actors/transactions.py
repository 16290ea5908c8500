"""The admitting transaction: the rule checked against the locked database rows.

Bookings of the feature actors and jobs with their bookings are admitted together, in one
storage transaction that reads the truth under a write lock, decides with the pure rule,
and writes. So several server processes on one database never
overbook, and a job start costs a share of one commit like a booking does.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
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
    """One actor's waiting bookings of its feature, in their order."""

    feature_id: int
    requests: Sequence[BookingRequest]


GroupResult = list[Outcome] | NotFound


@dataclass(frozen=True, slots=True)
class JobSpec:
    slurm_job_id: str
    cluster_client_id: str
    username: str
    lead_host: str


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A job to create with bookings of (``product.feature``, quantity), all or nothing."""

    spec: JobSpec
    wanted: Sequence[tuple[str, int]]

    @property
    def key(self) -> tuple[str, str]:
        return self.spec.cluster_client_id, self.spec.slurm_job_id


Item = FeatureGroup | JobRequest
ItemResult = GroupResult | Outcome

# What an item will write, decided before anything is written: a group's verdicts (None
# for an admitted booking) with its admitted requests, or a job's (feature_id, quantity)
# bookings; or the error that fails the item.
_GroupPlan = tuple[list[Outcome | None], list[BookingRequest]]
_Plan = _GroupPlan | list[tuple[int, int]] | DomainError

Rows = dict[int, primitives.FeatureRow]

# Which of a transaction's features to sample for the usage history (BookedSampler.due).
Due = Callable[[Iterable[int]], SampleSlot | None]


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


def commit_items(
    conn: Connection, items: Sequence[Item], due: Due | None = None
) -> list[ItemResult]:
    """Admit actors' groups and jobs in one transaction (group commit across features).

    All features are locked in id order in one statement; each item is decided in order
    against the locked rows and what the items before it took; jobs, bookings and counters
    are written with one statement each. A failing item (a deleted feature, a refused or
    duplicate job) fails alone. The features ``due`` picks are sampled for the usage
    history in the same transaction (asked here: a job's features are known only now).
    """
    jobs = [item for item in items if isinstance(item, JobRequest)]
    groups = [item for item in items if isinstance(item, FeatureGroup)]
    resolved = _resolve(conn, jobs)
    wanted = {fid for ids in resolved.values() for fid in ids.values()}
    locked = primitives.read_features(conn, wanted | {g.feature_id for g in groups}, lock=True)
    owners = primitives.job_owners(conn, {r.job_id for g in groups for r in g.requests})
    existing = job_rows.existing_ids(conn, {job.key for job in jobs})
    rows = dict(locked)  # advanced by each admitted item
    taken: set[tuple[str, str]] = set()  # jobs admitted in this transaction
    plans: list[_Plan] = []
    for item in items:
        if isinstance(item, FeatureGroup):
            plans.append(_plan_group(item, rows, owners))
        else:
            ids = resolved[item.spec.cluster_client_id]
            plans.append(_plan_job(item, ids, rows, existing, taken))
    created_jobs = job_rows.insert_jobs(
        conn,
        [
            item.spec
            for item, plan in zip(items, plans, strict=True)
            if isinstance(item, JobRequest) and isinstance(plan, list)
        ],
    )
    requests: list[tuple[int, int, int]] = []
    for item, plan in zip(items, plans, strict=True):
        if isinstance(item, FeatureGroup) and isinstance(plan, tuple):
            requests += [(r.job_id, item.feature_id, r.quantity) for r in plan[1]]
        elif isinstance(item, JobRequest) and isinstance(plan, list) and item.key in created_jobs:
            job_id = created_jobs[item.key]["id"]
            requests += [(job_id, fid, quantity) for fid, quantity in plan]
    created = primitives.insert_bookings(conn, requests)
    totals = {fid: row.booked_total for fid, row in locked.items()}
    for booking in created:
        totals[booking["feature_id"]] += booking["quantity"]
    primitives.set_booked_totals(
        conn, {fid: total for fid, total in totals.items() if total != locked[fid].booked_total}
    )
    if due is not None:
        sample_booked(conn, due(locked), locked, totals)
    return _results(items, plans, created_jobs, iter(created))


def _resolve(conn: Connection, jobs: Sequence[JobRequest]) -> dict[str, dict[str, int]]:
    """Per cluster, its jobs' ``product.feature`` names → feature ids (one query each)."""
    names: dict[str, set[str]] = {}
    for job in jobs:
        names.setdefault(job.spec.cluster_client_id, set()).update(n for n, _ in job.wanted)
    return {
        cluster: primitives.resolve_features(conn, cluster, wanted)
        for cluster, wanted in names.items()
    }


def _results(
    items: Sequence[Item],
    plans: Sequence[_Plan],
    created_jobs: dict[tuple[str, str], dict[str, Any]],
    created: Iterator[dict[str, Any]],
) -> list[ItemResult]:
    """Each item's answer, the inserted bookings taken in the order they were planned."""
    results: list[ItemResult] = []
    for item, plan in zip(items, plans, strict=True):
        if isinstance(plan, DomainError):
            results.append(plan)
        elif isinstance(item, FeatureGroup):
            assert isinstance(plan, tuple)
            results.append([o if o is not None else next(created) for o in plan[0]])
        elif item.key not in created_jobs:
            results.append(_duplicate())  # another process created it since the check
        else:
            results.append({**created_jobs[item.key], "bookings": [next(created) for _ in plan]})
    return results


def _plan_group(group: FeatureGroup, rows: Rows, owners: dict[int, str]) -> _Plan:
    """Verdicts for one group in request order: an error, or None for an admitted booking
    (its row is filled in after the insert), and the admitted requests."""
    feature = rows.get(group.feature_id)
    if feature is None:
        return NotFound("feature", group.feature_id)
    problems = [_job_problem(owners.get(r.job_id), r, feature) for r in group.requests]
    valid = [r for r, problem in zip(group.requests, problems, strict=True) if problem is None]
    verdicts, after = admit(counters_of(feature), [r.quantity for r in valid])
    rows[feature.id] = replace(feature, booked_total=after.booked_total)
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
                    feature.id,
                    feature.product_feature,
                    request.quantity,
                    v.available,
                    feature.cluster_client_id,
                )
            )
    return outcomes, admitted


def _duplicate(**ids: int) -> Conflict:
    """A job that exists; without its id, the caller names the winner after the commit."""
    return Conflict("a job with this cluster and slurm_job_id exists", **ids)


def quantities_per_feature(wanted: Sequence[tuple[int, int]]) -> dict[int, int]:
    """A job's whole quantity of each feature, in the job's order of first mention."""
    per_feature: dict[int, int] = {}
    for feature_id, quantity in wanted:
        per_feature[feature_id] = per_feature.get(feature_id, 0) + quantity
    return per_feature


def _plan_job(
    job: JobRequest,
    ids: dict[str, int],
    rows: Rows,
    existing: dict[tuple[str, str], int],
    taken: set[tuple[str, str]],
) -> _Plan:
    """The job's bookings, or why it is refused. Each feature is checked for the job's whole
    quantity of it, in the job's order, so a refusal names its first feature short."""
    if job.key in existing:
        return _duplicate(job_id=existing[job.key])
    if job.key in taken:
        return _duplicate()
    missing = sorted({name for name, _ in job.wanted} - ids.keys())
    if missing:
        return NotFound("feature", missing=missing)
    bookings = [(ids[name], quantity) for name, quantity in job.wanted]
    after: Rows = {}
    for feature_id, quantity in quantities_per_feature(bookings).items():
        row = rows.get(feature_id)
        if row is None:  # deleted since its name was resolved
            return NotFound("feature", feature_id)
        [verdict], counters = admit(counters_of(row), [quantity])
        if not verdict.admitted:
            return NotEnoughLicenses(
                feature_id, row.product_feature, quantity, verdict.available, row.cluster_client_id
            )
        after[feature_id] = replace(row, booked_total=counters.booked_total)
    rows.update(after)
    taken.add(job.key)
    return bookings
