"""Storage primitives for admission: feature rows under a write lock, job owners, booking
inserts, counter writes. The actors compose them into transactions."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from storage.row_sets import RowSet
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
# Each name probed on the unique keys, products by name and then the cluster's feature of
# that product by name (storage.row_sets says why; a row-value IN of the pairs walked every
# feature of the cluster, generic plan or not).
_NAMES = RowSet("names", (("product", String()), ("feature", String())))


def _resolve_features(names: Any) -> Any:
    found = (
        select(features.c.id)
        .join(products, products.c.id == features.c.product_id)
        .where(
            features.c.cluster_client_id == bindparam("cluster"),
            products.c.name == names.c.product,
            features.c.name == names.c.feature,
        )
    )
    return select(names.c.product, names.c.feature, found.scalar_subquery())


_RESOLVE_FEATURES = _NAMES.statements(_resolve_features)
_JOB_IDS = RowSet("keys", (("id", Integer()),))


def _job_owners(keys: Any) -> Any:
    owner = select(jobs.c.cluster_client_id).where(jobs.c.id == keys.c.id)
    return select(keys.c.id, owner.scalar_subquery())


_JOB_OWNERS = _JOB_IDS.statements(_job_owners)
# Bookings are inserted by one statement with the same few parameters however many rows
# (a RowSet). RETURNING gives no order: rows are matched back by content, and equal rows
# are interchangeable.
_NEW_BOOKINGS = RowSet(
    "new", (("job_id", Integer()), ("feature_id", Integer()), ("quantity", Integer()))
)
_CREATED_AT = bindparam("created_at", type_=bookings.c.created_at.type)


def _insert_bookings(rows: Any) -> Any:
    return (
        insert(bookings)
        .from_select(
            ["job_id", "feature_id", "quantity", "created_at"], select(*rows.c, _CREATED_AT)
        )
        .returning(bookings.c.id, bookings.c.job_id, bookings.c.feature_id, bookings.c.quantity)
    )


_INSERT_BOOKINGS = _NEW_BOOKINGS.statements(_insert_bookings)


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
    rows = conn.execute(
        _RESOLVE_FEATURES[conn.dialect.name],
        {"cluster": cluster_client_id, **_NAMES.params(conn, pairs)},
    )
    return {f"{product}.{feature}": id_ for product, feature, id_ in rows if id_ is not None}


def job_owners(conn: Connection, job_ids: Iterable[int]) -> dict[int, str]:
    """Job id → cluster_client_id for the jobs that exist (no query for no ids: a group
    commit of jobs alone has none)."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    rows = conn.execute(_JOB_OWNERS[conn.dialect.name], _JOB_IDS.params(conn, [(i,) for i in ids]))
    return {id_: cluster for id_, cluster in rows if cluster is not None}


def insert_bookings(
    conn: Connection, requests: Sequence[tuple[int, int, int]]
) -> list[dict[str, Any]]:
    """Insert (job_id, feature_id, quantity) bookings; the new bookings, in order."""
    if not requests:
        return []
    created = now()
    values = {**_NEW_BOOKINGS.params(conn, requests), "created_at": created}
    ids: dict[tuple[int, int, int], list[int]] = {}
    for id_, *key in conn.execute(_INSERT_BOOKINGS[conn.dialect.name], values):
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
