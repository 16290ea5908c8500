"""Actor faults: a storage error inside an actor's transaction, made by the real database
(a trigger that fails inserts of bookings, or a lock held by another connection), gives
every waiting caller an error, never a hang; the actor's counters are then reloaded from
storage, and later calls succeed. On SQLite and PostgreSQL."""

import sqlite3
import time
from collections.abc import AsyncIterator

import psycopg
import pytest
import trio
from sqlalchemy.engine import make_url

from actors.supervisor import Supervisor
from lmrpc import jsonrpc
from lmrpc.dispatch import respond
from lmrpc.identity import Identity
from lmrpc.registry import CallContext
from storage.facade import Storage
from tests.conftest import ADMIN_IDENTITY, Rpc
from tests.factories import booked_total, feature_row_locked, make_feature, make_job

DB_TIMEOUT_S = 0.5
CALLERS = 6


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    """The real storage with short database timeouts, so a held lock fails quickly."""
    store = Storage(database_url, timeout=DB_TIMEOUT_S)
    try:
        yield store
    finally:
        await store.close()


def _sqlite(url: str) -> sqlite3.Connection | None:
    if make_url(url).get_backend_name() != "sqlite":
        return None
    return sqlite3.connect(make_url(url).database or "", isolation_level=None)


def execute(url: str, *statements: str) -> None:
    """Run statements on a connection of our own, outside the service."""
    lite = _sqlite(url)
    if lite is not None:
        for statement in statements:
            lite.execute(statement)
        lite.close()
        return
    with psycopg.connect(url, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement)


FAULT_ON = {
    "sqlite": [
        "CREATE TRIGGER lmrpc_fault BEFORE INSERT ON bookings"
        " BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION lmrpc_fault() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$",
        "CREATE TRIGGER lmrpc_fault BEFORE INSERT ON bookings"
        " FOR EACH ROW EXECUTE FUNCTION lmrpc_fault()",
    ],
}
FAULT_OFF = {
    "sqlite": ["DROP TRIGGER lmrpc_fault"],
    "postgresql": [
        "DROP TRIGGER lmrpc_fault ON bookings",
        "DROP FUNCTION lmrpc_fault()",
    ],
}


async def _concurrently(rpc: Rpc, calls: list[tuple[str, dict[str, object]]]) -> list[int]:
    """Run the calls at once as the server does (``dispatch.respond``: an unexpected
    exception becomes -32603); each one's error code, or 0 for a result."""
    outcomes: list[int] = [1] * len(calls)

    def context_for(who: Identity) -> CallContext:
        return CallContext(who, rpc.storage, rpc.actors)

    async def one(index: int, method: str, params: dict[str, object]) -> None:
        call = jsonrpc.Call(method, params, index)
        response = await respond(call, ADMIN_IDENTITY, context_for)
        outcomes[index] = response["error"]["code"] if "error" in response else 0

    with trio.fail_after(10):  # an error, never a hang
        async with trio.open_nursery() as nursery:
            for index, (method, params) in enumerate(calls):
                nursery.start_soon(one, index, method, params)
    return outcomes


def _dialect(storage: Storage) -> str:
    return storage.dialect


async def test_failed_transaction_fails_its_callers_and_the_actor_is_replaced(
    storage: Storage, supervisor: Supervisor, rpc: Rpc, database_url: str
) -> None:
    feature = await make_feature(storage, 10)
    job = await make_job(storage)
    book: dict[str, object] = {"job_id": job, "feature_id": feature, "quantity": 1}
    await rpc("bookings.create", {**book, "quantity": 2})
    before = supervisor._actors[feature]

    execute(database_url, *FAULT_ON[_dialect(storage)])
    try:
        outcomes = await _concurrently(rpc, [("bookings.create", book)] * CALLERS)
    finally:
        execute(database_url, *FAULT_OFF[_dialect(storage)])
    # every waiting caller got an error (an internal one: the database refused the write)
    assert outcomes == [-32603] * CALLERS, outcomes
    assert supervisor._actors.get(feature) is not before  # the failed actor was dropped
    assert await booked_total(storage, feature) == (2, 2)  # nothing of the failed group stored

    # Counters change behind the actors' backs; the fresh actor works from storage.
    execute(database_url, f"UPDATE features SET used = 5 WHERE id = {feature}")
    booking = await rpc("bookings.create", book)
    assert booking["quantity"] == 1
    assert supervisor._actors[feature] is not before
    refused = await rpc.error("bookings.create", {**book, "quantity": 3})
    assert refused.code == -32010 and refused.data["available"] == 2
    assert await booked_total(storage, feature) == (3, 3)


async def test_timed_out_transaction_fails_its_callers_then_counters_are_reloaded(
    storage: Storage, supervisor: Supervisor, rpc: Rpc, database_url: str
) -> None:
    feature = await make_feature(storage, 10, product="ansys", name="hpc")
    job = await make_job(storage)
    book: dict[str, object] = {"job_id": job, "feature_id": feature, "quantity": 1}
    await rpc("bookings.create", book)
    actor = supervisor._actors[feature]
    calls: list[tuple[str, dict[str, object]]] = [("bookings.create", book)] * CALLERS
    calls += [
        (
            "jobs.create",
            {
                "slurm_job_id": f"fault-{n}",
                "username": "u",
                "lead_host": "h",
                "bookings": [{"product_feature": "ansys.hpc", "quantity": 1}],
            },
        )
        for n in range(3)
    ]

    started = time.monotonic()
    with feature_row_locked(database_url, feature):
        outcomes = await _concurrently(rpc, calls)
    elapsed = time.monotonic() - started
    assert outcomes == [-32050] * len(calls), outcomes
    # one timeout for the group, not one per caller (nine callers: 4.5 s if serial)
    assert elapsed < 6 * DB_TIMEOUT_S, elapsed
    # a transient failure keeps the actor (its next commit re-reads the row); only an
    # unexpected failure replaces it, as in the test above
    assert supervisor._actors[feature] is actor

    execute(database_url, f"UPDATE features SET used = 4, reserved = 1 WHERE id = {feature}")
    created = await rpc(
        "jobs.create",
        {
            "slurm_job_id": "fault-0",  # the refused create left nothing behind
            "username": "u",
            "lead_host": "h",
            "bookings": [{"product_feature": "ansys.hpc", "quantity": 2}],
        },
    )
    assert len(created["bookings"]) == 1
    await rpc("bookings.create", book)  # 10 - 4 used - 1 reserved - 4 booked: 1 left
    refused = await rpc.error("bookings.create", {**book, "quantity": 2})
    assert refused.code == -32010 and refused.data["available"] == 1
    assert await booked_total(storage, feature) == (4, 4)
