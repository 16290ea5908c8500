"""Features: a product's licensed feature in one configuration, with its counters.

``features.cluster_client_id`` copies the configuration's cluster (the unique key "one
product.feature per cluster" rests on it), so every write that sets ``config_id`` sets it too.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    any_,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from storage.errors import NotFound
from storage.list_fields import ListQuery
from storage.listing import apply
from storage.rows import chunked, require, unique, update_by_id
from storage.schema import configurations, features, products

DUPLICATE = "a feature with this product and name exists in the cluster"

_SELECT = select(features, products.c.name.label("product_name")).join(
    products, products.c.id == features.c.product_id
)

# Built once: bulk_update is a hot path (agents report every interval). The names are
# resolved with two hashed lists and filtered to the exact pairs in Python: on PostgreSQL a
# 1,000-pair row-value IN is planned as an OR chain (≈ 90 ms here, against ≈ 15 ms), and a
# join with unnest() of the pairs as 1,000 index probes (≈ 45 ms). PostgreSQL gets the lists
# as two array parameters (``= ANY``): an expanded IN of 2,000 placeholders made a statement
# too long for psycopg's query cache, parsed again on every call. Rows are locked in id
# order, the lock order of every writer of feature rows.
_RESOLVED_COLUMNS = (
    products.c.name.label("product"),
    features.c.name,
    features.c.id,
    features.c.total,
    features.c.used,
    features.c.reserved,
    features.c.booked_total,
)


def _resolve(names: Any, product_names: Any) -> Any:
    return (
        select(*_RESOLVED_COLUMNS)
        .join(products, products.c.id == features.c.product_id)
        .where(features.c.cluster_client_id == bindparam("cluster"), names, product_names)
        .order_by(features.c.id)
        .with_for_update(of=features)
    )


_RESOLVE = _resolve(
    features.c.name.in_(bindparam("names", expanding=True)),
    products.c.name.in_(bindparam("products", expanding=True)),
)
_RESOLVE_PG = _resolve(
    features.c.name == any_(bindparam("names", type_=ARRAY(String))),
    products.c.name == any_(bindparam("products", type_=ARRAY(String))),
)


def feature_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "product": {"id": row.product_id, "name": row.product_name},
        "config_id": row.config_id,
        "reserved": row.reserved,
        "total": row.total,
        "used": row.used,
        "booked_total": row.booked_total,
    }


def of_configurations(
    conn: Connection, config_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """The features of each configuration, one query per chunk of configurations."""
    by_config: dict[int, list[dict[str, Any]]] = {id_: [] for id_ in config_ids}
    for chunk in chunked(config_ids):
        query = _SELECT.where(features.c.config_id.in_(chunk)).order_by(features.c.id)
        for row in conn.execute(query):
            by_config[row.config_id].append(feature_json(row))
    return by_config


def require_products(conn: Connection, product_ids: Iterable[int]) -> None:
    """NotFound for the smallest of ``product_ids`` that names no product."""
    wanted = sorted(set(product_ids))
    found: set[int] = set()
    for chunk in chunked(wanted):
        found.update(conn.execute(select(products.c.id).where(products.c.id.in_(chunk))).scalars())
    for id_ in wanted:
        if id_ not in found:
            raise NotFound("product", id_)


def insert_many(
    conn: Connection, config_id: int, cluster_client_id: str, entries: Sequence[Mapping[str, Any]]
) -> None:
    """Insert features (``name``, ``product_id``, ``reserved``) into one configuration; the
    caller wraps it in ``unique`` and has checked the products."""
    if entries:
        conn.execute(
            insert(features),
            [
                {
                    "name": entry["name"],
                    "product_id": entry["product_id"],
                    "reserved": entry.get("reserved", 0),
                    "config_id": config_id,
                    "cluster_client_id": cluster_client_id,
                }
                for entry in entries
            ],
        )


def lock_of_configuration(conn: Connection, config_id: int) -> list[int]:
    """Ids of a configuration's features, locked in id order (the lock order of every
    writer of feature rows) before they are changed or deleted."""
    query = (
        select(features.c.id)
        .where(features.c.config_id == config_id)
        .order_by(features.c.id)
        .with_for_update()
    )
    return list(conn.execute(query).scalars())


def _lock_configuration(conn: Connection, config_id: int) -> str:
    """Lock the configuration a feature joins (configurations before features: the lock
    order of every writer) and return its cluster, so that a concurrent change of the
    configuration's cluster or its deletion is seen, never half-copied or a foreign-key
    error."""
    return str(
        require(conn, configurations, config_id, "configuration", lock=True)["cluster_client_id"]
    )


def create(
    conn: Connection, *, name: str, product_id: int, config_id: int, reserved: int
) -> dict[str, Any]:
    require(conn, products, product_id, "product")
    cluster = _lock_configuration(conn, config_id)
    entry = {"name": name, "product_id": product_id, "reserved": reserved}
    with unique(DUPLICATE, cluster_client_id=cluster, product_id=product_id, name=name):
        id_ = conn.execute(
            insert(features).values(**entry, config_id=config_id, cluster_client_id=cluster)
        ).inserted_primary_key[0]  # type: ignore[index]
    return get(conn, id_)


def get(conn: Connection, id_: int) -> dict[str, Any]:
    row = conn.execute(_SELECT.where(features.c.id == id_)).first()
    if row is None:
        raise NotFound("feature", id_)
    return feature_json(row)


def list_(
    conn: Connection, spec: ListQuery, cluster_client_id: str | None = None
) -> list[dict[str, Any]]:
    query = _SELECT
    if cluster_client_id is not None:
        query = query.where(features.c.cluster_client_id == cluster_client_id)
    query = apply(query, spec, "features")
    return [feature_json(row) for row in conn.execute(query)]


def update_(conn: Connection, id_: int, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Change any of name, product_id, config_id, reserved, total, used (never
    booked_total, which only admitting and deleting bookings moves: an update keeps them)."""
    require(conn, features, id_, "feature")
    values = dict(changes)
    if "product_id" in values:
        require(conn, products, values["product_id"], "product")
    if "config_id" in values:
        values["cluster_client_id"] = _lock_configuration(conn, values["config_id"])
    current = require(conn, features, id_, "feature", lock=True)
    final = {**current, **values}
    with unique(
        DUPLICATE,
        cluster_client_id=final["cluster_client_id"],
        product_id=final["product_id"],
        name=final["name"],
    ):
        conn.execute(update(features).where(features.c.id == id_).values(**values))
    return get(conn, id_)


def delete_(conn: Connection, id_: int) -> dict[str, Any]:
    """Delete a feature; its bookings go with it (ON DELETE CASCADE)."""
    require(conn, features, id_, "feature", lock=True)
    conn.execute(delete(features).where(features.c.id == id_))
    return {"deleted": id_}


@dataclass(frozen=True, slots=True)
class Reported:
    """What a bulk update did: the features' ids by (product, feature) and their counters
    (id, total, used, reserved, booked_total) as it left them."""

    ids: dict[tuple[str, str], int]
    counters: list[tuple[int, int, int, int, int]]


def bulk_update(
    conn: Connection, cluster_client_id: str, entries: Sequence[tuple[str, str, int, int]]
) -> Reported:
    """Set (total, used) of features of one cluster named by (product, feature), all or
    nothing: one SELECT resolves and locks them, one statement writes the rows whose values
    differ (in id order, the lock order).

    ``entries`` is at most 10,000 long (the params limit), so the IN lists stay under both
    engines' bound on parameters and need no chunking (which would break the lock order).
    """
    if not entries:
        return Reported({}, [])
    postgresql = conn.dialect.name == "postgresql"
    params = {
        "cluster": cluster_client_id,
        "names": sorted({feature for _, feature, _, _ in entries}),
        "products": sorted({product for product, _, _, _ in entries}),
    }
    rows = conn.execute(_RESOLVE_PG if postgresql else _RESOLVE, params)
    current = {(p, f): (i, total, used, r, b) for p, f, i, total, used, r, b in rows}
    reported = Reported({}, [])
    changed: list[tuple[int, int, int]] = []
    missing: list[str] = []
    for product, name, total, used in entries:  # one pass: 10,000 entries at most
        found = current.get((product, name))
        if found is None:
            missing.append(f"{product}.{name}")
            continue
        id_, old_total, old_used, reserved, booked_total = found
        reported.ids[(product, name)] = id_
        reported.counters.append((id_, total, used, reserved, booked_total))
        if total != old_total or used != old_used:
            changed.append((id_, total, used))
    if missing:
        raise NotFound("feature", missing=missing)
    if not changed:
        return reported
    update_by_id(conn, features, ("total", "used"), sorted(changed))
    return reported
