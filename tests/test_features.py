"""features.* through the dispatcher, on both backends."""

from typing import Any

import psycopg
import pytest

from tests import rpc_objects as make
from tests.conftest import Rpc, identity

AGENT_A = identity("feature:report", "feature:read", cluster="cluster-a")


async def _setup(rpc: Rpc) -> tuple[int, int, int]:
    """Products abaqus and ansys and a configuration of cluster-a: their ids."""
    abaqus = await make.product(rpc, "abaqus")
    ansys = await make.product(rpc, "ansys")
    config = await make.configuration(rpc)
    return abaqus, ansys, config["id"]


async def test_create_and_get(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    created = await make.feature(rpc, config, abaqus, "cfd")
    assert created == {
        "id": created["id"],
        "name": "cfd",
        "product": {"id": abaqus, "name": "abaqus"},
        "config_id": config,
        "reserved": 0,
        "total": 0,
        "used": 0,
        "booked_total": 0,
    }
    assert await rpc("features.get", {"id": created["id"]}) == created
    reserved = await make.feature(rpc, config, abaqus, "std", reserved=4)
    assert reserved["reserved"] == 4
    assert (await rpc("configurations.get", {"id": config}))["features"] == [created, reserved]


async def test_create_not_found(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    error = await rpc.error("features.create", {"name": "f", "product_id": 9, "config_id": config})
    assert (error.code, error.data) == (-32004, {"resource": "product", "id": 9})
    error = await rpc.error("features.create", {"name": "f", "product_id": abaqus, "config_id": 9})
    assert (error.code, error.data) == (-32004, {"resource": "configuration", "id": 9})
    assert await rpc("features.list") == []


async def test_duplicate_in_cluster_is_conflict(rpc: Rpc) -> None:
    abaqus, ansys, config = await _setup(rpc)
    second = (await make.configuration(rpc, name="second"))["id"]
    elsewhere = (await make.configuration(rpc, name="b", cluster="cluster-b"))["id"]
    await make.feature(rpc, config, abaqus, "cfd")
    error = await rpc.error(
        "features.create", {"name": "cfd", "product_id": abaqus, "config_id": second}
    )
    assert error.code == -32009
    assert error.data == {
        "reason": "a feature with this product and name exists in the cluster",
        "cluster_client_id": "cluster-a",
        "product_id": abaqus,
        "name": "cfd",
    }
    # Same name with another product, or in another cluster, is a different feature.
    assert (await make.feature(rpc, second, ansys, "cfd"))["product"]["name"] == "ansys"
    assert (await make.feature(rpc, elsewhere, abaqus, "cfd"))["config_id"] == elsewhere
    assert len(await rpc("features.list")) == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"product_id": 1, "config_id": 1}, "name"),
        ({"name": "f", "config_id": 1}, "product_id"),
        ({"name": "f", "product_id": 1}, "config_id"),
        ({"name": "", "product_id": 1, "config_id": 1}, "name"),
        ({"name": "f", "product_id": "1", "config_id": 1}, "product_id"),
        ({"name": "f", "product_id": 1, "config_id": 0}, "config_id"),
        ({"name": "f", "product_id": 1, "config_id": 1, "reserved": -1}, "reserved"),
        ({"name": "f", "product_id": 1, "config_id": 1, "reserved": 2**31}, "reserved"),
        ({"name": "f", "product_id": 1, "config_id": 1, "total": 5}, "total"),
    ],
)
async def test_create_bad_params(rpc: Rpc, params: dict[str, Any], field: str) -> None:
    await _setup(rpc)
    assert field in make.invalid_fields(await rpc.error("features.create", params))
    assert await rpc("features.list") == []


async def test_update(rpc: Rpc) -> None:
    abaqus, ansys, config = await _setup(rpc)
    feature = await make.feature(rpc, config, abaqus, "cfd")
    changed = await rpc(
        "features.update", {"id": feature["id"], "total": 10, "used": 2, "reserved": 1}
    )
    assert changed == {**feature, "total": 10, "used": 2, "reserved": 1}
    renamed = await rpc(
        "features.update", {"id": feature["id"], "name": "std", "product_id": ansys}
    )
    assert renamed == {**changed, "name": "std", "product": {"id": ansys, "name": "ansys"}}
    assert await rpc("features.get", {"id": feature["id"]}) == renamed


async def test_update_moves_to_another_cluster(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    elsewhere = (await make.configuration(rpc, name="b", cluster="cluster-b"))["id"]
    feature = await make.feature(rpc, config, abaqus, "cfd")
    moved = await rpc("features.update", {"id": feature["id"], "config_id": elsewhere})
    assert moved["config_id"] == elsewhere
    agent_b = identity("feature:read", cluster="cluster-b")
    assert await rpc("features.by_client_id", as_=agent_b) == [moved]
    assert await rpc("features.by_client_id", as_=AGENT_A) == []
    # Its old name is free in cluster-a now, and taken in cluster-b.
    back = await make.feature(rpc, config, abaqus, "cfd")
    error = await rpc.error("features.update", {"id": back["id"], "config_id": elsewhere})
    assert (error.code, error.data["cluster_client_id"]) == (-32009, "cluster-b")
    assert await rpc("features.get", {"id": back["id"]}) == back


async def test_update_errors(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    cfd = await make.feature(rpc, config, abaqus, "cfd")
    std = await make.feature(rpc, config, abaqus, "std")
    error = await rpc.error("features.update", {"id": std["id"], "name": "cfd"})
    assert error.code == -32009
    error = await rpc.error("features.update", {"id": 99, "total": 1})
    assert (error.code, error.data) == (-32004, {"resource": "feature", "id": 99})
    error = await rpc.error("features.update", {"id": cfd["id"], "product_id": 99})
    assert (error.code, error.data) == (-32004, {"resource": "product", "id": 99})
    error = await rpc.error("features.update", {"id": cfd["id"], "config_id": 99})
    assert (error.code, error.data) == (-32004, {"resource": "configuration", "id": 99})
    for params in (
        {"id": cfd["id"]},
        {"id": cfd["id"], "total": None},
        {"id": cfd["id"], "booked_total": 5},
        {"id": cfd["id"], "used": -1},
        {"id": cfd["id"], "total": 2**31},
        {"id": cfd["id"], "total": "5"},
        {"id": cfd["id"], "total": 1.5},
        {"total": 5},
    ):
        make.invalid_fields(await rpc.error("features.update", params))
    assert await rpc("features.list") == [cfd, std]


async def test_counter_updates_keep_bookings_and_steer_admission(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    feature = await make.feature(rpc, config, abaqus, "cfd")
    await rpc("features.update", {"id": feature["id"], "total": 5})
    booking = await make.booking(rpc, feature["id"], 3)
    lowered = await rpc("features.update", {"id": feature["id"], "total": 3})
    assert (lowered["total"], lowered["booked_total"]) == (3, 3)
    job = (await rpc("jobs.list"))[0]
    error = await rpc.error(
        "bookings.create", {"job_id": job["id"], "feature_id": feature["id"], "quantity": 1}
    )
    assert (error.code, error.data["available"]) == (-32010, 0)
    # used above what bookings left free is recorded, and the booking stays.
    over = await rpc("features.update", {"id": feature["id"], "used": 4})
    assert (over["used"], over["booked_total"]) == (4, 3)
    assert [b["id"] for b in await rpc("bookings.list")] == [booking]
    await rpc("features.update", {"id": feature["id"], "total": 10, "used": 0, "reserved": 1})
    more = await rpc(
        "bookings.create", {"job_id": job["id"], "feature_id": feature["id"], "quantity": 6}
    )
    assert more["quantity"] == 6
    assert (await rpc("features.get", {"id": feature["id"]}))["booked_total"] == 9


async def test_delete_cascades_bookings(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    cfd = await make.feature(rpc, config, abaqus, "cfd")
    std = await make.feature(rpc, config, abaqus, "std")
    for feature in (cfd, std):
        await rpc("features.update", {"id": feature["id"], "total": 5})
    gone = await make.booking(rpc, cfd["id"], 2, slurm_job_id="1")
    kept = await make.booking(rpc, std["id"], 1, slurm_job_id="2")
    assert await rpc("features.delete", {"id": cfd["id"]}) == {"deleted": cfd["id"]}
    error = await rpc.error("features.get", {"id": cfd["id"]})
    assert (error.code, error.data) == (-32004, {"resource": "feature", "id": cfd["id"]})
    assert (await rpc.error("bookings.get", {"id": gone})).code == -32004
    assert [b["id"] for b in await rpc("bookings.list")] == [kept]
    assert len(await rpc("jobs.list")) == 2  # the jobs stay
    assert [f["id"] for f in (await rpc("configurations.get", {"id": config}))["features"]] == [
        std["id"]
    ]
    error = await rpc.error("features.delete", {"id": cfd["id"]})
    assert (error.code, error.data) == (-32004, {"resource": "feature", "id": cfd["id"]})


async def test_list_search_sort_page(rpc: Rpc) -> None:
    abaqus, ansys, config = await _setup(rpc)
    second = (await make.configuration(rpc, name="second"))["id"]
    a = await make.feature(rpc, second, abaqus, "zulu", reserved=1)
    b = await make.feature(rpc, config, ansys, "alpha", reserved=3)
    c = await make.feature(rpc, config, abaqus, "mike", reserved=2)
    await rpc("features.update", {"id": a["id"], "total": 30, "used": 1})
    await rpc("features.update", {"id": b["id"], "total": 10, "used": 3})
    await rpc("features.update", {"id": c["id"], "total": 20, "used": 2})
    await make.booking(rpc, a["id"], 2, slurm_job_id="1")
    await make.booking(rpc, c["id"], 5, slurm_job_id="2")

    async def names(**params: Any) -> list[str]:
        return [f["name"] for f in await rpc("features.list", params)]

    assert await names() == ["zulu", "alpha", "mike"]
    assert await names(sort_field="name") == ["alpha", "mike", "zulu"]
    # Ties are broken by id, in the same direction.
    assert await names(sort_field="product_id", sort_ascending=False) == ["alpha", "mike", "zulu"]
    assert await names(sort_field="config_id") == ["alpha", "mike", "zulu"]
    assert await names(sort_field="total") == ["alpha", "mike", "zulu"]
    assert await names(sort_field="used") == ["zulu", "mike", "alpha"]
    assert await names(sort_field="reserved", sort_ascending=False) == ["alpha", "mike", "zulu"]
    assert await names(sort_field="booked_total") == ["alpha", "zulu", "mike"]
    assert await names(search="ANSYS") == ["alpha"]  # product name
    assert await names(search="zul mik") == ["zulu", "mike"]
    assert await names(search="abaqus") == ["zulu", "mike"]
    assert await names(sort_field="name", limit=1, offset=1) == ["mike"]
    assert await names(sort_field="name", offset=5) == []
    for bad in ({"sort_field": "product"}, {"limit": 0}, {"offset": "1"}, {"nope": 1}):
        make.invalid_fields(await rpc.error("features.list", bad))


async def test_by_client_id(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    elsewhere = (await make.configuration(rpc, name="b", cluster="cluster-b"))["id"]
    mine = await make.feature(rpc, config, abaqus, "cfd")
    await make.feature(rpc, elsewhere, abaqus, "cfd")
    assert await rpc("features.by_client_id", as_=AGENT_A) == [mine]
    no_cluster = identity("feature:read", cluster=None)
    assert (await rpc.error("features.by_client_id", as_=no_cluster)).code == -32011
    error = await rpc.error("features.by_client_id", as_=identity("config:read"))
    assert (error.code, error.data) == (-32003, {"required": "license-manager:feature:read"})


def _counters(product: str, feature: str, total: int, used: int) -> dict[str, Any]:
    return {"product_name": product, "feature_name": feature, "total": total, "used": used}


async def test_bulk_update(rpc: Rpc) -> None:
    abaqus, ansys, config = await _setup(rpc)
    elsewhere = (await make.configuration(rpc, name="b", cluster="cluster-b"))["id"]
    cfd = await make.feature(rpc, config, abaqus, "cfd")
    std = await make.feature(rpc, config, ansys, "std")
    theirs = await make.feature(rpc, elsewhere, abaqus, "cfd")
    result = await rpc(
        "features.bulk_update",
        {"features": [_counters("ansys", "std", 7, 1), _counters("abaqus", "cfd", 9, 4)]},
        as_=AGENT_A,
    )
    assert result == {"updated": 2}
    assert await rpc("features.get", {"id": cfd["id"]}) == {**cfd, "total": 9, "used": 4}
    assert await rpc("features.get", {"id": std["id"]}) == {**std, "total": 7, "used": 1}
    assert await rpc("features.get", {"id": theirs["id"]}) == theirs  # cluster-b's abaqus.cfd
    assert await rpc("features.bulk_update", {"features": []}, as_=AGENT_A) == {"updated": 0}


async def test_bulk_update_keeps_bookings(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    cfd = await make.feature(rpc, config, abaqus, "cfd")
    await rpc("features.update", {"id": cfd["id"], "total": 4})
    booking = await make.booking(rpc, cfd["id"], 4)
    update = {"features": [_counters("abaqus", "cfd", 2, 2)]}
    assert await rpc("features.bulk_update", update, as_=AGENT_A) == {"updated": 1}
    after = await rpc("features.get", {"id": cfd["id"]})
    assert (after["total"], after["used"], after["booked_total"]) == (2, 2, 4)
    assert [b["id"] for b in await rpc("bookings.list")] == [booking]


async def test_bulk_update_all_or_nothing(rpc: Rpc) -> None:
    abaqus, _, config = await _setup(rpc)
    elsewhere = (await make.configuration(rpc, name="b", cluster="cluster-b"))["id"]
    cfd = await make.feature(rpc, config, abaqus, "cfd")
    await make.feature(rpc, elsewhere, abaqus, "std")  # not cluster-a's
    error = await rpc.error(
        "features.bulk_update",
        {
            "features": [
                _counters("abaqus", "std", 1, 0),
                _counters("abaqus", "cfd", 5, 5),
                _counters("nosuch", "cfd", 1, 0),
            ]
        },
        as_=AGENT_A,
    )
    assert (error.code, error.data) == (-32004, {"missing": ["abaqus.std", "nosuch.cfd"]})
    assert await rpc("features.get", {"id": cfd["id"]}) == cfd


def _checkout(**fields: Any) -> dict[str, Any]:
    return {"username": "alice", "lead_host": "n1", "quantity": 1, **fields}


@pytest.mark.parametrize(
    "entries",
    [
        [{"product_name": "abaqus", "feature_name": "cfd", "total": 1}],
        [{**_counters("abaqus", "cfd", 1, 0), "reserved": 1}],
        [_counters("abaqus", "cfd", -1, 0)],
        [{**_counters("abaqus", "cfd", 1, 0), "used": "0"}],
        [_counters("", "cfd", 1, 0)],
        [_counters("abaqus", "cfd", 1, 0), _counters("abaqus", "cfd", 2, 0)],
        [_counters("abaqus", "cfd", 1, 0)] * 10_001,
        None,
        ["abaqus.cfd"],
        [{**_counters("abaqus", "cfd", 1, 0), "checkouts": {"username": "a"}}],
        [{**_counters("abaqus", "cfd", 1, 0), "checkouts": [_checkout(quantity=0)]}],
        [{**_counters("abaqus", "cfd", 1, 0), "checkouts": [_checkout(quantity="1")]}],
        [{**_counters("abaqus", "cfd", 1, 0), "checkouts": [{**_checkout(), "pid": 1}]}],
        [{**_counters("abaqus", "cfd", 1, 0), "checkouts": [_checkout(username="a\x1bb")]}],
    ],
)
async def test_bulk_update_bad_params(rpc: Rpc, entries: Any) -> None:
    abaqus, _, config = await _setup(rpc)
    cfd = await make.feature(rpc, config, abaqus, "cfd")
    make.invalid_fields(await rpc.error("features.bulk_update", {"features": entries}, as_=AGENT_A))
    assert await rpc("features.get", {"id": cfd["id"]}) == cfd


async def test_bulk_update_needs_cluster_and_permission(rpc: Rpc) -> None:
    update: dict[str, Any] = {"features": []}
    error = await rpc.error(
        "features.bulk_update", update, as_=identity("feature:report", cluster=None)
    )
    assert error.code == -32011
    error = await rpc.error("features.bulk_update", update, as_=identity("feature:read"))
    assert (error.code, error.data) == (-32003, {"required": "license-manager:feature:report"})
    assert "features" in make.invalid_fields(
        await rpc.error("features.bulk_update", {}, as_=AGENT_A)
    )


async def test_bulk_update_ten_thousand(rpc: Rpc) -> None:
    """The largest report: more pairs than one resolving query takes (chunked)."""
    abaqus = await make.product(rpc, "abaqus")
    names = [f"f{i:05}" for i in range(10_000)]
    await make.configuration(rpc, features=[{"name": name, "product_id": abaqus} for name in names])
    entries = [_counters("abaqus", name, i, i // 2) for i, name in enumerate(names)]
    result = await rpc("features.bulk_update", {"features": entries}, as_=AGENT_A)
    assert result == {"updated": 10_000}
    stored = await rpc("features.by_client_id", as_=AGENT_A)
    assert [(f["name"], f["total"], f["used"]) for f in stored] == [
        (name, i, i // 2) for i, name in enumerate(names)
    ]
    entries[-1] = _counters("abaqus", "absent", 1, 1)
    error = await rpc.error("features.bulk_update", {"features": entries}, as_=AGENT_A)
    assert error.data == {"missing": ["abaqus.absent"]}
    assert (await rpc("features.by_client_id", as_=AGENT_A))[0]["total"] == 0


async def test_reports_rewrite_counters_without_touching_indexes(
    rpc: Rpc, database_url: str
) -> None:
    """Reports rewrite total and used of many features. On PostgreSQL each new row version
    fits on its page (migration 0004's fillfactor), so the updates are HOT and the
    features' indexes do not grow; at the default fillfactor one report of 300 features
    grows them by 4 pages. The index is measured over the first report only: its versions
    fit in the pages' free room, while later ones need the old versions pruned, which a
    concurrent snapshot (autovacuum's ANALYZE of this database) may put off for a moment."""
    abaqus, _, _ = await _setup(rpc)
    names = [f"f{i}" for i in range(300)]
    await make.configuration(
        rpc, name="many", features=[{"name": name, "product_id": abaqus} for name in names]
    )

    def index_pages() -> int:
        if not database_url.startswith("postgresql"):
            return 0  # SQLite rewrites rows in place
        with psycopg.connect(database_url) as conn:
            query = (
                "SELECT sum(pg_relation_size(indexrelid)) FROM pg_index "
                "WHERE indrelid = 'features'::regclass"
            )
            return int(conn.execute(query).fetchone()[0])  # type: ignore[index]

    before = index_pages()
    for used in (1, 2, 3):
        entries = [
            {"product_name": "abaqus", "feature_name": name, "total": 10, "used": used}
            for name in names
        ]
        assert await rpc("features.bulk_update", {"features": entries}, as_=AGENT_A) == {
            "updated": 300
        }
        if used == 1:
            assert index_pages() == before
    reported = await rpc("features.by_client_id", as_=AGENT_A)
    assert {(f["name"], f["total"], f["used"]) for f in reported} == {(n, 10, 3) for n in names}
