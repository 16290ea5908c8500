"""Size of a year of usage history for 1,000 features, on SQLite and PostgreSQL.

    python -m bench.usage_history                      # both backends, 1,000 features
    python -m bench.usage_history --backend sqlite --features 100 --worst
    python -m bench.usage_history --report-cost        # bulk_update's transaction ± sample

It fills what the retention leaves after a year of reports every minute (storage/history.py):
365 days of hourly samples in weekly blocks, the last 2 days of minute samples in hourly
blocks, and the current hour as plain rows, which it then packs with the real hourly
roll-up (timed). Counters move as a random walk (used ±3 a minute and ±24 an hour, booked
±2, total and reserved fixed); ``--worst`` draws every counter at random instead, which no license
server does. It prints the history's tables' size and the roll-up's time.
``--report-cost`` times the report transaction of ``features.bulk_update`` with and without
the usage sample instead.
"""

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from actors.supervisor import ROLL_UP_CHUNK
from bench import seed
from bench.run import database
from storage import engine as engines
from storage import features as features_rows
from storage import history
from storage.rows import chunked
from storage.series import Sample

DAY, HOUR, MINUTE = 86400, 3600, 60
NOW = 1_796_083_200 + 1800  # 2026-12-01T00:30:00Z: half an hour of rows to pack
TOTAL = 1000


class Walk:
    """One feature's counters, moved a little (or drawn at random) per bucket."""

    def __init__(self, rng: random.Random, worst: bool) -> None:
        self.rng, self.worst = rng, worst
        self.used, self.booked = rng.randrange(TOTAL), rng.randrange(100)
        self.reserved = rng.randrange(10)

    def sample(self, t: int, step: int) -> Sample:
        """The bucket after this one: a minute moves used by up to 3, an hour by up to 24
        (about 3 x sqrt(60)) with a peak up to 12 above where it ends."""
        rng = self.rng
        if self.worst:
            self.used, self.booked = rng.randrange(TOTAL), rng.randrange(TOTAL)
            peak = rng.randrange(self.used, TOTAL + 1)
            return Sample(t, step, TOTAL, self.used, self.reserved, self.booked, peak)
        spread = 3 if step == MINUTE else 24
        self.used = min(max(self.used + rng.randint(-spread, spread), 0), TOTAL)
        peak = min(self.used + (rng.randint(0, spread // 2) if step > MINUTE else 0), TOTAL)
        self.booked = min(max(self.booked + rng.randint(-2, 2), 0), TOTAL)
        return Sample(t, step, TOTAL, self.used, self.reserved, self.booked, peak)


def blocks(
    walk: Walk, start: int, end: int, step: int, span: int
) -> Iterator[tuple[int, list[Sample]]]:
    for block in range(start - start % span, end, span):
        inside = range(max(block, start), min(block + span, end), step)
        yield block, [walk.sample(t, step) for t in inside]


def fill(conn: Connection, feature_ids: list[int], days: int, worst: bool) -> None:
    fine, coarse = history.tiers(MINUTE)
    hour = NOW - NOW % HOUR
    rng = random.Random(7)
    for fid in feature_ids:
        walk = Walk(rng, worst)
        hourly = dict(blocks(walk, hour - days * DAY, hour, HOUR, coarse.block))
        minutes = dict(blocks(walk, hour - fine.keep, hour, MINUTE, fine.block))
        history.write_blocks(conn, HOUR, {(fid, t): s for t, s in hourly.items() if s})
        history.write_blocks(conn, MINUTE, {(fid, t): s for t, s in minutes.items() if s})
    for t in range(hour, NOW, MINUTE):  # the current hour, as reports leave it
        counters = []
        for fid in feature_ids:
            s = Walk(rng, worst).sample(t, MINUTE)
            counters.append((fid, s.total, s.used, s.reserved, s.booked))
        history.record(conn, MINUTE, t, counters)


_TABLES = "({0} LIKE '%usage_blocks%' OR {0} LIKE '%usage_samples%')"


def size(url: str) -> int:
    """Bytes of the history's tables and their indexes (after VACUUM on SQLite)."""
    if engines.is_sqlite(url):
        with closing(sqlite3.connect(make_url(url).database or "", isolation_level=None)) as db:
            db.execute("VACUUM")
            query = f"SELECT sum(pgsize) FROM dbstat WHERE {_TABLES.format('name')}"
            return int(db.execute(query).fetchone()[0])
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("ANALYZE")
        query = (
            "SELECT sum(pg_total_relation_size(oid)) FROM pg_class "
            f"WHERE relkind = 'r' AND {_TABLES.format('relname')}"
        )
        row = db.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def run(backend: str, features: int, days: int, worst: bool) -> None:
    with tempfile.TemporaryDirectory() as directory, database(backend, Path(directory)) as url:
        engine = engines.create(url, pool_size=1)
        ids = seed.features_of(engine, "bench", features, TOTAL)
        began = time.perf_counter()
        with engine.begin() as conn:
            fill(conn, ids, days, worst)
        filled = time.perf_counter() - began
        tiers, later = history.tiers(MINUTE), NOW + HOUR
        with engine.begin() as conn:
            pending = history.to_roll_up(conn, tiers, later)
        rolled: list[float] = []
        for chunk in chunked(pending, ROLL_UP_CHUNK):  # as the supervisor does
            began = time.perf_counter()
            with engine.begin() as conn:
                history.roll_up(conn, tiers, later, chunk)
            rolled.append(time.perf_counter() - began)
        engine.dispose()
        total = size(url)
    print(
        f"{backend:10} {features} features, {days} days{' (worst)' if worst else ''}: "
        f"history {total / 1e6:.1f} MB ({total / features / 1e3:.1f} kB a feature), "
        f"filled in {filled:.0f} s, roll-up of the last half hour {sum(rolled) * 1e3:.0f} ms "
        f"in {len(rolled)} transactions of at most {max(rolled) * 1e3:.0f} ms"
    )


def report_cost(backend: str, features: int, rounds: int = 15) -> None:
    """The report transaction of ``features.bulk_update`` without and with its usage sample
    (a new bucket each time, as reports a minute apart write), alternated so that the
    machine's load hits both alike; medians."""
    with tempfile.TemporaryDirectory() as directory, database(backend, Path(directory)) as url:
        engine = engines.create(url, pool_size=1)
        seed.features_of(engine, "bench", features, TOTAL)
        timings: dict[bool, list[float]] = {False: [], True: []}
        for number in range(2 * rounds):
            sampled = number % 2 == 1
            entries = [("bench", f"f{i}", TOTAL, (i + number) % 100) for i in range(features)]
            began = time.perf_counter()
            with engine.begin() as conn:
                reported = features_rows.bulk_update(conn, "bench", entries)
                if sampled:
                    history.record(conn, MINUTE, NOW + number * MINUTE, reported.counters)
            timings[sampled].append(time.perf_counter() - began)
        engine.dispose()
    without, with_ = (statistics.median(timings[flag]) * 1e3 for flag in (False, True))
    print(
        f"{backend:10} report transaction of {features} features: {without:.1f} ms without "
        f"the sample, {with_:.1f} ms with it (medians of {rounds})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--worst", action="store_true")
    parser.add_argument(
        "--report-cost", action="store_true", help="time the report transaction instead"
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if args.report_cost:
            report_cost(backend, args.features)
        else:
            run(backend, args.features, args.days, args.worst)


if __name__ == "__main__":
    main()
