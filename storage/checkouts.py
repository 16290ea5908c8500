"""Checkouts: who holds a feature's licenses, as the agent last read it from the license
server. Each report that carries a feature's checkouts replaces that feature's set."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from storage.rows import require, timestamp
from storage.schema import feature_checkouts, features, products

Checkout = tuple[str, str, int]  # username, lead_host, quantity


def replace(
    conn: Connection, by_feature: Mapping[int, Sequence[Checkout]], reported_at: datetime
) -> None:
    """Replace the checkout sets of the features in ``by_feature`` (an empty set clears)."""
    if not by_feature:
        return
    ids = sorted(by_feature)
    conn.execute(delete(feature_checkouts).where(feature_checkouts.c.feature_id.in_(ids)))
    rows = [
        {
            "feature_id": fid,
            "username": username,
            "lead_host": lead_host,
            "quantity": quantity,
            "reported_at": reported_at,
        }
        for fid in ids
        for username, lead_host, quantity in by_feature[fid]
    ]
    if rows:
        conn.execute(insert(feature_checkouts), rows)


def of_feature(conn: Connection, feature_id: int) -> list[dict[str, Any]]:
    require(conn, features, feature_id, "feature")
    query = (
        select(
            feature_checkouts.c.username,
            feature_checkouts.c.lead_host,
            feature_checkouts.c.quantity,
            feature_checkouts.c.reported_at,
        )
        .where(feature_checkouts.c.feature_id == feature_id)
        .order_by(feature_checkouts.c.id)
    )
    return [
        {
            "username": row.username,
            "lead_host": row.lead_host,
            "quantity": row.quantity,
            "reported_at": timestamp(row.reported_at),
        }
        for row in conn.execute(query)
    ]


def by_user(conn: Connection, cluster_client_id: str | None) -> list[dict[str, Any]]:
    """Current checkouts summed per user and feature, optionally of one cluster."""
    quantity = func.sum(feature_checkouts.c.quantity)
    query = (
        select(
            feature_checkouts.c.username,
            products.c.name.label("product"),
            features.c.name.label("feature"),
            quantity.label("quantity"),
        )
        .join(features, features.c.id == feature_checkouts.c.feature_id)
        .join(products, products.c.id == features.c.product_id)
        .group_by(feature_checkouts.c.username, products.c.name, features.c.name)
        .order_by(feature_checkouts.c.username, products.c.name, features.c.name)
    )
    if cluster_client_id is not None:
        query = query.where(features.c.cluster_client_id == cluster_client_id)
    return [
        {
            "username": row.username,
            "product_feature": f"{row.product}.{row.feature}",
            "quantity": int(row.quantity),
        }
        for row in conn.execute(query)
    ]
