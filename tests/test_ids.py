"""Ids are never reused (API.md §4): a deleted object's id never names another object, on
both backends, across a server restart and across the migration that brought SQLite's
``AUTOINCREMENT``."""

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import make_url

from storage import engine as engines
from storage import migrate
from storage import products as product_rows
from storage.rows import now
from storage.schema import bookings, configurations, features, jobs, license_servers, products
from tests.conftest import PG_ADMIN_URL, _pg_url
from tests.server import Server, running_server, server_env
from tests.tokens import TokenFactory

Create = Callable[[int], int]  # n → id of a new object (n makes names unique)


def _ok(server: Server, token: str, method: str, params: dict[str, Any]) -> Any:
    response = server.rpc(token, method, params)
    assert "result" in response, (method, params, response)
    return response["result"]


@dataclass(frozen=True)
class Parents:
    product: int
    config: int
    feature: int
    job: int


def _parents(server: Server, token: str) -> Parents:
    """A product, a configuration, a feature with room for bookings and a job."""
    product = _ok(server, token, "products.create", {"name": "parent"})["id"]
    config = _ok(
        server,
        token,
        "configurations.create",
        {
            "name": "parent",
            "cluster_client_id": "cluster-a",
            "type": "flexlm",
            "license_servers": [{"host": "lic1", "port": 27000}],
        },
    )["id"]
    feature = _ok(
        server, token, "features.create", {"name": "f", "product_id": product, "config_id": config}
    )["id"]
    _ok(server, token, "features.update", {"id": feature, "total": 1000})
    job = _ok(
        server, token, "jobs.create", {"slurm_job_id": "0", "username": "u", "lead_host": "h"}
    )
    return Parents(product, config, feature, job["id"])


def _creators(server: Server, token: str, parents: Parents) -> dict[str, Create]:
    """How to create one object of each resource through the API."""

    def create(method: str, params: dict[str, Any]) -> int:
        return int(_ok(server, token, method, params)["id"])

    servers = [{"host": "lic2", "port": 5053}]
    return {
        "products": lambda n: create("products.create", {"name": f"p{n}"}),
        "configurations": lambda n: create(
            "configurations.create",
            {"name": f"c{n}", "cluster_client_id": "b", "type": "rlm", "license_servers": servers},
        ),
        "license_servers": lambda n: create(
            "license_servers.create", {"config_id": parents.config, "host": "h", "port": n}
        ),
        "features": lambda n: create(
            "features.create",
            {"name": f"f{n}", "product_id": parents.product, "config_id": parents.config},
        ),
        "jobs": lambda n: create(
            "jobs.create", {"slurm_job_id": str(n), "username": "u", "lead_host": "h"}
        ),
        "bookings": lambda n: create(
            "bookings.create", {"job_id": parents.job, "feature_id": parents.feature, "quantity": 1}
        ),
    }


def test_a_deleted_top_id_is_never_handed_out_again(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    """For every resource: create two, delete the newer (the highest id, the one SQLite
    without AUTOINCREMENT handed out again), create again: before and after a restart, the
    new id is above every id ever handed out."""
    token = tokens.mint("admin")
    env = server_env(database_url, tokens, tmp_path / "data")
    handed_out: dict[str, list[int]] = {}
    with running_server(env, tmp_path) as server:
        parents = _parents(server, token)
        for resource, create in _creators(server, token, parents).items():
            ids = [create(1), create(2)]
            _ok(server, token, f"{resource}.delete", {"id": ids[-1]})
            ids.append(create(3))
            assert ids[-1] > max(ids[:-1]), (resource, ids)
            _ok(server, token, f"{resource}.delete", {"id": ids[-1]})
            handed_out[resource] = ids
    with running_server(env, tmp_path) as server:
        for resource, create in _creators(server, token, parents).items():
            new = create(4)
            assert new > max(handed_out[resource]), (resource, new, handed_out[resource])


def test_a_feature_replaced_by_a_configuration_update_gets_a_new_id(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    """The issue's case: an update drops a feature and adds another; the old id must not
    name the new feature (a client holding it would read or delete the wrong one)."""
    token = tokens.mint("admin")
    with running_server(server_env(database_url, tokens, tmp_path / "data"), tmp_path) as server:
        parents = _parents(server, token)
        config = _ok(server, token, "configurations.get", {"id": parents.config})
        [old] = config["features"]
        updated = _ok(
            server,
            token,
            "configurations.update",
            {"id": parents.config, "features": [{"name": "g", "product_id": parents.product}]},
        )
        [new] = updated["features"]
        assert new["id"] > old["id"]
        gone = server.rpc(token, "features.get", {"id": old["id"]})
        assert gone["error"]["code"] == -32004


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each backend with no schema at all (the migration test builds it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    name = f"lmrpc_ids_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


TABLES = (products, configurations, license_servers, features, jobs, bookings)


def _populate(engine: Engine) -> None:
    """Two rows in every table, as a 0001 database in use holds them."""
    with engine.begin() as conn:
        for n in (1, 2):
            conn.execute(insert(products).values(id=n, name=f"p{n}"))
            conn.execute(
                insert(configurations).values(
                    id=n, name=f"c{n}", cluster_client_id="a", grace_time=60, type="flexlm"
                )
            )
            conn.execute(insert(license_servers).values(id=n, config_id=n, host="h", port=n))
            conn.execute(
                insert(features).values(
                    id=n, name=f"f{n}", product_id=n, config_id=n, cluster_client_id="a", total=9
                )
            )
            conn.execute(
                insert(jobs).values(
                    id=n,
                    slurm_job_id=str(n),
                    cluster_client_id="a",
                    username="u",
                    lead_host="h",
                    created_at=now(),
                )
            )
            conn.execute(
                insert(bookings).values(id=n, job_id=n, feature_id=n, quantity=1, created_at=now())
            )
        if engine.dialect.name == "postgresql":  # rows given explicit ids move no sequence
            for table in TABLES:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), 2)"
                )


def _contents(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(select(table).order_by(table.c.id))]
            for table in TABLES
        }


def test_migrating_a_populated_0001_database_keeps_rows_and_ids(empty_database: str) -> None:
    """0001 → head keeps every row with its id and every reference between rows; after it,
    a new row's id is above the highest kept one even once that row is deleted."""
    command.upgrade(migrate._config(empty_database), "0001")
    engine = engines.create(empty_database, pool_size=1)
    try:
        _populate(engine)
        before = _contents(engine)
        engine.dispose()
        migrate.upgrade(empty_database)
        assert migrate.is_current(empty_database)
        assert _contents(engine) == before
        with engine.begin() as conn:
            for table in TABLES[::-1]:  # children first
                conn.execute(table.delete().where(table.c.id == 2))
            conn.execute(insert(products).values(name="new"))
            new = conn.execute(select(products.c.id).where(products.c.name == "new")).scalar()
        assert new == 3
        with engine.connect() as conn:  # the foreign keys still hold (SQLite checks lazily)
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    finally:
        engine.dispose()
    if make_url(empty_database).get_backend_name() == "sqlite":
        path = make_url(empty_database).database or ""
        with sqlite3.connect(path) as lite:
            tables = lite.execute("SELECT name FROM sqlite_sequence ORDER BY name").fetchall()
        assert {name for (name,) in tables} == {table.name for table in TABLES}


def test_ids_only_grow_whatever_is_created_and_deleted(database_url: str) -> None:
    """The invariant as a property: over any sequence of creates and deletes (the newest,
    the oldest, or all rows), every new id is above every id handed out before."""
    engine = engines.create(database_url, pool_size=1)
    handed_out = [0]
    names = iter(range(10**9))

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(st.sampled_from(["create", "delete newest", "delete oldest", "clear"])))
    def run(steps: list[str]) -> None:
        with engine.begin() as conn:
            for step in steps:
                live = sorted(conn.execute(select(products.c.id)).scalars())
                if step == "create":
                    new = product_rows.create(conn, f"p{next(names)}")["id"]
                    assert new > max(handed_out), (new, max(handed_out))
                    handed_out.append(new)
                elif live and step == "clear":
                    conn.execute(products.delete())
                elif live:
                    product_rows.delete_(conn, live[-1] if step == "delete newest" else live[0])

    try:
        run()
    finally:
        engine.dispose()
