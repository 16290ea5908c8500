"""Bulk data for benchmarks, written straight into the database (seeding 1M bookings
through the API would measure the seeding, not the scenario).

Seeding runs beside a live server, so its engine must take SQLite's write lock at BEGIN
(``engine()``): a deferred transaction that reads first and then writes fails at once with
"database is locked" when the server committed in between, without a busy wait.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, select, text

from storage import engine as engines
from storage.rows import driver_value
from storage.schema import bookings, features, jobs
from tests.factories import product_and_configuration

CHUNK = 10_000
SEED_TIMEOUT_S = 600


def engine(url: str) -> Engine:
    """An engine for seeding next to a running server (SQLite: BEGIN IMMEDIATE), whose
    bulk statements may take minutes (loading 1M bookings checks 2M foreign keys)."""
    return engines.create(url, pool_size=1, immediate=True, timeout=SEED_TIMEOUT_S)


def features_of(
    engine: Engine, cluster: str, count: int, total: int, product: str = "bench"
) -> list[int]:
    """``count`` features of ``cluster`` under one configuration; their ids."""
    with engine.begin() as conn:
        product_id, config_id = product_and_configuration(
            conn, cluster, product, f"{cluster}-{product}"
        )
        first = conn.execute(select(func.coalesce(func.max(features.c.id), 0))).scalar_one()
        for start in range(0, count, CHUNK):
            conn.execute(
                insert(features),
                [
                    {
                        "name": f"f{i}",
                        "product_id": product_id,
                        "config_id": config_id,
                        "cluster_client_id": cluster,
                        "total": total,
                    }
                    for i in range(start, min(count, start + CHUNK))
                ],
            )
        return list(
            conn.execute(
                select(features.c.id).where(features.c.id > first).order_by(features.c.id)
            ).scalars()
        )


def jobs_of(engine: Engine, cluster: str, count: int, prefix: str) -> list[int]:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        first = conn.execute(select(func.coalesce(func.max(jobs.c.id), 0))).scalar_one()
        for start in range(0, count, CHUNK):
            conn.execute(
                insert(jobs),
                [
                    {
                        "slurm_job_id": f"{prefix}{i}",
                        "cluster_client_id": cluster,
                        "username": "bench",
                        "lead_host": "node",
                        "created_at": now,
                    }
                    for i in range(start, min(count, start + CHUNK))
                ],
            )
        return list(
            conn.execute(select(jobs.c.id).where(jobs.c.id > first).order_by(jobs.c.id)).scalars()
        )


def bookings_on(engine: Engine, job_ids: list[int], feature_ids: list[int], count: int) -> None:
    """``count`` bookings of quantity 1 spread over the jobs and features, counters kept:
    one bulk load (COPY on PostgreSQL, the driver's executemany on SQLite) and one
    statement for the features' ``booked_total``, all in one transaction."""
    rows = ((job_ids[i % len(job_ids)], feature_ids[i % len(feature_ids)], 1) for i in range(count))
    with engine.begin() as conn:
        first = conn.execute(select(func.coalesce(func.max(bookings.c.id), 0))).scalar_one()
        _load_bookings(conn, rows)
        conn.execute(
            text(
                "UPDATE features SET booked_total = features.booked_total + added.quantity "
                "FROM (SELECT feature_id, sum(quantity) AS quantity FROM bookings "
                "WHERE id > :first GROUP BY feature_id) AS added "
                "WHERE features.id = added.feature_id"
            ),
            {"first": first},
        )


def settle(engine: Engine) -> None:
    """Bring the database to the steady state of one that holds its rows for a while, not
    the minute after a bulk load: PostgreSQL vacuumed and analyzed (what autovacuum does
    within a minute, here at once, instead of during the measurement) and checkpointed;
    SQLite's WAL copied into the database and emptied. Otherwise the load's aftermath
    (autovacuum, checkpoints of a gigabyte of WAL) shares the two cores with the run."""
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            driver.autocommit = True  # type: ignore[union-attr]
            for statement in ("VACUUM ANALYZE", "CHECKPOINT"):
                driver.execute(statement)  # type: ignore[union-attr]
            driver.autocommit = False  # type: ignore[union-attr]
        else:
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]


def _load_bookings(conn: Connection, rows: Iterator[tuple[int, int, int]]) -> None:
    now = datetime.now(UTC)
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        copy = "COPY bookings (job_id, feature_id, quantity, created_at) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(copy) as loading:  # type: ignore[union-attr]
            for row in rows:
                loading.write_row((*row, now))
        return
    created = driver_value(conn, bookings.c.created_at, now)
    insert_row = (
        "INSERT INTO bookings (job_id, feature_id, quantity, created_at) VALUES (?, ?, ?, ?)"
    )
    chunk: list[tuple[int, int, int, object]] = []
    for row in rows:
        chunk.append((*row, created))
        if len(chunk) == CHUNK:
            conn.exec_driver_sql(insert_row, chunk)
            chunk = []
    if chunk:
        conn.exec_driver_sql(insert_row, chunk)


def overbooked(engine: Engine) -> tuple[int, int]:
    """(features whose booked_total differs from their bookings' sum, features past total)."""
    with engine.connect() as conn:
        sums = (
            select(bookings.c.feature_id, func.sum(bookings.c.quantity).label("booked"))
            .group_by(bookings.c.feature_id)
            .subquery()
        )
        rows = conn.execute(
            select(
                features.c.total,
                features.c.used,
                features.c.reserved,
                features.c.booked_total,
                func.coalesce(sums.c.booked, 0),
            ).select_from(features.outerjoin(sums, sums.c.feature_id == features.c.id))
        ).all()
    mismatched = sum(1 for *_, booked_total, booked in rows if booked_total != booked)
    past = sum(
        1
        for total, used, reserved, booked_total, _ in rows
        if booked_total > 0 and booked_total + reserved > total
    )
    return mismatched, past
