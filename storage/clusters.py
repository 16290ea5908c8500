"""Cluster statuses: each cluster's agent reports in every ``interval`` seconds."""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.errors import NotFound
from storage.rows import now, timestamp, utc
from storage.schema import cluster_statuses

MIN_TOLERANCE_S = 5.0
TOLERANCE_SHARE = 0.1


def tolerance(interval: int) -> float:
    """Slack allowed past ``interval`` before a cluster counts as unhealthy: max(5 s, 10 % of
    the interval), so network delay and the agent's own run time do not flap the status."""
    return max(MIN_TOLERANCE_S, TOLERANCE_SHARE * interval)


def is_healthy(interval: int, last_reported: datetime, at: datetime) -> bool:
    """Healthy while ``at - last_reported <= interval + tolerance(interval)``."""
    return (at - utc(last_reported)).total_seconds() <= interval + tolerance(interval)


def _status_json(row: Any, at: datetime) -> dict[str, Any]:
    return {
        "cluster_client_id": row.cluster_client_id,
        "interval": row.interval,
        "last_reported": timestamp(row.last_reported),
        "is_healthy": is_healthy(row.interval, row.last_reported, at),
    }


def report(conn: Connection, cluster_client_id: str, interval: int) -> dict[str, Any]:
    """Upsert the cluster's status (a native upsert: concurrent first reports cannot clash)."""
    reported = now()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        "cluster_client_id": cluster_client_id,
        "interval": interval,
        "last_reported": reported,
    }
    statement = dialect.insert(cluster_statuses).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[cluster_statuses.c.cluster_client_id],
        set_={"interval": interval, "last_reported": reported},
    )
    conn.execute(statement)
    return {**values, "last_reported": timestamp(reported), "is_healthy": True}


def get(conn: Connection, cluster_client_id: str) -> dict[str, Any]:
    row = conn.execute(
        select(cluster_statuses).where(cluster_statuses.c.cluster_client_id == cluster_client_id)
    ).first()
    if row is None:
        raise NotFound("cluster", cluster_client_id)
    return _status_json(row, now())


def list_(conn: Connection) -> list[dict[str, Any]]:
    """Every cluster's status, ordered by cluster_client_id."""
    at = now()
    query = select(cluster_statuses).order_by(cluster_statuses.c.cluster_client_id)
    return [_status_json(row, at) for row in conn.execute(query)]
