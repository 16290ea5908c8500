"""Configurations: a cluster's license servers and the features they serve.

A configuration is returned with its children; lists fetch them with one query per chunk of
configurations. Writes that change or delete features lock the configuration row, then its
features in id order, so they queue behind (never deadlock with) admissions.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from storage import features as features_
from storage import license_servers as servers_
from storage.errors import Conflict, NotFound
from storage.list_fields import ListQuery
from storage.listing import apply
from storage.rows import chunked, require, unique
from storage.schema import configurations, features, license_servers

Entry = Mapping[str, Any]


def _with_children(conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    ids = [row["id"] for row in rows]
    by_config_features = features_.of_configurations(conn, ids)
    by_config_servers = servers_.of_configurations(conn, ids)
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "cluster_client_id": row["cluster_client_id"],
            "grace_time": row["grace_time"],
            "type": row["type"],
            "features": by_config_features[row["id"]],
            "license_servers": by_config_servers[row["id"]],
        }
        for row in rows
    ]


def create(
    conn: Connection,
    *,
    name: str,
    cluster_client_id: str,
    type_: str,
    grace_time: int,
    servers: Sequence[Entry],
    feature_entries: Sequence[Entry],
) -> dict[str, Any]:
    """A configuration with its license servers (≥ 1, checked by the caller) and features."""
    features_.require_products(conn, (entry["product_id"] for entry in feature_entries))
    values = {
        "name": name,
        "cluster_client_id": cluster_client_id,
        "type": type_,
        "grace_time": grace_time,
    }
    with unique(features_.DUPLICATE, cluster_client_id=cluster_client_id):
        id_ = conn.execute(insert(configurations).values(**values)).inserted_primary_key[0]  # type: ignore[index]
        servers_.insert_many(conn, id_, servers)
        features_.insert_many(conn, id_, cluster_client_id, feature_entries)
    return get(conn, id_)


def get(conn: Connection, id_: int) -> dict[str, Any]:
    return _with_children(conn, [require(conn, configurations, id_, "configuration")])[0]


def list_(
    conn: Connection, spec: ListQuery, cluster_client_id: str | None = None
) -> list[dict[str, Any]]:
    query = select(configurations)
    if cluster_client_id is not None:
        query = query.where(configurations.c.cluster_client_id == cluster_client_id)
    query = apply(query, spec, "configurations")
    return _with_children(conn, list(conn.execute(query).mappings()))


def _sync(
    conn: Connection, table: Table, resource: str, existing: Sequence[int], entries: Sequence[Entry]
) -> list[Entry]:
    """Make a configuration's children match ``entries``: an entry with ``id`` updates that
    child (which must be one of ``existing``; updated in id order, the lock order), children
    not listed are deleted. Returns the entries to insert."""
    listed = {entry["id"]: entry for entry in entries if "id" in entry}
    known = set(existing)
    for id_ in sorted(listed):
        if id_ not in known:
            raise NotFound(resource, id_)
    gone = [id_ for id_ in existing if id_ not in listed]
    for chunk in chunked(gone):
        conn.execute(delete(table).where(table.c.id.in_(chunk)))
    for id_ in sorted(listed):
        values = {key: value for key, value in listed[id_].items() if key != "id"}
        if values:
            conn.execute(update(table).where(table.c.id == id_).values(**values))
    return [entry for entry in entries if "id" not in entry]


def update_(
    conn: Connection,
    id_: int,
    changes: Mapping[str, Any],
    servers: Sequence[Entry] | None = None,
    feature_entries: Sequence[Entry] | None = None,
) -> dict[str, Any]:
    """Change fields and replace child lists (API.md §5)."""
    current = require(conn, configurations, id_, "configuration", lock=True)
    if servers is not None and not servers:
        raise Conflict(servers_.LAST_SERVER, config_id=id_)
    cluster = changes.get("cluster_client_id", current["cluster_client_id"])
    moved = cluster != current["cluster_client_id"]
    existing_features = (
        features_.lock_of_configuration(conn, id_) if moved or feature_entries is not None else []
    )
    if feature_entries:
        features_.require_products(
            conn, (e["product_id"] for e in feature_entries if "product_id" in e)
        )
    with unique(features_.DUPLICATE, config_id=id_, cluster_client_id=cluster):
        if changes:
            conn.execute(update(configurations).where(configurations.c.id == id_).values(**changes))
        if servers is not None:
            existing_servers = conn.execute(
                select(license_servers.c.id).where(license_servers.c.config_id == id_)
            ).scalars()
            new_servers = _sync(
                conn, license_servers, "license_server", list(existing_servers), servers
            )
            servers_.insert_many(conn, id_, new_servers)
        if feature_entries is not None:
            new_features = _sync(conn, features, "feature", existing_features, feature_entries)
            features_.insert_many(conn, id_, cluster, new_features)
        if moved:
            conn.execute(
                update(features)
                .where(features.c.config_id == id_)
                .values(cluster_client_id=cluster)
            )
    return get(conn, id_)


def delete_(conn: Connection, id_: int) -> dict[str, Any]:
    """Delete a configuration; its servers, features and their bookings go with it (ON
    DELETE CASCADE)."""
    require(conn, configurations, id_, "configuration", lock=True)
    features_.lock_of_configuration(conn, id_)  # in the writers' lock order, before the cascade
    conn.execute(delete(configurations).where(configurations.c.id == id_))
    return {"deleted": id_}
