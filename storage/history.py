"""Usage history rows: samples written by reports and admissions, rolled up into coarser
tiers, read back as series (the arithmetic lives in ``storage.series``).

Tiers are ``(step, keep)`` pairs in seconds, finest first: the finest tier is what reports
write (``LMRPC_USAGE_RESOLUTION``), each coarser one is rolled up from the one before, and
rows older than their tier's ``keep`` are deleted once the next tier holds them.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.schema import usage_samples
from storage.series import Sample, finest, points, roll_up

HOUR = 3600
DAY = 86400

_COLUMNS = (
    usage_samples.c.t,
    usage_samples.c.step,
    usage_samples.c.total,
    usage_samples.c.used,
    usage_samples.c.reserved,
    usage_samples.c.booked,
    usage_samples.c.peak_used,
)


@dataclass(frozen=True, slots=True)
class Tier:
    step: int
    keep: int  # seconds a row of this tier is kept


def tiers(resolution: int) -> tuple[Tier, ...]:
    """The reported samples for 2 days, hours for 400 days (docs/usage.md: sizes)."""
    return (Tier(resolution, 2 * DAY), Tier(HOUR, 400 * DAY))


def _upsert(conn: Connection) -> Any:
    """INSERT … ON CONFLICT: the newer counters win, the peak is the higher one."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(usage_samples)
    higher = func.greatest if conn.dialect.name == "postgresql" else func.max
    return statement.on_conflict_do_update(
        index_elements=["feature_id", "step", "t"],
        set_={
            "total": statement.excluded.total,
            "used": statement.excluded.used,
            "reserved": statement.excluded.reserved,
            "booked": statement.excluded.booked,
            "peak_used": higher(usage_samples.c.peak_used, statement.excluded.peak_used),
        },
    )


def record(
    conn: Connection, step: int, now: int, counters: Iterable[tuple[int, int, int, int, int]]
) -> None:
    """Sample (feature_id, total, used, reserved, booked) of features at ``now`` into the
    bucket of ``step`` seconds that holds it, in feature id order (the lock order)."""
    start = now - now % step
    rows = [
        {
            "feature_id": fid,
            "step": step,
            "t": start,
            "total": total,
            "used": used,
            "reserved": reserved,
            "booked": booked,
            "peak_used": used,
        }
        for fid, total, used, reserved, booked in sorted(counters)
    ]
    if rows:
        conn.execute(_upsert(conn), rows)


def _samples(rows: Iterable[Any]) -> list[Sample]:
    return [Sample(*row) for row in rows]


_IN_RANGE = (
    select(*_COLUMNS)
    .where(
        usage_samples.c.feature_id == bindparam("feature_id"),
        usage_samples.c.t >= bindparam("low"),
        usage_samples.c.t < bindparam("until"),
    )
    .order_by(usage_samples.c.t)
)
_BEFORE = (
    select(*_COLUMNS)
    .where(
        usage_samples.c.feature_id == bindparam("feature_id"),
        usage_samples.c.t < bindparam("low"),
    )
    .order_by(usage_samples.c.t.desc(), usage_samples.c.step)
    .limit(1)
)


def series(
    conn: Connection, feature_id: int, since: int, until: int, step: int, widest: int
) -> list[dict[str, Any]]:
    """Points of one feature from ``since`` to ``until`` every ``step`` seconds; ``widest``
    is the coarsest tier's step (how far back a bucket reaching into the range starts)."""
    start = since - since % step
    low = start - start % widest
    params = {"feature_id": feature_id, "low": low, "until": until}
    found = finest(_samples(conn.execute(_IN_RANGE, params)))
    before = _samples(conn.execute(_BEFORE, params))
    return points(found, before[0] if before else None, start, until, step)


def roll_up_tiers(conn: Connection, all_tiers: Sequence[Tier], now: int, since: int) -> None:
    """Roll every tier's complete buckets from ``since`` on into the next tier, then delete
    the rows past their tier's keep that the next tier holds. Idempotent: rolling a bucket
    again writes the same row, so any process may run it, as often as it likes."""
    for fine, coarse in pairwise(all_tiers):
        done = now - now % coarse.step  # buckets before this one are complete
        low = since - since % coarse.step
        rows = conn.execute(
            select(usage_samples.c.feature_id, *_COLUMNS)
            .where(
                usage_samples.c.step == fine.step,
                usage_samples.c.t >= low,
                usage_samples.c.t < done,
            )
            .order_by(usage_samples.c.feature_id, usage_samples.c.t)
        )
        per_feature: dict[int, list[Sample]] = {}
        for feature_id, *values in rows:
            per_feature.setdefault(feature_id, []).append(Sample(*values))
        rolled = [
            {"feature_id": fid, **_row(sample)}
            for fid, samples in sorted(per_feature.items())
            for sample in roll_up(samples, coarse.step)
        ]
        if rolled:
            conn.execute(_upsert(conn), rolled)
        horizon = now - fine.keep
        conn.execute(
            delete(usage_samples).where(
                and_(
                    usage_samples.c.step == fine.step,
                    usage_samples.c.t < min(horizon - horizon % coarse.step, done),
                )
            )
        )
    last = all_tiers[-1]
    conn.execute(
        delete(usage_samples).where(
            usage_samples.c.step == last.step, usage_samples.c.t < now - last.keep
        )
    )


def _row(sample: Sample) -> dict[str, int]:
    return {
        "step": sample.step,
        "t": sample.t,
        "total": sample.total,
        "used": sample.used,
        "reserved": sample.reserved,
        "booked": sample.booked,
        "peak_used": sample.peak_used,
    }
