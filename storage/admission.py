"""Storage primitives for admission: feature rows under a write lock, job owners, booking
inserts, counter writes. The actors compose them into transactions."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Integer,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from storage.rows import now, timestamp, update_by_id
from storage.schema import bookings, features, jobs, products


@dataclass(frozen=True, slots=True)
class FeatureRow:
    id: int
    product: str
    name: str
    cluster_client_id: str
    total: int
    used: int
    reserved: int
    booked_total: int

    @property
    def product_feature(self) -> str:
        return f"{self.product}.{self.name}"


_FEATURE_COLUMNS = (
    features.c.id,
    products.c.name.label("product"),
    features.c.name,
    features.c.cluster_client_id,
    features.c.total,
    features.c.used,
    features.c.reserved,
    features.c.booked_total,
)

# Statements are built once: building and hashing a statement per call costs more than
# running it on SQLite (≈ 0.3 ms each, measured).
_READ_FEATURES = (
    select(*_FEATURE_COLUMNS)
    .join(products, products.c.id == features.c.product_id)
    .where(features.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(features.c.id)
)
_LOCK_FEATURES = _READ_FEATURES.with_for_update(of=features)
_RESOLVE_FEATURES = (
    select(products.c.name, features.c.name, features.c.id)
    .join(products, products.c.id == features.c.product_id)
    .where(
        features.c.cluster_client_id == bindparam("cluster"),
        tuple_(products.c.name, features.c.name).in_(bindparam("pairs", expanding=True)),
    )
)
_JOB_OWNERS = select(jobs.c.id, jobs.c.cluster_client_id).where(
    jobs.c.id.in_(bindparam("ids", expanding=True))
)
# Bookings are inserted by one statement with the same few parameters however many rows:
# the rows travel as three arrays (PostgreSQL) or one JSON text (SQLite). Row by row,
# SQLAlchemy's and the driver's parameter handling was most of a group commit's storage
# time (≈ 30 % of a batch's CPU on PostgreSQL). RETURNING gives no order: rows are matched
# back by content, and equal rows are interchangeable.
_BOOKING_COLUMNS = ["job_id", "feature_id", "quantity", "created_at"]
_CREATED_AT = bindparam("created_at", type_=bookings.c.created_at.type)
_RETURNED = (bookings.c.id, bookings.c.job_id, bookings.c.feature_id, bookings.c.quantity)
_ARRAYS = (
    func.unnest(
        *(cast(bindparam(name), ARRAY(Integer)) for name in ("jobs", "features", "quantities"))
    )
    .table_valued("job_id", "feature_id", "quantity")
    .render_derived()
)
_INSERT_BOOKINGS_POSTGRESQL = (
    insert(bookings)
    .from_select(_BOOKING_COLUMNS, select(*_ARRAYS.c, _CREATED_AT))
    .returning(*_RETURNED)
)
_JSON_ROWS = func.json_each(bindparam("rows")).table_valued("value")
_INSERT_BOOKINGS_SQLITE = (
    insert(bookings)
    .from_select(
        _BOOKING_COLUMNS,
        select(*(func.json_extract(_JSON_ROWS.c.value, f"$[{i}]") for i in range(3)), _CREATED_AT),
    )
    .returning(*_RETURNED)
)


def read_features(conn: Connection, ids: Iterable[int], *, lock: bool) -> dict[int, FeatureRow]:
    """Feature rows by id. ``lock``: ``SELECT … FOR UPDATE OF features`` in id order on
    PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` already holds the database's write lock)."""
    statement = _LOCK_FEATURES if lock else _READ_FEATURES
    rows = conn.execute(statement, {"ids": sorted(set(ids))})
    return {row.id: FeatureRow(*row) for row in rows}


def resolve_features(
    conn: Connection, cluster_client_id: str, names: Iterable[str]
) -> dict[str, int]:
    """``product.feature`` names → feature ids among the features of one cluster."""
    pairs = sorted({tuple(name.split(".", 1)) for name in names if "." in name})
    if not pairs:
        return {}
    rows = conn.execute(_RESOLVE_FEATURES, {"cluster": cluster_client_id, "pairs": pairs})
    return {f"{product}.{feature}": id_ for product, feature, id_ in rows}


def job_owners(conn: Connection, job_ids: Iterable[int]) -> dict[int, str]:
    """Job id → cluster_client_id for the jobs that exist (no query for no ids: a group
    commit of jobs alone has none)."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    return {id_: cluster for id_, cluster in conn.execute(_JOB_OWNERS, {"ids": ids})}


def insert_bookings(
    conn: Connection, requests: Sequence[tuple[int, int, int]]
) -> list[dict[str, Any]]:
    """Insert (job_id, feature_id, quantity) bookings; the new bookings, in order."""
    if not requests:
        return []
    created = now()
    if conn.dialect.name == "postgresql":
        statement = _INSERT_BOOKINGS_POSTGRESQL
        values: dict[str, Any] = {
            name: [request[i] for request in requests]
            for i, name in enumerate(("jobs", "features", "quantities"))
        }
    else:
        statement = _INSERT_BOOKINGS_SQLITE
        values = {"rows": orjson.dumps(requests).decode()}
    ids: dict[tuple[int, int, int], list[int]] = {}
    for id_, *key in conn.execute(statement, {**values, "created_at": created}):
        ids.setdefault(tuple(key), []).append(id_)
    stamp = timestamp(created)
    return [
        {
            "id": ids[request].pop(),
            "job_id": request[0],
            "feature_id": request[1],
            "quantity": request[2],
            "created_at": stamp,
        }
        for request in requests
    ]


def set_booked_totals(conn: Connection, booked_totals: dict[int, int]) -> None:
    """Write features' new ``booked_total`` values, in feature id order."""
    if booked_totals:
        update_by_id(conn, features, ("booked_total",), sorted(booked_totals.items()))


def delete_bookings(conn: Connection, where: Any) -> None:
    """Delete the bookings matching ``where`` and take their quantities off the features'
    ``booked_total`` (features in id order, the lock order of every writer)."""
    per_feature = conn.execute(
        select(bookings.c.feature_id, func.sum(bookings.c.quantity))
        .where(where)
        .group_by(bookings.c.feature_id)
        .order_by(bookings.c.feature_id)
    ).all()
    for feature_id, quantity in per_feature:
        conn.execute(
            update(features)
            .where(features.c.id == feature_id)
            .values(booked_total=features.c.booked_total - quantity)
        )
    if per_feature:
        conn.execute(delete(bookings).where(where))
