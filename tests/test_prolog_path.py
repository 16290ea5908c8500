"""The prolog path: ``jobs.create`` with bookings is admitted by the committer, in the
transaction it shares with other bookings and jobs; on both backends."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import trio
from sqlalchemy import event, func, make_url, select

from actors.job_coordinator import admit_job
from actors.supervisor import Supervisor
from actors.transactions import (
    BookingRequest,
    FeatureGroup,
    Item,
    JobRequest,
    JobSpec,
    commit_items,
)
from storage import admission
from storage import jobs as job_rows
from storage.errors import Conflict, NotEnoughLicenses
from storage.facade import Storage
from storage.schema import jobs
from tests.conftest import ADMIN_IDENTITY, _new_pg_database
from tests.factories import booked_total, make_feature, make_job

AN_ADMIN = ADMIN_IDENTITY.check_owner


def spec(slurm_job_id: str, cluster: str = "cluster-a") -> JobSpec:
    return JobSpec(slurm_job_id, cluster, "alice", "node001")


@contextmanager
def transactions(storage: Storage) -> Iterator[list[str]]:
    """Every transaction begun on the storage's engines while inside."""
    begun: list[str] = []
    engines = {storage._write_engine, storage._read_engine}

    def count(conn: Any) -> None:
        begun.append(str(conn.engine.url))

    for engine in engines:
        event.listen(engine, "begin", count)
    try:
        yield begun
    finally:
        for engine in engines:
            event.remove(engine, "begin", count)


async def job_count(storage: Storage) -> int:
    return await storage.read(
        lambda conn: conn.execute(select(func.count()).select_from(jobs)).scalar_one()
    )


async def test_a_job_with_bookings_costs_one_transaction(
    storage: Storage, supervisor: Supervisor
) -> None:
    await make_feature(storage, 10, product="ansys", name="hpc")
    await make_feature(storage, 10, product="ansys", name="cfd")
    with transactions(storage) as begun:
        job = await admit_job(supervisor, spec("1"), [("ansys.hpc", 2), ("ansys.cfd", 1)])
    assert len(begun) == 1  # no name lookup, duplicate check or hold of its own
    assert [(b["quantity"], b["job_id"]) for b in job["bookings"]] == [
        (2, job["id"]),
        (1, job["id"]),
    ]


async def test_a_refused_job_leaves_nothing_and_takes_nothing(
    storage: Storage, supervisor: Supervisor
) -> None:
    first = await make_feature(storage, 4, product="ansys", name="hpc")
    second = await make_feature(storage, 1, product="ansys", name="cfd")
    with pytest.raises(NotEnoughLicenses) as refused:
        await admit_job(supervisor, spec("1"), [("ansys.hpc", 3), ("ansys.cfd", 2)])
    assert (refused.value.feature_id, refused.value.available) == (second, 1)
    assert await job_count(storage) == 0
    job = await make_job(storage)
    assert (await supervisor.book(first, BookingRequest(job, 4, AN_ADMIN)))["quantity"] == 4
    assert await booked_total(storage, first) == (4, 4)
    assert await booked_total(storage, second) == (0, 0)


async def test_jobs_and_bookings_racing_for_a_feature_never_exceed_its_total(
    storage: Storage, supervisor: Supervisor
) -> None:
    """Jobs and single bookings land in the same commits; every job is whole or absent."""
    shared = await make_feature(storage, 30, product="ansys", name="hpc")
    other = await make_feature(storage, 100, product="ansys", name="cfd")
    booker = await make_job(storage, slurm_job_id="booker")
    created: list[dict[str, Any]] = []
    booked: list[int] = []
    refused: list[str] = []

    async def create(n: int) -> None:
        try:
            created.append(
                await admit_job(supervisor, spec(f"j{n}"), [("ansys.hpc", 1), ("ansys.cfd", 1)])
            )
        except NotEnoughLicenses:
            refused.append("job")

    async def book() -> None:
        try:
            booked.append(
                (await supervisor.book(shared, BookingRequest(booker, 1, AN_ADMIN)))["id"]
            )
        except NotEnoughLicenses:
            refused.append("booking")

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(create, n)
                nursery.start_soon(book)
    assert len(created) + len(booked) == 30 and len(refused) == 50
    assert all(len(job["bookings"]) == 2 for job in created)
    assert await job_count(storage) == len(created) + 1  # refused jobs left no row
    assert await booked_total(storage, shared) == (30, 30)
    assert await booked_total(storage, other) == (len(created), len(created))


async def test_duplicate_creates_name_the_one_job_that_won(
    storage: Storage, supervisor: Supervisor
) -> None:
    feature = await make_feature(storage, 100, product="ansys", name="hpc")
    won: list[dict[str, Any]] = []
    conflicts: list[Conflict] = []

    async def create() -> None:
        try:
            won.append(await admit_job(supervisor, spec("same"), [("ansys.hpc", 2)]))
        except Conflict as conflict:
            conflicts.append(conflict)

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(create)
    [job] = won
    assert [c.ids["job_id"] for c in conflicts] == [job["id"]] * 9
    assert await booked_total(storage, feature) == (2, 2)


async def test_a_job_another_process_created_since_the_check_fails_alone(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race with another server process between the duplicate check and the insert
    cannot be timed here, so the check is made to miss the existing job (a stand-in for
    that process): the job is a Conflict, the other items of the transaction commit."""
    feature = await make_feature(storage, 10, product="ansys", name="hpc")
    await make_job(storage, slurm_job_id="taken")
    booker = await make_job(storage)
    monkeypatch.setattr(job_rows, "existing_ids", lambda conn, keys: {})
    items: list[Item] = [
        JobRequest(spec("taken"), [("ansys.hpc", 3)]),
        FeatureGroup(feature, [BookingRequest(booker, 2, AN_ADMIN)]),
        JobRequest(spec("new"), [("ansys.hpc", 1)]),
    ]
    duplicate, group, fresh = await storage.write(lambda conn: commit_items(conn, items))
    assert isinstance(duplicate, Conflict) and "job_id" not in duplicate.ids
    assert isinstance(group, list) and isinstance(fresh, dict)
    assert [o["quantity"] for o in group if isinstance(o, dict)] == [2]
    assert fresh["bookings"][0]["quantity"] == 1
    assert await booked_total(storage, feature) == (3, 3)
    assert await job_count(storage) == 3


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


_GROW_JOBS = (
    "INSERT INTO jobs (slurm_job_id, cluster_client_id, username, lead_host, created_at)"
    " SELECT '{prefix}' || g, 'cluster-a', 'alice', 'node001', now()"
    " FROM generate_series(1, {count}) AS g"
)
_GROW_FEATURES = (
    "INSERT INTO features (name, product_id, config_id, cluster_client_id)"
    " SELECT '{prefix}' || g, 1, 1, 'cluster-a' FROM generate_series(1, {count}) AS g"
)


@dataclass(frozen=True)
class Lookup:
    """A lookup of the group commit by a set of keys, as PREPARE sees it."""

    statements: dict[str, Any]
    params: tuple[tuple[str, str], ...]  # (SQLAlchemy's name, PostgreSQL's type) in order
    grow: str  # inserts ``count`` rows named ``prefix`` || n
    small_args: str
    grown_args: str  # some keys of the grown rows and some that match nothing
    table: str
    key_column: str  # what an index lookup by the whole key names
    found: int


LOOKUPS = {
    "duplicate check": Lookup(
        job_rows._EXISTING_IDS,
        (("cluster", "varchar"), ("keys_slurm_job_id", "varchar[]")),
        _GROW_JOBS,
        "'cluster-a', '{small-1,new-1}'",
        "'cluster-a', '{grown-7,new-1,new-2}'",
        "jobs",
        "slurm_job_id",
        1,
    ),
    "job owners": Lookup(
        admission._JOB_OWNERS,
        (("keys_id", "int[]"),),
        _GROW_JOBS,
        "'{1,2}'",
        "'{7,4000,999999}'",
        "jobs",
        "id",
        2,
    ),
    "feature names": Lookup(
        admission._RESOLVE_FEATURES,
        (("cluster", "varchar"), ("names_product", "varchar[]"), ("names_feature", "varchar[]")),
        _GROW_FEATURES,
        "'cluster-a', '{ansys}', '{small-1}'",
        "'cluster-a', '{ansys,ansys,ansys}', '{grown-7,grown-4000,nope}'",
        "features",
        "name",
        2,
    ),
}


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
def test_a_lookup_probes_each_key_even_with_a_stale_generic_plan(lookup: Lookup) -> None:
    """PostgreSQL caches a generic plan for a prepared statement and keeps it while the table
    grows. Planned while jobs was small and had no statistics, ``slurm_job_id IN (…)`` walked
    every job of the cluster (2 ms a job start at 8,000 jobs); each lookup of the group commit
    must find each key by an index however stale its plan."""
    with _new_pg_database() as url, psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO configurations (id, name, cluster_client_id, grace_time, type)"
            " VALUES (1, 'site', 'cluster-a', 60, 'flexlm')"
        )
        conn.execute("INSERT INTO products (id, name) VALUES (1, 'ansys')")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        # The psycopg dialect by its URL: the dialect class's own __init__ is unannotated.
        psycopg_dialect = make_url("postgresql+psycopg://").get_dialect()()
        sql = str(lookup.statements["postgresql"].compile(dialect=psycopg_dialect))
        for number, (name, _) in enumerate(lookup.params, 1):
            sql = sql.replace(f"%({name})s", f"${number}")
        types = ", ".join(type_ for _, type_ in lookup.params)
        conn.execute(f"PREPARE probe({types}) AS {sql}")
        conn.execute(lookup.grow.format(prefix="small-", count=20))
        conn.execute(f"EXECUTE probe({lookup.small_args})")  # the plan is made now
        conn.execute(lookup.grow.format(prefix="grown-", count=5000))
        row = conn.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe({lookup.grown_args})"
        ).fetchone()
        assert row is not None
        [explained] = row[0]
        nodes = _plan_nodes(explained["Plan"])
        scans = [n for n in nodes if n.get("Relation Name") == lookup.table]
        assert scans, explained
        for scan in scans:
            assert lookup.key_column in scan.get("Index Cond", ""), scan
            assert scan.get("Rows Removed by Filter", 0) == 0, scan
            assert scan["Actual Rows"] * scan["Actual Loops"] <= 3, scan
        found = conn.execute(f"EXECUTE probe({lookup.grown_args})").fetchall()
        assert sum(None not in row for row in found) == lookup.found, found
