"""Usage history rows: samples written by reports and admissions, packed and rolled up
every hour, read back as series (the arithmetic lives in ``storage.series``).

Two tiers: the reported samples (``LMRPC_USAGE_RESOLUTION``, kept 2 days) and hours (kept
400 days). Reports and admissions upsert plain rows into ``usage_samples``; the hourly
roll-up packs each complete hour's rows into a block of the first tier, rolls them up into
that hour's sample in the week's block of the second tier, deletes the rows, and drops
blocks past their tier's keep. So the row table holds about an hour, and the rest costs a
few bytes per bucket (storage/packing.py).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Table,
    and_,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from storage.packing import pack, unpack
from storage.row_sets import RowSet
from storage.schema import usage_blocks, usage_samples
from storage.series import Sample, finest, points
from storage.series import roll_up as roll_up_samples

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY

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
    step: int  # bucket width, seconds
    keep: int  # seconds a bucket is kept
    block: int  # seconds of buckets packed into one row


def tiers(resolution: int) -> tuple[Tier, Tier]:
    """The reported samples for 2 days, then hours for 400 days (docs/usage.md: sizes)."""
    return (Tier(resolution, 2 * DAY, HOUR), Tier(HOUR, 400 * DAY, WEEK))


def _upsert(conn: Connection, table: Table, set_: dict[str, Any]) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    keys = [column.name for column in table.primary_key]
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: value(statement.excluded) for name, value in set_.items()}
    )


# Reports sample up to 10,000 features in the report's transaction, so the statement is
# built once and its parameters stay cheap: PostgreSQL gets the values as arrays through
# unnest (one statement, as features.bulk_update does), SQLite a plain executemany of the
# driver (SQLAlchemy's per-parameter processing cost more than the inserts, measured).
_REPORTED = RowSet(
    "reported",
    tuple((name, Integer()) for name in ("feature_id", "total", "used", "reserved", "booked")),
)
_REPORTED_PG = _REPORTED.table("postgresql")
_NEW_SAMPLES_PG = postgresql.insert(usage_samples).from_select(
    ["feature_id", "step", "t", "total", "used", "reserved", "booked", "peak_used"],
    select(
        _REPORTED_PG.c.feature_id,
        bindparam("step", type_=Integer),
        bindparam("t", type_=BigInteger),
        _REPORTED_PG.c.total,
        _REPORTED_PG.c.used,
        _REPORTED_PG.c.reserved,
        _REPORTED_PG.c.booked,
        _REPORTED_PG.c.used,
    ),
)
_SAMPLE_UPSERT_PG = _NEW_SAMPLES_PG.on_conflict_do_update(
    index_elements=["feature_id", "step", "t"],
    set_={
        "total": _NEW_SAMPLES_PG.excluded.total,
        "used": _NEW_SAMPLES_PG.excluded.used,
        "reserved": _NEW_SAMPLES_PG.excluded.reserved,
        "booked": _NEW_SAMPLES_PG.excluded.booked,
        "peak_used": func.greatest(usage_samples.c.peak_used, _NEW_SAMPLES_PG.excluded.peak_used),
    },
)
_SAMPLE_UPSERT_SQLITE = (
    "INSERT INTO usage_samples (feature_id, step, t, total, used, reserved, booked, peak_used) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (feature_id, step, t) DO UPDATE SET "
    "total = excluded.total, used = excluded.used, reserved = excluded.reserved, "
    "booked = excluded.booked, peak_used = max(peak_used, excluded.peak_used)"
)


def record(
    conn: Connection, step: int, now: int, counters: Iterable[tuple[int, int, int, int, int]]
) -> None:
    """Sample (feature_id, total, used, reserved, booked) of features at ``now`` into the
    bucket of ``step`` seconds that holds it (the newer counters win, the peak is the
    higher one), in feature id order (the lock order). Each feature at most once."""
    ordered = sorted(counters)
    if not ordered:
        return
    start = now - now % step
    if conn.dialect.name == "postgresql":
        values = {**_REPORTED.params(conn, ordered), "step": step, "t": start}
        conn.execute(_SAMPLE_UPSERT_PG, values)
    else:
        conn.exec_driver_sql(
            _SAMPLE_UPSERT_SQLITE,
            [(fid, step, start, total, u, r, b, u) for fid, total, u, r, b in ordered],
        )


# -- reading ---------------------------------------------------------------------------

_ROWS = (
    select(*_COLUMNS)
    .where(
        usage_samples.c.feature_id == bindparam("feature_id"),
        usage_samples.c.t >= bindparam("low"),
        usage_samples.c.t < bindparam("until"),
    )
    .order_by(usage_samples.c.t)
)
_ROW_BEFORE = (
    select(*_COLUMNS)
    .where(
        usage_samples.c.feature_id == bindparam("feature_id"),
        usage_samples.c.t < bindparam("low"),
    )
    .order_by(usage_samples.c.t.desc())
    .limit(1)
)
_BLOCKS = select(usage_blocks.c.t, usage_blocks.c.data).where(
    usage_blocks.c.feature_id == bindparam("feature_id"),
    usage_blocks.c.step == bindparam("step"),
    usage_blocks.c.t > bindparam("low"),
    usage_blocks.c.t < bindparam("until"),
)
_BLOCK_BEFORE = (
    select(usage_blocks.c.t, usage_blocks.c.data)
    .where(
        usage_blocks.c.feature_id == bindparam("feature_id"),
        usage_blocks.c.step == bindparam("step"),
        usage_blocks.c.t < bindparam("low"),
    )
    .order_by(usage_blocks.c.t.desc())
    .limit(1)
)


def series(
    conn: Connection,
    feature_id: int,
    since: int,
    until: int,
    step: int,
    all_tiers: Sequence[Tier],
) -> list[dict[str, Any]]:
    """Points of one feature from ``since`` (aligned down to ``step``) to ``until``."""
    start = since - since % step
    low = start - start % all_tiers[-1].step  # a coarse bucket reaching into the range
    params = {"feature_id": feature_id, "low": low, "until": until}
    found = [Sample(*row) for row in conn.execute(_ROWS, params)]
    earlier = [Sample(*row) for row in conn.execute(_ROW_BEFORE, params)]
    for tier in all_tiers:
        tier_params = {**params, "step": tier.step}
        for t, data in conn.execute(_BLOCKS, {**tier_params, "low": low - tier.block}):
            found += [s for s in unpack(data, t, tier.step) if low <= s.t < until]
        for t, data in conn.execute(_BLOCK_BEFORE, tier_params):
            earlier += [s for s in unpack(data, t, tier.step) if s.t < low][-1:]
    before = max(earlier, key=lambda s: (s.t, -s.step), default=None)
    return points(finest(found), before, start, until, step)


# -- rolling up ------------------------------------------------------------------------


def _read_blocks(
    conn: Connection, step: int, keys: set[tuple[int, int]]
) -> dict[tuple[int, int], list[Sample]]:
    """Existing blocks of one tier by (feature_id, block start), unpacked."""
    if not keys:
        return {}
    query = select(usage_blocks.c.feature_id, usage_blocks.c.t, usage_blocks.c.data).where(
        usage_blocks.c.step == step,
        usage_blocks.c.feature_id.in_(sorted({fid for fid, _ in keys})),
        usage_blocks.c.t.in_(sorted({t for _, t in keys})),
    )
    return {
        (fid, t): unpack(data, t, step) for fid, t, data in conn.execute(query) if (fid, t) in keys
    }


def write_blocks(conn: Connection, step: int, blocks: dict[tuple[int, int], list[Sample]]) -> None:
    rows = [
        {"feature_id": fid, "step": step, "t": t, "data": pack(samples, t, step)}
        for (fid, t), samples in sorted(blocks.items())
    ]
    if rows:
        conn.execute(_upsert(conn, usage_blocks, {"data": lambda new: new.data}), rows)


def to_roll_up(conn: Connection, all_tiers: tuple[Tier, Tier], now: int) -> list[int]:
    """The features with rows of complete blocks, which ``roll_up`` would pack."""
    done = now - now % all_tiers[0].block
    query = select(usage_samples.c.feature_id).where(usage_samples.c.t < done).distinct()
    return sorted(conn.execute(query).scalars())


def roll_up(
    conn: Connection, all_tiers: tuple[Tier, Tier], now: int, feature_ids: Sequence[int]
) -> None:
    """Pack the features' complete blocks of recent rows, roll them up into the coarse
    tier, and delete the rows. Idempotent, and late rows for a block already packed are
    merged into it, so any process may run it at any time, for any features."""
    fine, coarse = all_tiers
    done = now - now % fine.block
    mine = and_(usage_samples.c.t < done, usage_samples.c.feature_id.in_(sorted(feature_ids)))
    rows: dict[tuple[int, int], list[Sample]] = {}
    query = (
        select(usage_samples.c.feature_id, *_COLUMNS)
        .where(mine)
        .order_by(usage_samples.c.feature_id, usage_samples.c.t)
    )
    for fid, *values in conn.execute(query):
        sample = Sample(*values)
        rows.setdefault((fid, sample.t - sample.t % fine.block), []).append(sample)
    fine_blocks = _read_blocks(conn, fine.step, set(rows))
    for key, samples in rows.items():
        fine_blocks[key] = roll_up_samples([*fine_blocks.get(key, []), *samples], fine.step)
    coarse_keys = {(fid, t - t % coarse.block) for fid, t in fine_blocks}
    coarse_blocks = _read_blocks(conn, coarse.step, coarse_keys)
    for (fid, t), samples in sorted(fine_blocks.items()):
        [hour] = roll_up_samples(samples, coarse.step)
        key = (fid, t - t % coarse.block)
        kept = [s for s in coarse_blocks.get(key, []) if s.t != hour.t]
        coarse_blocks[key] = sorted([*kept, hour], key=lambda s: s.t)
    write_blocks(conn, fine.step, fine_blocks)
    write_blocks(conn, coarse.step, {k: v for k, v in coarse_blocks.items() if k in coarse_keys})
    conn.execute(delete(usage_samples).where(mine))


def drop_expired(conn: Connection, all_tiers: tuple[Tier, Tier], now: int) -> None:
    """Delete the blocks past their tier's keep."""
    for tier in all_tiers:
        expired = usage_blocks.c.t + tier.block <= now - tier.keep
        conn.execute(delete(usage_blocks).where(and_(usage_blocks.c.step == tier.step, expired)))
