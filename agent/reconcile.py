"""The reconcile cycle's decision (AGENT.md §3 steps 3, 5, 6) as a pure function: what was
read from lmrpc, the license servers and Slurm in; counters to report, the reservation and
the releases out. The runner does the I/O around it."""

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent.slurm import SlurmJob, SlurmLicense, product_feature, short_host
from agent.usage import Checkout, FeatureUsage, Report
from lmrpc.text import has_control


@dataclass(frozen=True, slots=True)
class Feature:
    id: int
    product: str
    name: str

    @property
    def key(self) -> str:
        """``product.feature`` as matched against Slurm and other clusters (any case)."""
        return f"{self.product}.{self.name}".lower()


@dataclass(frozen=True, slots=True)
class Configuration:
    id: int
    type: str
    grace_time: int
    features: tuple[Feature, ...]
    servers: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Booking:
    id: int
    feature_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    slurm_job_id: str
    username: str
    lead_host: str
    bookings: tuple[Booking, ...]


@dataclass(frozen=True)
class Inputs:
    configurations: tuple[Configuration, ...]
    jobs: tuple[Job, ...]
    booked: Mapping[str, int]  # product.feature (lower case) → booked total, all clusters
    reports: Mapping[int, Report | None]  # configuration id → its servers' report; None: all down
    licenses: Mapping[str, SlurmLicense]  # Slurm license name → counts
    slurm_jobs: Mapping[str, SlurmJob]  # job id → job, as squeue lists them


@dataclass(frozen=True, slots=True)
class FeatureState:
    """One feature as the cycle saw and left it (a row of ``agent once``)."""

    product_feature: str
    server_total: int
    server_used: int
    fail_closed: bool
    slurm_license: str | None
    slurm_total: int
    slurm_used: int
    booked: int  # all clusters, after this cycle's releases
    reservation: int


@dataclass(frozen=True, slots=True)
class Release:
    kind: Literal["job", "booking"]
    id: int
    slurm_job_id: str
    reason: str


@dataclass(frozen=True)
class Actions:
    updates: tuple[dict[str, Any], ...]  # features.bulk_update entries
    features: tuple[FeatureState, ...]
    reservation: dict[str, int]  # Slurm license name → licenses to hide (only those > 0)
    releases: tuple[Release, ...]

    @property
    def fail_closed(self) -> list[str]:
        return [state.product_feature for state in self.features if state.fail_closed]


def decide(inputs: Inputs) -> Actions:
    usages = _usages(inputs)
    releases = _releases(inputs, usages)
    released = _released_quantities(inputs, releases)
    states: list[FeatureState] = []
    reservation: dict[str, int] = {}
    licenses_by_key = _tracked_licenses(inputs.licenses)
    for configuration in inputs.configurations:
        for feature in configuration.features:
            usage = usages[feature.id]
            booked = max(inputs.booked.get(feature.key, 0) - released[feature.id], 0)
            license_name = licenses_by_key.get(feature.key)
            slurm = inputs.licenses[license_name] if license_name else SlurmLicense(0, 0, 0)
            amount = _amount(usage, slurm, booked)
            if license_name and amount > 0:
                reservation[license_name] = amount
            states.append(
                FeatureState(
                    product_feature=f"{feature.product}.{feature.name}",
                    server_total=usage.total if usage else 0,
                    server_used=usage.used if usage else 0,
                    fail_closed=usage is None,
                    slurm_license=license_name,
                    slurm_total=slurm.total,
                    slurm_used=slurm.used,
                    booked=booked,
                    reservation=amount if license_name else 0,
                )
            )
    updates = tuple(
        _update(feature, usages[feature.id])
        for configuration in inputs.configurations
        for feature in configuration.features
    )
    return Actions(updates, tuple(states), reservation, tuple(releases))


def _amount(usage: FeatureUsage | None, slurm: SlurmLicense, booked: int) -> int:
    """Licenses Slurm must not hand out: in use outside this cluster's running jobs, or
    booked and not yet checked out; all of them when the servers cannot say."""
    if usage is None:
        return slurm.total
    return min(max(usage.used - slurm.used + booked, 0), slurm.total)


MAX_TEXT = 255  # API.md §1: strings of at most 255 characters
MAX_QUANTITY = 2**31 - 1
MAX_CHECKOUTS = 10_000  # per feature, as features.bulk_update takes them


def _update(feature: Feature, usage: FeatureUsage | None) -> dict[str, Any]:
    """A fail-closed feature (``usage`` None) is reported with total 0: lmrpc admits
    nothing, and its checkouts, unknown, are left as lmrpc last saw them."""
    if usage is None:
        return {
            "product_name": feature.product,
            "feature_name": feature.name,
            "total": 0,
            "used": 0,
        }
    checkouts = [
        {"username": c.username, "lead_host": c.lead_host, "quantity": c.quantity}
        for c in usage.checkouts
        if _reportable(c)
    ]
    return {
        "product_name": feature.product,
        "feature_name": feature.name,
        "total": usage.total,
        "used": usage.used,
        "checkouts": checkouts[:MAX_CHECKOUTS],
    }


def _reportable(checkout: Checkout) -> bool:
    """A checkout lmrpc would refuse (an over-long or control-laden name from a license
    server) is left out, so that one odd line cannot make the whole report fail."""
    return 0 < checkout.quantity <= MAX_QUANTITY and all(
        0 < len(text) <= MAX_TEXT and not has_control(text)
        for text in (checkout.username, checkout.lead_host)
    )


def _usages(inputs: Inputs) -> dict[int, FeatureUsage | None]:
    """Feature id → what its servers report, None when fail-closed (servers down, or the
    feature no longer listed). Tool and lmrpc names match in any case."""
    usages: dict[int, FeatureUsage | None] = {}
    for configuration in inputs.configurations:
        report = inputs.reports.get(configuration.id)
        by_name = {name.lower(): usage for name, usage in (report or {}).items()}
        for feature in configuration.features:
            usages[feature.id] = by_name.get(feature.name.lower())
    return usages


def _releases(inputs: Inputs, usages: Mapping[int, FeatureUsage | None]) -> list[Release]:
    grace = {
        feature.id: configuration.grace_time
        for configuration in inputs.configurations
        for feature in configuration.features
    }
    releases: list[Release] = []
    staying: list[Job] = []
    for job in inputs.jobs:
        seen = inputs.slurm_jobs.get(job.slurm_job_id)
        limit = max((grace.get(b.feature_id, 0) for b in job.bookings), default=0)
        if seen is None or not seen.active:
            reason = "gone from Slurm" if seen is None else f"{seen.state.lower()} in Slurm"
            releases.append(Release("job", job.id, job.slurm_job_id, reason))
        elif limit and seen.elapsed_s > limit:
            reason = f"running {seen.elapsed_s} s, past the grace time of {limit} s"
            releases.append(Release("job", job.id, job.slurm_job_id, reason))
        else:
            staying.append(job)
    releases.extend(_checked_out(staying, usages))
    return releases


def _checked_out(jobs: list[Job], usages: Mapping[int, FeatureUsage | None]) -> list[Release]:
    """Bookings whose licenses the server shows checked out by the same user, host and
    quantity: released only when bookings and checkouts of one key are equally many, since
    otherwise we cannot tell which booking a checkout belongs to."""
    bookings: dict[tuple[int, str, str, int], list[tuple[Job, Booking]]] = defaultdict(list)
    for job in jobs:
        for booking in job.bookings:
            key = (booking.feature_id, job.username.lower(), short_host(job.lead_host))
            bookings[(*key, booking.quantity)].append((job, booking))
    checkouts: Counter[tuple[int, str, str, int]] = Counter()
    for feature_id, usage in usages.items():
        for checkout in usage.checkouts if usage else ():
            user, host = checkout.username.lower(), short_host(checkout.lead_host)
            checkouts[(feature_id, user, host, checkout.quantity)] += 1
    return [
        Release("booking", booking.id, job.slurm_job_id, "checked out on the license server")
        for key, matched in bookings.items()
        if checkouts[key] == len(matched)
        for job, booking in matched
    ]


def _released_quantities(inputs: Inputs, releases: list[Release]) -> Counter[int]:
    """Feature id → licenses this cycle's releases take out of ``booked``."""
    jobs = {release.id for release in releases if release.kind == "job"}
    bookings = {release.id for release in releases if release.kind == "booking"}
    released: Counter[int] = Counter()
    for job in inputs.jobs:
        for booking in job.bookings:
            if job.id in jobs or booking.id in bookings:
                released[booking.feature_id] += booking.quantity
    return released


def _tracked_licenses(licenses: Mapping[str, SlurmLicense]) -> dict[str, str]:
    """product.feature (lower case) → the Slurm license of that name; untracked ones are left
    alone."""
    tracked: dict[str, str] = {}
    for name in sorted(licenses):
        feature = product_feature(name)
        if feature:
            tracked.setdefault(feature.lower(), name)
    return tracked
