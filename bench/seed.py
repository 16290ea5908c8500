"""Bulk data for benchmarks, written straight into the database (seeding 1M bookings
through the API would measure the seeding, not the scenario)."""

from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select

from storage.schema import bookings, features, jobs
from tests.factories import product_and_configuration

CHUNK = 10_000


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
    """``count`` bookings of quantity 1 spread over the jobs and features, counters kept."""
    now = datetime.now(UTC)
    per_feature: dict[int, int] = {}
    with engine.begin() as conn:
        for start in range(0, count, CHUNK):
            rows = []
            for i in range(start, min(count, start + CHUNK)):
                feature_id = feature_ids[i % len(feature_ids)]
                per_feature[feature_id] = per_feature.get(feature_id, 0) + 1
                rows.append(
                    {
                        "job_id": job_ids[i % len(job_ids)],
                        "feature_id": feature_id,
                        "quantity": 1,
                        "created_at": now,
                    }
                )
            conn.execute(insert(bookings), rows)
        for feature_id, quantity in per_feature.items():
            conn.execute(
                features.update()
                .where(features.c.id == feature_id)
                .values(booked_total=features.c.booked_total + quantity)
            )


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
