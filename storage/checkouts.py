"""Checkouts: who holds a feature's licenses, as the agent last read it from the license
server. Each report that carries a feature's checkouts replaces that feature's set."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, String, any_, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY

from storage.row_sets import RowSet
from storage.rows import driver_value, require, timestamp
from storage.schema import feature_checkouts, features, products

Checkout = tuple[str, str, int]  # username, lead_host, quantity


# Reports replace up to 10,000 features' sets in the report's transaction, so the
# statements are built once and carry their rows cheaply: PostgreSQL as arrays through
# unnest (one statement each), SQLite as the driver's executemany of plain tuples.
_DELETE = delete(feature_checkouts).where(
    feature_checkouts.c.feature_id.in_(bindparam("ids", expanding=True))
)
_DELETE_PG = delete(feature_checkouts).where(
    feature_checkouts.c.feature_id == any_(bindparam("ids", type_=ARRAY(Integer)))
)
_INSERT = (
    "INSERT INTO feature_checkouts (feature_id, username, lead_host, quantity, reported_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_REPORTED = RowSet(
    "reported",
    (
        ("feature_id", Integer()),
        ("username", String()),
        ("lead_host", String()),
        ("quantity", Integer()),
    ),
    ordinality="n",
)


_REPORTED_PG = _REPORTED.table("postgresql")
_INSERT_PG = insert(feature_checkouts).from_select(
    ["feature_id", "username", "lead_host", "quantity", "reported_at"],
    select(
        _REPORTED_PG.c.feature_id,
        _REPORTED_PG.c.username,
        _REPORTED_PG.c.lead_host,
        _REPORTED_PG.c.quantity,
        bindparam("reported_at", type_=feature_checkouts.c.reported_at.type),
    ).order_by(_REPORTED_PG.c.n),  # ids in the reported order, which of_feature answers in
)


def replace(
    conn: Connection, by_feature: Mapping[int, Sequence[Checkout]], reported_at: datetime
) -> None:
    """Replace the checkout sets of the features in ``by_feature`` (an empty set clears)."""
    if not by_feature:
        return
    ids = sorted(by_feature)
    rows = [(fid, *checkout) for fid in ids for checkout in by_feature[fid]]
    if conn.dialect.name == "postgresql":
        conn.execute(_DELETE_PG, {"ids": ids})
        if rows:
            values = {**_REPORTED.params(conn, rows), "reported_at": reported_at}
            conn.execute(_INSERT_PG, values)
        return
    conn.execute(_DELETE, {"ids": ids})
    if rows:
        at = driver_value(conn, feature_checkouts.c.reported_at, reported_at)
        conn.exec_driver_sql(_INSERT, [(*row, at) for row in rows])


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
