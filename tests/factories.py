"""Rows for actor and admission tests, inserted straight through storage (no RPC)."""

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from itertools import count
from typing import Any

import psycopg
from sqlalchemy import Connection, insert, select
from sqlalchemy.engine import make_url

from storage.facade import Storage
from storage.rows import now
from storage.schema import configurations, features, jobs, license_servers, products

_names = count(1)


def product_and_configuration(
    conn: Connection, cluster: str, product: str, configuration: str
) -> tuple[int, int]:
    """The product named ``product`` (made when missing) and a new configuration of
    ``cluster`` with one license server: their ids. Tests and bench/seed.py seed with it."""
    product_id = conn.execute(select(products.c.id).where(products.c.name == product)).scalar()
    if product_id is None:
        product_id = conn.execute(insert(products).values(name=product)).inserted_primary_key[0]  # type: ignore[index]
    config_id = conn.execute(
        insert(configurations).values(
            name=configuration, cluster_client_id=cluster, grace_time=60, type="flexlm"
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    conn.execute(insert(license_servers).values(config_id=config_id, host="lic1", port=27000))
    return product_id, config_id


def _feature(
    conn: Connection, cluster: str, total: int, used: int, reserved: int, product: str, name: str
) -> int:
    product_id, config_id = product_and_configuration(
        conn, cluster, product, f"config-{next(_names)}"
    )
    feature_id: int = conn.execute(
        insert(features).values(
            name=name,
            product_id=product_id,
            config_id=config_id,
            cluster_client_id=cluster,
            total=total,
            used=used,
            reserved=reserved,
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    return feature_id


async def make_feature(
    storage: Storage,
    total: int,
    *,
    cluster: str = "cluster-a",
    used: int = 0,
    reserved: int = 0,
    product: str = "abaqus",
    name: str | None = None,
) -> int:
    """A feature of ``cluster`` (with its own configuration) and its id."""
    feature_name = name or f"feature{next(_names)}"
    return await storage.write(
        lambda conn: _feature(conn, cluster, total, used, reserved, product, feature_name)
    )


async def make_job(
    storage: Storage, *, cluster: str = "cluster-a", slurm_job_id: str | None = None
) -> int:
    """A job without bookings, and its id."""
    values: dict[str, Any] = {
        "slurm_job_id": slurm_job_id or str(next(_names)),
        "cluster_client_id": cluster,
        "username": "alice",
        "lead_host": "node001",
        "created_at": now(),
    }
    job_id: int = await storage.write(
        lambda conn: conn.execute(insert(jobs).values(**values)).inserted_primary_key[0]  # type: ignore[index]
    )
    return job_id


async def booked_total(storage: Storage, feature_id: int) -> tuple[int, int]:
    """(features.booked_total, sum of the feature's bookings) as stored."""
    from sqlalchemy import func

    from storage.schema import bookings

    def read(conn: Connection) -> tuple[int, int]:
        column = conn.execute(
            select(features.c.booked_total).where(features.c.id == feature_id)
        ).scalar_one()
        total = conn.execute(
            select(func.coalesce(func.sum(bookings.c.quantity), 0)).where(
                bookings.c.feature_id == feature_id
            )
        ).scalar_one()
        return column, total

    return await storage.read(read)


def feature_in(
    url: str,
    total: int,
    *,
    cluster: str = "cluster-a",
    product: str = "abaqus",
    name: str | None = None,
) -> int:
    """A feature created synchronously in the database at ``url`` (for server tests)."""
    from storage import engine as engines

    engine = engines.create(url, pool_size=1)
    try:
        with engine.begin() as conn:
            return _feature(conn, cluster, total, 0, 0, product, name or f"feature{next(_names)}")
    finally:
        engine.dispose()


def stored_bookings(url: str) -> dict[int, list[tuple[int, int]]]:
    """feature id → [(job_id, quantity)] of every stored booking, and checks booked_total."""
    from storage import engine as engines
    from storage.schema import bookings

    engine = engines.create(url, pool_size=1)
    try:
        with engine.connect() as conn:
            result: dict[int, list[tuple[int, int]]] = {}
            for row in conn.execute(select(bookings)):
                result.setdefault(row.feature_id, []).append((row.job_id, row.quantity))
            for row in conn.execute(select(features)):
                assert row.booked_total == sum(q for _, q in result.get(row.id, [])), row
            return result
    finally:
        engine.dispose()


@contextmanager
def database_locked(url: str, pg_lock: str, *params: Any) -> Iterator[None]:
    """Hold, on a connection of our own, SQLite's write lock or the PostgreSQL lock that the
    statement ``pg_lock`` takes, so the service's transactions wait on it."""
    if make_url(url).get_backend_name() == "sqlite":
        lite = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            lite.execute("ROLLBACK")
            lite.close()
        return
    with psycopg.connect(url) as pg:
        pg.execute(pg_lock, params)
        try:
            yield
        finally:
            pg.rollback()


def feature_row_locked(url: str, feature_id: int) -> AbstractContextManager[None]:
    """Make the service's admitting transactions wait: on PostgreSQL the feature's row lock
    (``FOR UPDATE``, as a second server process takes it)."""
    return database_locked(url, "SELECT id FROM features WHERE id = %s FOR UPDATE", feature_id)
