"""Checkouts, usage history and refused demand through the dispatcher, on both backends,
with the usage clock in the test's hand (no sleeps)."""

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.supervisor import Supervisor
from storage.facade import Storage
from storage.series import Sample, points
from tests import rpc_objects as make
from tests.conftest import Rpc, identity

AGENT_A = identity("feature:report", "feature:read", cluster="cluster-a")
READER = identity("feature:read", cluster=None)
START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


class Clock:
    """The usage history's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def actors(
    storage: Storage, nursery: trio.Nursery, clock: Clock
) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor(storage, clock=clock)
    await nursery.start(supervisor.run)
    yield supervisor
    await supervisor.close()


@pytest.fixture
def usage(storage: Storage, actors: Supervisor) -> Rpc:
    return Rpc(storage, actors)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def report(product: str, feature: str, total: int, used: int, **extra: Any) -> dict[str, Any]:
    return {"product_name": product, "feature_name": feature, "total": total, "used": used, **extra}


async def _feature(rpc: Rpc, total: int = 10, reserved: int = 0) -> dict[str, Any]:
    abaqus = await make.product(rpc, "abaqus")
    config = await make.configuration(rpc)
    feature = await make.feature(rpc, config["id"], abaqus, "cfd", reserved=reserved)
    await rpc("features.update", {"id": feature["id"], "total": total})
    return feature


def checkout(username: str, quantity: int, host: str = "n1") -> dict[str, Any]:
    return {"username": username, "lead_host": host, "quantity": quantity}


# -- checkouts -------------------------------------------------------------------------


async def test_checkouts_replaced_by_reports_that_carry_them(usage: Rpc, clock: Clock) -> None:
    feature = await _feature(usage)
    sets = [checkout("alice", 2), checkout("bob", 1, "n2"), checkout("alice", 1, "n3")]
    await usage(
        "features.bulk_update", {"features": [report("abaqus", "cfd", 10, 4, checkouts=sets)]},
        as_=AGENT_A,
    )  # fmt: skip
    got = await usage("features.checkouts", {"feature_id": feature["id"]})
    assert got == [{**entry, "reported_at": stamp(START)} for entry in sets]
    assert await usage("usage.by_user") == [
        {"username": "alice", "product_feature": "abaqus.cfd", "quantity": 3},
        {"username": "bob", "product_feature": "abaqus.cfd", "quantity": 1},
    ]
    # A report without checkouts leaves the set; an empty list clears it.
    clock.advance(minutes=1)
    await usage("features.bulk_update", {"features": [report("abaqus", "cfd", 10, 4)]}, as_=AGENT_A)
    assert len(await usage("features.checkouts", {"feature_id": feature["id"]})) == 3
    await usage(
        "features.bulk_update", {"features": [report("abaqus", "cfd", 10, 4, checkouts=[])]},
        as_=AGENT_A,
    )  # fmt: skip
    assert await usage("features.checkouts", {"feature_id": feature["id"]}) == []
    assert await usage("usage.by_user") == []


async def test_one_report_replaces_the_sets_of_several_features(usage: Rpc, clock: Clock) -> None:
    """The sets of a report's features are written together (one statement on each
    backend): each feature keeps its own set in the reported order, the next report's
    sets replace them whole, and features the report leaves out keep theirs."""
    cfd = await _feature(usage)
    config = await make.configuration(usage, name="second")
    abaqus = await make.product(usage, "abaqus2")
    std = await make.feature(usage, config["id"], abaqus, "std")
    kept = await make.feature(usage, config["id"], abaqus, "kept")
    first = {
        "cfd": [checkout("carol", 1), checkout("alice", 2, "n2")],
        "std": [checkout("bob", 3, "n3"), checkout("alice", 1), checkout("dave", 1, "n4")],
        "kept": [checkout("erin", 1)],
    }
    entries = [
        report("abaqus", "cfd", 10, 3, checkouts=first["cfd"]),
        report("abaqus2", "std", 10, 5, checkouts=first["std"]),
        report("abaqus2", "kept", 10, 1, checkouts=first["kept"]),
    ]

    async def held(feature: dict[str, Any]) -> Any:
        return await usage("features.checkouts", {"feature_id": feature["id"]})

    await usage("features.bulk_update", {"features": entries}, as_=AGENT_A)
    for feature in (cfd, std, kept):
        reported = first[feature["name"]]
        assert await held(feature) == [{**entry, "reported_at": stamp(START)} for entry in reported]
    clock.advance(minutes=1)
    second = [checkout("zoe", 2, "n9")]
    entries = [
        report("abaqus2", "std", 10, 2, checkouts=second),
        report("abaqus", "cfd", 10, 0, checkouts=[]),
    ]
    await usage("features.bulk_update", {"features": entries}, as_=AGENT_A)
    later = stamp(START + timedelta(minutes=1))
    assert await held(std) == [{**entry, "reported_at": later} for entry in second]
    assert await held(cfd) == []
    assert await held(kept) == [{**entry, "reported_at": stamp(START)} for entry in first["kept"]]


async def test_by_user_of_one_cluster_and_checkouts_errors(usage: Rpc) -> None:
    feature = await _feature(usage)
    config_b = await make.configuration(usage, name="b", cluster="cluster-b")
    product = (await usage("products.list"))[0]["id"]
    await make.feature(usage, config_b["id"], product, "cfd")
    agent_b = identity("feature:report", cluster="cluster-b")
    one = {"features": [report("abaqus", "cfd", 5, 1, checkouts=[checkout("carol", 1)])]}
    await usage("features.bulk_update", one, as_=AGENT_A)
    await usage("features.bulk_update", one, as_=agent_b)
    assert await usage("usage.by_user", {"cluster_client_id": "cluster-b"}) == [
        {"username": "carol", "product_feature": "abaqus.cfd", "quantity": 1}
    ]
    assert (await usage("usage.by_user"))[0]["quantity"] == 2  # summed over both clusters
    error = await usage.error("features.checkouts", {"feature_id": feature["id"] + 99})
    assert error.code == -32004
    bad = {"features": [report("abaqus", "cfd", 5, 1, checkouts=[checkout("x", 0)])]}
    assert (await usage.error("features.bulk_update", bad, as_=AGENT_A)).code == -32602


# -- history ---------------------------------------------------------------------------


async def test_history_samples_reports_and_bookings(usage: Rpc, clock: Clock) -> None:
    feature = await _feature(usage, total=10, reserved=1)
    await usage("features.bulk_update", {"features": [report("abaqus", "cfd", 10, 2)]}, as_=AGENT_A)
    clock.advance(seconds=20)  # same minute: the bucket keeps the last values, the peak
    await usage("features.bulk_update", {"features": [report("abaqus", "cfd", 10, 5)]}, as_=AGENT_A)
    clock.advance(seconds=20)
    await usage("features.bulk_update", {"features": [report("abaqus", "cfd", 10, 3)]}, as_=AGENT_A)
    clock.advance(minutes=2)  # a booking between reports moves the booked line
    await make.booking(usage, feature["id"], 4)
    params = {
        "feature_id": feature["id"],
        "since": stamp(START),
        "until": stamp(START + timedelta(minutes=4)),
        "step": 60,
    }
    series = await usage("usage.history", params)
    assert series == [
        {"t": stamp(START), "total": 10, "used": 3, "reserved": 1, "booked": 0, "peak_used": 5},
        {"t": "2026-12-01T00:01:00Z", "total": 10, "used": 3, "reserved": 1, "booked": 0,
         "peak_used": 3},
        {"t": "2026-12-01T00:02:00Z", "total": 10, "used": 3, "reserved": 1, "booked": 4,
         "peak_used": 3},
        {"t": "2026-12-01T00:03:00Z", "total": 10, "used": 3, "reserved": 1, "booked": 4,
         "peak_used": 3},
    ]  # fmt: skip
    by_name = {**params, "product_feature": "abaqus.cfd"}
    del by_name["feature_id"]
    assert await usage("usage.history", by_name, as_=AGENT_A) == series
    before = {**params, "since": stamp(START - timedelta(minutes=1)), "step": 120}
    points = await usage("usage.history", before)
    assert [p["t"] for p in points] == ["2026-11-30T23:58:00Z", "2026-12-01T00:00:00Z",
                                        "2026-12-01T00:02:00Z"]  # fmt: skip
    assert points[0]["used"] is None and points[1]["peak_used"] == 5


async def test_history_rolls_up_to_hours(usage: Rpc, actors: Supervisor, clock: Clock) -> None:
    feature = await _feature(usage)
    used = [9, 3, 1, 4]
    for value in used:  # one report per 20 minutes, hours 0 and 1
        await usage(
            "features.bulk_update", {"features": [report("abaqus", "cfd", 10, value)]}, as_=AGENT_A
        )
        clock.advance(minutes=40)
    hours = {
        "feature_id": feature["id"],
        "since": stamp(START),
        "until": stamp(START + timedelta(hours=3)),
        "step": 3600,
    }
    minutes = {**hours, "step": 60}
    fresh, fresh_minutes = (
        await usage("usage.history", hours),
        await usage("usage.history", minutes),
    )
    await actors.roll_up()  # packs hours 0 and 1; hour 2 is not complete
    assert await usage("usage.history", minutes) == fresh_minutes
    assert await usage("usage.history", hours) == fresh
    assert await _count(actors, "SELECT count(*) FROM usage_samples") == 1
    clock.advance(days=3)  # past the minutes' keep
    await actors.roll_up()
    assert await usage("usage.history", hours) == fresh
    assert [(p["used"], p["peak_used"]) for p in fresh] == [(3, 9), (1, 1), (4, 4)]
    assert await _count(actors, "SELECT count(*) FROM usage_samples") == 0
    assert await _count(actors, "SELECT count(*) FROM usage_blocks WHERE step = 60") == 0
    assert await _count(actors, "SELECT count(*) FROM usage_blocks WHERE step = 3600") == 1


async def _count(actors: Supervisor, sql: str) -> int:
    count: int = await actors.storage.read(lambda conn: conn.exec_driver_sql(sql).scalar_one())
    return count


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-12-01T00:00:00Z", "until": "2026-12-01T01:00:00Z"}, "exactly one"),
        ({"feature_id": 1, "since": "yesterday", "until": "2026-12-01T01:00:00Z"}, "since"),
        ({"feature_id": 1, "since": 5, "until": "2026-12-01T01:00:00Z"}, "since"),
        ({"feature_id": 1, "since": "2026-12-01T00:00:00", "until": "2026-12-01T01:00:00Z"},
         "since"),
        ({"feature_id": 1, "since": "2026-12-01T02:00:00Z", "until": "2026-12-01T01:00:00Z"},
         "later"),
        ({"feature_id": 1, "since": "0001-01-01T00:00:00Z", "until": "2026-12-01T01:00:00Z"},
         "1970"),
        ({"feature_id": 1, "since": "2026-12-01T00:00:00+14:00", "until": "9999-12-31T23:59:59Z"},
         "2200"),
        ({"feature_id": 1, "since": "2020-12-01T00:00:00Z", "until": "2026-12-01T01:00:00Z",
          "step": 1}, "points"),
    ],
)  # fmt: skip
async def test_history_bad_params(usage: Rpc, params: dict[str, Any], message: str) -> None:
    error = await usage.error("usage.history", params)
    assert error.code == -32602
    assert message in str(error.data)


async def test_history_unknown_feature_and_no_cluster(usage: Rpc) -> None:
    interval = {"since": "2026-12-01T00:00:00Z", "until": "2026-12-01T01:00:00Z"}
    error = await usage.error("usage.history", {**interval, "feature_id": 7})
    assert (error.code, error.data) == (-32004, {"resource": "feature", "id": 7})
    error = await usage.error("usage.history", {**interval, "product_feature": "a.b"}, as_=AGENT_A)
    assert (error.code, error.data) == (-32004, {"missing": ["a.b"]})
    error = await usage.error("usage.history", {**interval, "product_feature": "a.b"}, as_=READER)
    assert error.code == -32011


# -- refusals --------------------------------------------------------------------------


async def _short_feature(rpc: Rpc, total: int, asked: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A feature of ``total`` licenses and the params of a booking of ``asked`` of it."""
    feature = await _feature(rpc, total=total)
    job = await rpc("jobs.create", {"slurm_job_id": "1", "username": "a", "lead_host": "n"})
    return feature, {"job_id": job["id"], "feature_id": feature["id"], "quantity": asked}


async def test_refusals_counted_per_feature_and_hour(
    usage: Rpc, actors: Supervisor, clock: Clock
) -> None:
    feature, booking = await _short_feature(usage, total=2, asked=3)
    assert (await usage.error("bookings.create", booking)).code == -32010
    clock.advance(minutes=30)
    wanted = {"slurm_job_id": "2", "username": "a", "lead_host": "n",
              "bookings": [{"product_feature": "abaqus.cfd", "quantity": 5}]}  # fmt: skip
    assert (await usage.error("jobs.create", wanted)).code == -32010
    clock.advance(hours=1)
    assert (await usage.error("bookings.create", booking)).code == -32010
    interval = {"since": stamp(START), "until": stamp(START + timedelta(hours=3))}
    row = {"feature_id": feature["id"], "product_feature": "abaqus.cfd"}
    assert await usage("usage.refusals", interval) == [
        {"t": stamp(START), **row, "refused_calls": 2, "refused_licenses": 8},
        {"t": "2026-12-01T01:00:00Z", **row, "refused_calls": 1, "refused_licenses": 3},
    ]
    assert await usage("usage.refusals", {**interval, "step": 7200}) == [
        {"t": stamp(START), **row, "refused_calls": 3, "refused_licenses": 11},
    ]
    assert actors.refusals.licenses == {("cluster-a", "abaqus", "cfd"): 11}
    assert actors.refused == 3
    later = {"since": stamp(START + timedelta(hours=2)), "until": stamp(START + timedelta(hours=3))}
    assert await usage("usage.refusals", {**later, "feature_id": feature["id"]}) == []
    error = await usage.error("usage.refusals", {**interval, "step": 60})
    assert error.code == -32602


async def test_concurrent_refusals_are_all_counted_in_one_flush(
    usage: Rpc, actors: Supervisor
) -> None:
    _, booking = await _short_feature(usage, total=1, asked=2)
    codes: list[int] = []

    async def refused() -> None:
        codes.append((await usage.error("bookings.create", booking)).code)

    async with trio.open_nursery() as nursery:
        for _ in range(40):
            nursery.start_soon(refused)
    assert codes == [-32010] * 40
    await actors.flush_refusals()
    assert await _count(actors, "SELECT refused_calls FROM usage_refusals") == 40
    assert await _count(actors, "SELECT refused_licenses FROM usage_refusals") == 80


async def test_refusals_of_a_deleted_feature_are_dropped_at_flush(
    usage: Rpc, actors: Supervisor
) -> None:
    feature, booking = await _short_feature(usage, total=1, asked=2)
    assert (await usage.error("bookings.create", booking)).code == -32010
    await usage("features.delete", {"id": feature["id"]})
    await actors.flush_refusals()
    assert actors.refusals.pending == {}
    assert await _count(actors, "SELECT count(*) FROM usage_refusals") == 0


def test_history_through_reports_and_roll_ups_matches_the_model(database_url: str) -> None:
    """Reports at random minutes and roll-ups at random moments (then one past the minutes'
    keep): the hourly series read back is what the pure model computes from the reports."""
    examples = itertools.count()

    @settings(
        max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        reports=st.lists(
            st.tuples(st.integers(0, 5 * 60), st.integers(0, 100)),
            min_size=1, max_size=25, unique_by=lambda report: report[0],
        ),
        roll_ups=st.lists(st.integers(0, 6 * 60), max_size=3),
        step=st.sampled_from([3600, 7200]),
    )  # fmt: skip
    def check(reports: list[tuple[int, int]], roll_ups: list[int], step: int) -> None:
        trio.run(_history_example, database_url, next(examples), reports, roll_ups, step)

    check()


async def _history_example(
    url: str, number: int, reports: list[tuple[int, int]], roll_ups: list[int], step: int
) -> None:
    clock = Clock()
    base = START + timedelta(days=10 * number)
    storage = Storage(url)
    try:
        actors = Supervisor(storage, clock=clock)
        rpc = Rpc(storage, actors)
        cluster = f"cluster-{number}"
        product = await make.product(rpc, f"p{number}")
        config = await make.configuration(rpc, cluster=cluster)
        feature = await make.feature(rpc, config["id"], product, "f")
        agent = identity("feature:report", cluster=cluster)
        events = sorted([(m, 0, used) for m, used in reports] + [(m, 1, 0) for m in roll_ups])
        for minute, is_roll_up, used in events:
            clock.now = base + timedelta(minutes=minute)
            if is_roll_up:
                await actors.roll_up()
            else:
                counters = {"features": [report(f"p{number}", "f", 100, used)]}
                await rpc("features.bulk_update", counters, as_=agent)
        clock.now = base + timedelta(days=3)
        await actors.roll_up()
        since, until = base, base + timedelta(hours=6)
        params = {"feature_id": feature["id"], "since": stamp(since), "until": stamp(until)}
        got = await rpc("usage.history", {**params, "step": step})
        raw = [
            Sample(int((base + timedelta(minutes=m)).timestamp()) // 60 * 60, 60, 100, u, 0, 0, u)
            for m, u in sorted(reports)
        ]
        expected = points(raw, None, int(since.timestamp()), int(until.timestamp()), step)
        assert [{**p, "t": stamp(datetime.fromtimestamp(p["t"], UTC))} for p in expected] == got
    finally:
        await storage.close()


async def test_roll_up_packs_every_feature_a_chunk_at_a_time(
    usage: Rpc, actors: Supervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = await make.product(usage, "abaqus")
    config = await make.configuration(usage)
    names = ["a", "b", "c"]
    for name in names:
        await make.feature(usage, config["id"], product, name)
    reports = [report("abaqus", name, 10, used) for used, name in enumerate(names)]
    await usage("features.bulk_update", {"features": reports}, as_=AGENT_A)
    writes: list[int] = []
    write = actors.storage.write
    monkeypatch.setattr("actors.supervisor.ROLL_UP_CHUNK", 2)

    async def counted(fn: Any) -> Any:
        writes.append(1)
        return await write(fn)

    monkeypatch.setattr(actors.storage, "write", counted)
    clock.advance(hours=1)
    await actors.roll_up()
    assert len(writes) == 3  # features 1-2, feature 3, then the expired blocks
    assert await _count(actors, "SELECT count(*) FROM usage_samples") == 0
    assert await _count(actors, "SELECT count(*) FROM usage_blocks WHERE step = 60") == 3
    assert await _count(actors, "SELECT count(*) FROM usage_blocks WHERE step = 3600") == 3
