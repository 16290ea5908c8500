"""License servers: where a configuration's licenses are served (a configuration has ≥ 1).

Every write that could leave a configuration without servers locks the configuration row
first, so two concurrent deletes cannot both see "another server remains".
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from storage.errors import Conflict
from storage.list_fields import ListQuery
from storage.listing import apply
from storage.rows import chunked, require
from storage.schema import configurations, license_servers

LAST_SERVER = "a configuration keeps at least one license server"


def server_json(row: Any) -> dict[str, Any]:
    return {key: row[key] for key in ("id", "config_id", "host", "port")}


def of_configurations(
    conn: Connection, config_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """The license servers of each configuration, one query per chunk of configurations."""
    by_config: dict[int, list[dict[str, Any]]] = {id_: [] for id_ in config_ids}
    for chunk in chunked(config_ids):
        query = (
            select(license_servers)
            .where(license_servers.c.config_id.in_(chunk))
            .order_by(license_servers.c.id)
        )
        for row in conn.execute(query).mappings():
            by_config[row["config_id"]].append(server_json(row))
    return by_config


def insert_many(conn: Connection, config_id: int, entries: Sequence[Mapping[str, Any]]) -> None:
    if entries:
        conn.execute(
            insert(license_servers),
            [{"config_id": config_id, "host": e["host"], "port": e["port"]} for e in entries],
        )


def _lock_configurations(conn: Connection, *config_ids: int) -> None:
    """Lock configuration rows in id order (so a concurrent delete is a NotFound, not a
    foreign-key error, and the server count below cannot change under us)."""
    for config_id in sorted(set(config_ids)):
        require(conn, configurations, config_id, "configuration", lock=True)


def _keep_one(conn: Connection, config_id: int, leaving: int) -> None:
    """Conflict if server ``leaving`` is the last one of its configuration (locked)."""
    count = conn.execute(
        select(func.count())
        .select_from(license_servers)
        .where(license_servers.c.config_id == config_id, license_servers.c.id != leaving)
    ).scalar_one()
    if count == 0:
        raise Conflict(LAST_SERVER, config_id=config_id, license_server_id=leaving)


def create(conn: Connection, *, config_id: int, host: str, port: int) -> dict[str, Any]:
    _lock_configurations(conn, config_id)
    values = {"config_id": config_id, "host": host, "port": port}
    id_ = conn.execute(insert(license_servers).values(**values)).inserted_primary_key[0]  # type: ignore[index]
    return {"id": id_, **values}


def get(conn: Connection, id_: int) -> dict[str, Any]:
    return server_json(require(conn, license_servers, id_, "license_server"))


def list_(conn: Connection, spec: ListQuery) -> list[dict[str, Any]]:
    query = apply(select(license_servers), spec, "license_servers")
    return [server_json(row) for row in conn.execute(query).mappings()]


def update_(conn: Connection, id_: int, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Change host, port or config_id; moving the last server of a configuration away is a
    Conflict, like deleting it."""
    current = require(conn, license_servers, id_, "license_server")
    new_config = changes.get("config_id", current["config_id"])
    if new_config != current["config_id"]:
        _lock_configurations(conn, current["config_id"], new_config)
        _keep_one(conn, current["config_id"], id_)
    conn.execute(update(license_servers).where(license_servers.c.id == id_).values(**changes))
    return get(conn, id_)


def delete_(conn: Connection, id_: int) -> dict[str, Any]:
    current = require(conn, license_servers, id_, "license_server")
    _lock_configurations(conn, current["config_id"])
    _keep_one(conn, current["config_id"], id_)
    conn.execute(delete(license_servers).where(license_servers.c.id == id_))
    return {"deleted": id_}
