"""configurations.* through the dispatcher, on both backends."""

from typing import Any

import pytest

from tests import rpc_objects as make
from tests.conftest import Rpc, identity

SERVER = {"host": "lic1.example.org", "port": 27000}


async def test_create_and_get(rpc: Rpc) -> None:
    abaqus = await make.product(rpc, "abaqus")
    created = await rpc(
        "configurations.create",
        {
            "name": "abaqus licenses",
            "cluster_client_id": "cluster-a",
            "type": "rlm",
            "license_servers": [SERVER, {"host": "10.0.0.2", "port": 5053}],
            "features": [
                {"name": "cfd", "product_id": abaqus},
                {"name": "std", "product_id": abaqus, "reserved": 3},
            ],
        },
    )
    id_ = created["id"]
    assert created["name"] == "abaqus licenses"
    assert created["cluster_client_id"] == "cluster-a"
    assert created["type"] == "rlm"
    assert created["grace_time"] == 60
    assert [(s["config_id"], s["host"], s["port"]) for s in created["license_servers"]] == [
        (id_, "lic1.example.org", 27000),
        (id_, "10.0.0.2", 5053),
    ]
    product = {"id": abaqus, "name": "abaqus"}
    assert [{k: v for k, v in f.items() if k != "id"} for f in created["features"]] == [
        {"name": "cfd", "product": product, "config_id": id_, "reserved": 0}
        | {"total": 0, "used": 0, "booked_total": 0},
        {"name": "std", "product": product, "config_id": id_, "reserved": 3}
        | {"total": 0, "used": 0, "booked_total": 0},
    ]
    assert await rpc("configurations.get", {"id": id_}) == created
    other = await make.configuration(rpc, name="other", grace_time=3600)
    assert other["grace_time"] == 3600
    assert other["features"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"license_servers": []}, "license_servers"),
        ({"license_servers": None}, "license_servers"),
        ({"type": "lm"}, "type"),
        ({"type": None}, "type"),
        ({"grace_time": 0}, "grace_time"),
        ({"grace_time": "60"}, "grace_time"),
        ({"grace_time": 2**31}, "grace_time"),
        ({"name": ""}, "name"),
        ({"cluster_client_id": "x" * 256}, "cluster_client_id"),
        ({"license_servers": [{"host": "h"}]}, "license_servers.0.port"),
        ({"license_servers": [{"host": "h", "port": 1, "id": 1}]}, "license_servers.0.id"),
        ({"features": [{"name": "f"}]}, "features.0.product_id"),
        ({"features": [{"name": "f", "product_id": 1, "reserved": -1}]}, "features.0.reserved"),
        ({"features": [{"name": "f", "product_id": 1, "total": 5}]}, "features.0.total"),
        ({"id": 5}, "id"),
        ({"extra": True}, "extra"),
    ],
)
async def test_create_bad_params(rpc: Rpc, change: dict[str, Any], field: str) -> None:
    params = {"name": "c", "cluster_client_id": "cluster-a", "type": "flexlm"}
    params["license_servers"] = [SERVER]  # type: ignore[assignment]
    error = await rpc.error("configurations.create", {**params, **change})
    assert field in make.invalid_fields(error)
    assert await rpc("configurations.list") == []


async def test_create_missing_params(rpc: Rpc) -> None:
    fields = make.invalid_fields(await rpc.error("configurations.create", {}))
    assert sorted(fields) == ["cluster_client_id", "license_servers", "name", "type"]


async def test_create_with_unknown_product_stores_nothing(rpc: Rpc) -> None:
    abaqus = await make.product(rpc)
    error = await rpc.error(
        "configurations.create",
        {
            "name": "c",
            "cluster_client_id": "cluster-a",
            "type": "flexlm",
            "license_servers": [SERVER],
            "features": [{"name": "a", "product_id": abaqus}, {"name": "b", "product_id": 77}],
        },
    )
    assert (error.code, error.data) == (-32004, {"resource": "product", "id": 77})
    assert await rpc("configurations.list") == []
    assert await rpc("license_servers.list") == []


async def test_duplicate_feature_in_cluster_is_conflict(rpc: Rpc) -> None:
    abaqus = await make.product(rpc)
    cfd = {"name": "cfd", "product_id": abaqus}
    error = await rpc.error(
        "configurations.create",
        {
            "name": "c",
            "cluster_client_id": "cluster-a",
            "type": "flexlm",
            "license_servers": [SERVER],
            "features": [cfd, cfd],
        },
    )
    assert error.code == -32009
    assert error.data["cluster_client_id"] == "cluster-a"
    assert await rpc("configurations.list") == []
    await make.configuration(rpc, name="first", features=[cfd])
    error = await rpc.error(
        "configurations.create",
        {
            "name": "second",
            "cluster_client_id": "cluster-a",
            "type": "flexlm",
            "license_servers": [SERVER],
            "features": [cfd],
        },
    )
    assert error.code == -32009
    assert [c["name"] for c in await rpc("configurations.list")] == ["first"]
    # Another cluster may have the same product.feature.
    other = await make.configuration(rpc, name="other", cluster="cluster-b", features=[cfd])
    assert other["features"][0]["name"] == "cfd"


async def test_not_found(rpc: Rpc) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("configurations.get", {"id": 42}),
        ("configurations.update", {"id": 42, "name": "x"}),
        ("configurations.delete", {"id": 42}),
    ]
    for method, params in calls:
        error = await rpc.error(method, params)
        assert (error.code, error.data) == (-32004, {"resource": "configuration", "id": 42})


async def test_list_search_sort_page(rpc: Rpc) -> None:
    abaqus = await make.product(rpc)
    await make.configuration(rpc, name="zeta", cluster="site-b", type="rlm", grace_time=10)
    await make.configuration(
        rpc,
        name="alpha",
        cluster="site-a",
        type="dsls",
        grace_time=30,
        features=[{"name": "cfd", "product_id": abaqus}],
        servers=[SERVER, {"host": "lic2", "port": 2}],
    )
    await make.configuration(rpc, name="mid", cluster="other", type="lmx", grace_time=20)
    listed = await rpc("configurations.list")
    assert [c["name"] for c in listed] == ["zeta", "alpha", "mid"]
    assert [len(c["features"]) for c in listed] == [0, 1, 0]
    assert [len(c["license_servers"]) for c in listed] == [1, 2, 1]
    assert all(s["config_id"] == c["id"] for c in listed for s in c["license_servers"])

    async def names(**params: Any) -> list[str]:
        return [c["name"] for c in await rpc("configurations.list", params)]

    assert await names(sort_field="name") == ["alpha", "mid", "zeta"]
    assert await names(sort_field="cluster_client_id") == ["mid", "alpha", "zeta"]
    assert await names(sort_field="type") == ["alpha", "mid", "zeta"]
    assert await names(sort_field="grace_time", sort_ascending=False) == ["alpha", "mid", "zeta"]
    assert await names(search="SITE") == ["zeta", "alpha"]
    assert await names(search="mid zeta") == ["zeta", "mid"]
    assert await names(search="nothing") == []
    assert await names(sort_field="name", limit=2) == ["alpha", "mid"]
    assert await names(sort_field="name", limit=2, offset=2) == ["zeta"]
    for bad in ({"sort_field": "features"}, {"limit": 10_001}, {"offset": -1}, {"search": 1}):
        make.invalid_fields(await rpc.error("configurations.list", bad))


async def test_update_fields(rpc: Rpc) -> None:
    config = await make.configuration(rpc)
    id_ = config["id"]
    changed = await rpc(
        "configurations.update", {"id": id_, "name": "renamed", "type": "olicense", "grace_time": 5}
    )
    assert changed == {**config, "name": "renamed", "type": "olicense", "grace_time": 5}
    assert await rpc("configurations.get", {"id": id_}) == changed


@pytest.mark.parametrize(
    "params",
    [
        {"id": 1},
        {"id": 1, "name": None},
        {"id": 1, "grace_time": 0},
        {"id": 1, "type": "other"},
        {"id": 1, "unknown": 1},
        {"id": 1, "features": None},
        {"id": 1, "license_servers": [{"id": 1, "host": None}]},
        {"id": 1, "license_servers": [{"host": "h"}]},
        {"id": 1, "features": [{"name": "x"}]},
        {"id": 1, "features": [{"id": 1}, {"id": 1, "reserved": 2}]},
        {"id": 1, "features": [{"id": 1, "total": 2}]},
        {"name": "x"},
    ],
)
async def test_update_bad_params(rpc: Rpc, params: dict[str, Any]) -> None:
    abaqus = await make.product(rpc)
    config = await make.configuration(rpc, features=[{"name": "cfd", "product_id": abaqus}])
    make.invalid_fields(await rpc.error("configurations.update", params))
    assert await rpc("configurations.get", {"id": config["id"]}) == config


async def test_update_children(rpc: Rpc) -> None:
    abaqus = await make.product(rpc, "abaqus")
    ansys = await make.product(rpc, "ansys")
    config = await make.configuration(
        rpc,
        features=[
            {"name": "keep", "product_id": abaqus},
            {"name": "change", "product_id": abaqus},
            {"name": "drop", "product_id": abaqus},
        ],
        servers=[SERVER, {"host": "drop.example", "port": 1}],
    )
    keep, change, _drop = config["features"]
    kept_server, dropped_server = config["license_servers"]
    await rpc("features.update", {"id": keep["id"], "total": 7})
    updated = await rpc(
        "configurations.update",
        {
            "id": config["id"],
            "license_servers": [
                {"id": kept_server["id"], "port": 27001},
                {"host": "new", "port": 9},
            ],
            "features": [
                {"id": keep["id"]},
                {"id": change["id"], "name": "changed", "product_id": ansys, "reserved": 2},
                {"name": "new", "product_id": ansys},
            ],
        },
    )
    servers = updated["license_servers"]
    assert [(s["host"], s["port"]) for s in servers] == [
        ("lic1.example.org", 27001),
        ("new", 9),
    ]
    assert servers[0]["id"] == kept_server["id"]
    features = {f["name"]: f for f in updated["features"]}
    assert sorted(features) == ["changed", "keep", "new"]
    assert features["keep"] == {**keep, "total": 7}
    assert features["changed"]["id"] == change["id"]
    assert features["changed"]["product"] == {"id": ansys, "name": "ansys"}
    assert features["changed"]["reserved"] == 2
    assert features["new"]["config_id"] == config["id"]
    # Dropped children are gone (by name: SQLite may give a new child a freed id).
    assert sorted(f["name"] for f in await rpc("features.list")) == ["changed", "keep", "new"]
    hosts = [s["host"] for s in await rpc("license_servers.list")]
    assert hosts == ["lic1.example.org", "new"]
    assert dropped_server["host"] not in hosts
    assert await rpc("configurations.get", {"id": config["id"]}) == updated
    # The new feature is in the cluster: a duplicate of it is refused.
    error = await rpc.error(
        "features.create", {"name": "new", "product_id": ansys, "config_id": config["id"]}
    )
    assert error.code == -32009


async def test_update_empty_server_list_is_conflict(rpc: Rpc) -> None:
    config = await make.configuration(rpc)
    error = await rpc.error(
        "configurations.update", {"id": config["id"], "name": "x", "license_servers": []}
    )
    assert error.code == -32009
    assert error.data == {
        "reason": "a configuration keeps at least one license server",
        "config_id": config["id"],
    }
    assert await rpc("configurations.get", {"id": config["id"]}) == config


async def test_update_children_of_another_configuration(rpc: Rpc) -> None:
    abaqus = await make.product(rpc)
    mine = await make.configuration(
        rpc, name="mine", features=[{"name": "a", "product_id": abaqus}]
    )
    theirs = await make.configuration(
        rpc, name="theirs", features=[{"name": "b", "product_id": abaqus}]
    )
    foreign_server = theirs["license_servers"][0]["id"]
    error = await rpc.error(
        "configurations.update",
        {"id": mine["id"], "name": "x", "license_servers": [{"id": foreign_server, "port": 5}]},
    )
    assert (error.code, error.data) == (
        -32004,
        {"resource": "license_server", "id": foreign_server},
    )
    foreign_feature = theirs["features"][0]["id"]
    error = await rpc.error(
        "configurations.update", {"id": mine["id"], "features": [{"id": foreign_feature}]}
    )
    assert (error.code, error.data) == (-32004, {"resource": "feature", "id": foreign_feature})
    error = await rpc.error(
        "configurations.update",
        {"id": mine["id"], "features": [{"name": "c", "product_id": 999}]},
    )
    assert (error.code, error.data) == (-32004, {"resource": "product", "id": 999})
    error = await rpc.error(
        "configurations.update",
        {"id": mine["id"], "features": [{"id": mine["features"][0]["id"], "product_id": 999}]},
    )
    assert (error.code, error.data) == (-32004, {"resource": "product", "id": 999})
    assert await rpc("configurations.get", {"id": mine["id"]}) == mine
    assert await rpc("configurations.get", {"id": theirs["id"]}) == theirs


async def test_update_cluster_moves_features(rpc: Rpc) -> None:
    abaqus = await make.product(rpc)
    config = await make.configuration(rpc, features=[{"name": "cfd", "product_id": abaqus}])
    a = identity("feature:read", cluster="cluster-a")
    b = identity("feature:read", cluster="cluster-b")
    assert len(await rpc("features.by_client_id", as_=a)) == 1
    moved = await rpc(
        "configurations.update", {"id": config["id"], "cluster_client_id": "cluster-b"}
    )
    assert moved["cluster_client_id"] == "cluster-b"
    assert await rpc("features.by_client_id", as_=a) == []
    assert await rpc("features.by_client_id", as_=b) == moved["features"]
    # cluster-a may now have its own abaqus.cfd ...
    back = await make.configuration(rpc, features=[{"name": "cfd", "product_id": abaqus}])
    # ... so moving the configuration back clashes, and nothing changes.
    error = await rpc.error(
        "configurations.update", {"id": config["id"], "cluster_client_id": "cluster-a"}
    )
    assert error.code == -32009
    assert error.data["cluster_client_id"] == "cluster-a"
    assert await rpc("configurations.get", {"id": config["id"]}) == moved
    assert await rpc("features.by_client_id", as_=a) == back["features"]


async def test_update_duplicate_features_is_conflict(rpc: Rpc) -> None:
    abaqus = await make.product(rpc)
    config = await make.configuration(
        rpc, features=[{"name": "a", "product_id": abaqus}, {"name": "b", "product_id": abaqus}]
    )
    a, b = config["features"]
    for features in (
        [{"id": a["id"]}, {"id": b["id"], "name": "a"}],
        [{"id": a["id"]}, {"id": b["id"]}, {"name": "b", "product_id": abaqus}],
    ):
        error = await rpc.error("configurations.update", {"id": config["id"], "features": features})
        assert error.code == -32009
    # Dropping a feature and adding it again in one update is fine (a new feature).
    replaced = await rpc(
        "configurations.update",
        {"id": config["id"], "features": [{"id": a["id"]}, {"name": "b", "product_id": abaqus}]},
    )
    assert sorted(f["name"] for f in replaced["features"]) == ["a", "b"]


async def test_delete_cascades(rpc: Rpc) -> None:
    abaqus = await make.product(rpc)
    config = await make.configuration(
        rpc,
        features=[{"name": "cfd", "product_id": abaqus}, {"name": "std", "product_id": abaqus}],
        servers=[SERVER, {"host": "lic2", "port": 2}],
    )
    other = await make.configuration(
        rpc, name="other", features=[{"name": "x", "product_id": abaqus}]
    )
    cfd, std = config["features"]
    await rpc("features.update", {"id": cfd["id"], "total": 10})
    await rpc("features.update", {"id": other["features"][0]["id"], "total": 10})
    gone = await make.booking(rpc, cfd["id"], 3, slurm_job_id="1")
    kept = await make.booking(rpc, other["features"][0]["id"], 2, slurm_job_id="2")
    assert await rpc("configurations.delete", {"id": config["id"]}) == {"deleted": config["id"]}
    error = await rpc.error("configurations.get", {"id": config["id"]})
    assert (error.code, error.data) == (-32004, {"resource": "configuration", "id": config["id"]})
    for method, id_ in [
        ("features.get", cfd["id"]),
        ("features.get", std["id"]),
        ("license_servers.get", config["license_servers"][0]["id"]),
        ("license_servers.get", config["license_servers"][1]["id"]),
        ("bookings.get", gone),
    ]:
        assert (await rpc.error(method, {"id": id_})).code == -32004, (method, id_)
    assert [b["id"] for b in await rpc("bookings.list")] == [kept]
    assert [len(j["bookings"]) for j in await rpc("jobs.list")] == [0, 1]  # jobs remain
    assert [c["id"] for c in await rpc("configurations.list")] == [other["id"]]
    assert (await rpc("features.get", {"id": other["features"][0]["id"]}))["booked_total"] == 2
    # The feature's name is free in the cluster again.
    again = await make.configuration(
        rpc, name="again", features=[{"name": "cfd", "product_id": abaqus}]
    )
    assert again["features"][0]["name"] == "cfd"


async def test_by_client_id(rpc: Rpc) -> None:
    mine = await make.configuration(rpc, name="mine", cluster="cluster-a")
    await make.configuration(rpc, name="theirs", cluster="cluster-b")
    also_mine = await make.configuration(rpc, name="also", cluster="cluster-a")
    reader = identity("config:read", cluster="cluster-a")
    assert await rpc("configurations.by_client_id", as_=reader) == [mine, also_mine]
    nobody = identity("config:read", cluster="cluster-c")
    assert await rpc("configurations.by_client_id", as_=nobody) == []
    error = await rpc.error(
        "configurations.by_client_id", as_=identity("config:read", cluster=None)
    )
    assert error.code == -32011
    assert "x" in make.invalid_fields(
        await rpc.error("configurations.by_client_id", {"x": 1}, as_=reader)
    )


async def test_permissions(rpc: Rpc) -> None:
    reader = identity("config:read")
    error = await rpc.error(
        "configurations.create",
        {"name": "c", "cluster_client_id": "a", "type": "rlm", "license_servers": [SERVER]},
        as_=reader,
    )
    assert (error.code, error.data) == (-32003, {"required": "license-manager:config:create"})
    assert await rpc("configurations.list", as_=reader) == []
