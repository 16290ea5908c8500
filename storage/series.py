"""Usage series as plain functions, no IO: samples → rolled-up samples → a series of points.

A sample covers the bucket ``[t, t + step)`` and holds the *last* counters seen in it
(total, used, reserved, booked) and the *highest* ``used`` (``peak_used``). Both compose:
rolling minutes up to hours, then hours up to days, gives what rolling the minutes up to
days would, so every tier answers the same question at its own resolution.
"""

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Sample:
    t: int  # bucket start, Unix seconds
    step: int  # bucket width, seconds
    total: int
    used: int
    reserved: int
    booked: int
    peak_used: int


def roll_up(samples: Iterable[Sample], step: int) -> list[Sample]:
    """``samples`` merged into buckets of ``step`` seconds (aligned to the epoch): last
    counters, highest peak. Ordered by time."""
    buckets: dict[int, Sample] = {}
    for sample in sorted(samples, key=lambda s: s.t):
        start = sample.t - sample.t % step
        before = buckets.get(start)
        peak = sample.peak_used if before is None else max(before.peak_used, sample.peak_used)
        buckets[start] = Sample(
            start, step, sample.total, sample.used, sample.reserved, sample.booked, peak
        )
    return [buckets[start] for start in sorted(buckets)]


def finest(samples: Iterable[Sample]) -> list[Sample]:
    """Samples of several tiers, without the coarse ones whose bucket finer ones still
    cover (finer rows are deleted only after their coarse row exists). Ordered by time."""
    kept: list[Sample] = []
    finer: list[int] = []  # bucket starts of the finer samples seen so far, sorted
    for sample in sorted(samples, key=lambda s: (s.step, s.t)):
        inside = bisect_left(finer, sample.t)
        if inside == len(finer) or finer[inside] >= sample.t + sample.step:
            kept.append(sample)
        insort(finer, sample.t)
    return sorted(kept, key=lambda s: s.t)


def points(
    samples: Sequence[Sample], before: Sample | None, start: int, until: int, step: int
) -> list[dict[str, Any]]:
    """The series from ``start`` (aligned down to ``step``) up to ``until``, one point per
    ``step``, no gaps, no overlaps. A point holds the last counters known at its end and the
    highest ``used`` within it; a bucket without samples carries the last known counters
    forward (``peak_used`` = that ``used``). Before the first sample, the values are null.
    ``samples`` are ordered by time, non-overlapping; ``before`` is the last one earlier."""
    result: list[dict[str, Any]] = []
    last = before
    index = 0
    first = start - start % step
    for t in range(first, until, step):
        peak: int | None = None
        while index < len(samples) and samples[index].t < t + step:
            sample = samples[index]
            if sample.t >= t:
                peak = sample.peak_used if peak is None else max(peak, sample.peak_used)
            last = sample
            index += 1
        if last is None:
            result.append(_point(t, None, None))
        else:
            result.append(_point(t, last, last.used if peak is None else peak))
    return result


def _point(t: int, sample: Sample | None, peak: int | None) -> dict[str, Any]:
    values = (
        (sample.total, sample.used, sample.reserved, sample.booked)
        if sample
        else (None, None, None, None)
    )
    total, used, reserved, booked = values
    return {
        "t": t,
        "total": total,
        "used": used,
        "reserved": reserved,
        "booked": booked,
        "peak_used": peak,
    }
