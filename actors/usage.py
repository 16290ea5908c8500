"""What the actors note for the usage history: booked changes sampled at most once per
resolution and feature, and refused demand counted in memory and flushed in batches.

Neither adds a transaction on the admission path: a booked sample rides in the group
commit's own transaction, and refusals reach storage only when the supervisor flushes them
(every few seconds and at shutdown), so a crash loses at most the refusals of one flush
interval, never a booking.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from storage.errors import NotEnoughLicenses

Clock = Callable[[], datetime]
HOUR = 3600


def seconds(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass(frozen=True, slots=True)
class SampleSlot:
    """Which features a transaction samples, in which bucket (``step`` seconds at ``now``)."""

    step: int
    now: int
    feature_ids: frozenset[int]


class BookedSampler:
    """Features whose booked line was sampled in the current bucket are not sampled again
    until the next one; the agent's next report brings the bucket up to date anyway."""

    def __init__(self, clock: Clock, resolution: int) -> None:
        self._clock = clock
        self.resolution = resolution
        self._bucket = -1
        self._sampled: set[int] = set()

    def due(self, feature_ids: Iterable[int]) -> SampleSlot | None:
        now = seconds(self._clock())
        bucket = now - now % self.resolution
        if bucket != self._bucket:
            self._bucket, self._sampled = bucket, set()
        wanted = frozenset(feature_ids) - self._sampled
        if not wanted:
            return None
        self._sampled |= wanted
        return SampleSlot(self.resolution, now, wanted)


Refusals = dict[tuple[int, int], tuple[int, int]]  # (feature_id, hour) → (calls, licenses)


@dataclass
class RefusalCounter:
    """Refused calls and licenses per feature and hour, waiting for the next flush, and the
    process's running totals of refused licenses per (cluster, product, feature)."""

    clock: Clock
    pending: Refusals = field(default_factory=dict)
    licenses: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def count(self, refusal: NotEnoughLicenses) -> None:
        now = seconds(self.clock())
        key = (refusal.feature_id, now - now % HOUR)
        calls, licenses = self.pending.get(key, (0, 0))
        self.pending[key] = (calls + 1, licenses + refusal.requested)
        product, _, feature = refusal.product_feature.partition(".")
        label = (refusal.cluster_client_id, product, feature)
        self.licenses[label] = self.licenses.get(label, 0) + refusal.requested

    def take(self) -> Refusals:
        taken, self.pending = self.pending, {}
        return taken

    def put_back(self, refusals: Refusals) -> None:
        """A flush failed: keep its counts for the next one."""
        for key, (calls, licenses) in refusals.items():
            before_calls, before_licenses = self.pending.get(key, (0, 0))
            self.pending[key] = (before_calls + calls, before_licenses + licenses)
