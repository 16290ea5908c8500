"""Fixtures: every storage-backed test runs on SQLite and on the machine's real PostgreSQL.

PostgreSQL must be reachable (``LMRPC_TEST_PG_URL``, default the local server): when it is
not, the tests fail loudly rather than skip.
"""

import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import trio

import lmrpc.methods  # noqa: F401  (registers the methods)
from actors.supervisor import Supervisor
from lmrpc import jsonrpc
from lmrpc.dispatch import run_call
from lmrpc.errors import RpcError
from lmrpc.identity import ADMIN, Identity
from lmrpc.registry import CallContext
from storage import migrate
from storage.facade import Storage
from storage.schema import metadata
from tests.tokens import TokenFactory

PG_ADMIN_URL = os.environ.get("LMRPC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


@contextmanager
def _new_pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, dropped at the end."""
    name = f"lmrpc_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is required for the tests and is not reachable: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    try:
        migrate.upgrade(url)
        yield url
    finally:  # a failing test inside the block must not leave its database behind
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """This session's PostgreSQL database, which ``database_url`` empties for each test."""
    with _new_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_shared_database() -> Iterator[str]:
    """The shared servers' PostgreSQL database: apart from ``pg_database``, which each test
    empties under their feet."""
    with _new_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "lmrpc.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _truncate_pg(url: str) -> None:
    tables = ", ".join(table.name for table in metadata.sorted_tables)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "lmrpc.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    store = Storage(database_url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def supervisor(storage: Storage, nursery: trio.Nursery) -> AsyncIterator[Supervisor]:
    actors = Supervisor(storage)
    await nursery.start(actors.run)
    yield actors
    await actors.close()


def identity(
    *permissions: str, cluster: str | None = "cluster-a", organization: str | None = None
) -> Identity:
    """An identity as a verified token would give (``admin`` by default)."""
    from tests.tokens import expand

    return Identity(
        subject="test",
        permissions=frozenset(expand(p) for p in permissions or ("admin",)),
        cluster_client_id=cluster,
        organization=organization,
        expires_at=float("inf"),
    )


ADMIN_IDENTITY = identity("admin")
assert ADMIN in ADMIN_IDENTITY.permissions


class Rpc:
    """Calls methods in process through the real dispatcher (no HTTP)."""

    def __init__(self, storage: Storage, actors: Supervisor) -> None:
        self.storage = storage
        self.actors = actors

    async def __call__(
        self, method: str, params: dict[str, Any] | None = None, *, as_: Identity = ADMIN_IDENTITY
    ) -> Any:
        call = jsonrpc.Call(method, params if params is not None else {}, 1)
        return await run_call(call, as_, lambda who: CallContext(who, self.storage, self.actors))

    async def error(
        self, method: str, params: dict[str, Any] | None = None, *, as_: Identity = ADMIN_IDENTITY
    ) -> RpcError:
        """The RpcError the call raises; fails the test if it succeeds."""
        try:
            result = await self(method, params, as_=as_)
        except RpcError as error:
            return error
        pytest.fail(f"{method} succeeded with {result!r}, expected an error")


@pytest.fixture
def rpc(storage: Storage, supervisor: Supervisor) -> Rpc:
    return Rpc(storage, supervisor)


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> TokenFactory:
    return TokenFactory(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def server(database_url: str, tokens: TokenFactory, tmp_path: Path) -> Iterator["Server"]:
    """A real ``lmrpc serve`` on a free port, on each backend, trusting ``tokens``."""
    from tests.server import running_server, server_env

    with running_server(server_env(database_url, tokens, tmp_path / "data"), tmp_path) as srv:
        yield srv


@pytest.fixture(scope="session", params=BACKENDS)
def shared_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The database of ``shared_server``, one of each backend for the whole session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("shared") / "lmrpc.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_shared_database")
    return url


@pytest.fixture(scope="session")
def shared_server(
    shared_database_url: str, tokens: TokenFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator["Server"]:
    """One real ``lmrpc serve`` per backend with the default settings, for the whole session.

    Starting a server costs seconds, so every test that needs only *a* server uses this one:
    such a test tells its data apart by unique names (``unique_name``), never expects an empty
    database or process-wide counters from zero, needs no special setting and never stops it.
    """
    from tests.server import running_server, server_env

    directory = tmp_path_factory.mktemp("shared-server")
    env = server_env(shared_database_url, tokens, directory / "data")
    with running_server(env, directory) as srv:
        yield srv


def module_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tokens: TokenFactory,
    extra: dict[str, str],
) -> Iterator["Server"]:
    """For a module-scoped fixture parametrized by backend (``request.param``): a server with
    the ``extra`` settings, shared by a module's tests, on the shared servers' database."""
    from tests.server import running_server, server_env

    directory = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), directory / "lmrpc.sqlite3")
        database_url = f"sqlite:///{directory / 'lmrpc.sqlite3'}"
    else:
        database_url = request.getfixturevalue("pg_shared_database")
    env = server_env(database_url, tokens, directory / "data", extra)
    with running_server(env, directory) as srv:
        yield srv


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses, for what a test creates on a shared server or database."""
    return f"t{uuid.uuid4().hex[:10]}"


if TYPE_CHECKING:
    from tests.server import Server


_BACKEND_IN_ID = re.compile(r"[\[-](sqlite|postgresql)[\]-]")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For pytest-xdist (``--dist loadgroup``): a module's tests run on one worker, so its
    module-scoped servers start once, and every test on the real Slurm runs on one worker
    (one Slurm and one munged per run, not one per worker)."""
    for item in items:
        uses_slurm = "slurm" in getattr(item, "fixturenames", ())
        item.add_marker(
            pytest.mark.xdist_group("slurm" if uses_slurm else item.nodeid.split("::")[0])
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how many tests passed on each backend: `.ci/run` checks that both ran."""
    passed: dict[str, int] = dict.fromkeys(BACKENDS, 0)
    for report in terminalreporter.stats.get("passed", []):
        if report.when == "call" and (match := _BACKEND_IN_ID.search(report.nodeid)):
            passed[match.group(1)] += 1
    terminalreporter.write_line(
        "backends: " + " ".join(f"{name}={count}" for name, count in passed.items())
    )
