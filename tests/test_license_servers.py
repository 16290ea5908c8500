"""license_servers.* through the dispatcher, on both backends."""

from typing import Any

import pytest
import trio

from lmrpc.errors import RpcError
from tests import rpc_objects as make
from tests.conftest import Rpc, identity


async def test_create_get_update(rpc: Rpc) -> None:
    config = await make.configuration(rpc)
    created = await rpc(
        "license_servers.create", {"config_id": config["id"], "host": "10.1.2.3", "port": 1}
    )
    assert created == {
        "id": created["id"],
        "config_id": config["id"],
        "host": "10.1.2.3",
        "port": 1,
    }
    assert await rpc("license_servers.get", {"id": created["id"]}) == created
    changed = await rpc("license_servers.update", {"id": created["id"], "port": 65535})
    assert changed == {**created, "port": 65535}
    renamed = await rpc("license_servers.update", {"id": created["id"], "host": "lic9"})
    assert renamed == {**created, "port": 65535, "host": "lic9"}
    servers = (await rpc("configurations.get", {"id": config["id"]}))["license_servers"]
    assert [s["host"] for s in servers] == ["lic1.example.org", "lic9"]


async def test_move_to_another_configuration(rpc: Rpc) -> None:
    first = await make.configuration(rpc, name="one")
    second = await make.configuration(rpc, name="two")
    extra = await rpc(
        "license_servers.create", {"config_id": first["id"], "host": "lic2", "port": 27001}
    )
    moved = await rpc("license_servers.update", {"id": extra["id"], "config_id": second["id"]})
    assert moved["config_id"] == second["id"]
    after = await rpc("configurations.get", {"id": second["id"]})
    assert [s["id"] for s in after["license_servers"]] == [
        second["license_servers"][0]["id"],
        extra["id"],
    ]


async def test_last_server_cannot_go(rpc: Rpc) -> None:
    first = await make.configuration(rpc, name="one")
    second = await make.configuration(rpc, name="two")
    [only] = first["license_servers"]
    error = await rpc.error("license_servers.delete", {"id": only["id"]})
    assert error.code == -32009
    assert error.data["config_id"] == first["id"]
    assert error.data["reason"] == "a configuration keeps at least one license server"
    error = await rpc.error("license_servers.update", {"id": only["id"], "config_id": second["id"]})
    assert error.code == -32009
    assert await rpc("license_servers.get", {"id": only["id"]}) == only


async def test_delete_when_another_remains(rpc: Rpc) -> None:
    config = await make.configuration(rpc)
    extra = await rpc(
        "license_servers.create", {"config_id": config["id"], "host": "lic2", "port": 27001}
    )
    [first] = config["license_servers"]
    assert await rpc("license_servers.delete", {"id": first["id"]}) == {"deleted": first["id"]}
    error = await rpc.error("license_servers.get", {"id": first["id"]})
    assert (error.code, error.data) == (-32004, {"resource": "license_server", "id": first["id"]})
    # Now ``extra`` is the last one.
    error = await rpc.error("license_servers.delete", {"id": extra["id"]})
    assert error.code == -32009


async def test_not_found(rpc: Rpc) -> None:
    config = await make.configuration(rpc)
    [server] = config["license_servers"]
    missing_config = {"resource": "configuration", "id": 999}
    error = await rpc.error("license_servers.create", {"config_id": 999, "host": "h", "port": 1})
    assert (error.code, error.data) == (-32004, missing_config)
    error = await rpc.error("license_servers.update", {"id": server["id"], "config_id": 999})
    assert (error.code, error.data) == (-32004, missing_config)
    for method, params in [
        ("license_servers.get", {"id": 999}),
        ("license_servers.update", {"id": 999, "port": 5}),
        ("license_servers.delete", {"id": 999}),
    ]:
        error = await rpc.error(method, params)
        assert (error.code, error.data) == (-32004, {"resource": "license_server", "id": 999})


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"host": "h", "port": 1}, "config_id"),
        ({"config_id": 1, "port": 1}, "host"),
        ({"config_id": 1, "host": "h"}, "port"),
        ({"config_id": 1, "host": "h", "port": 0}, "port"),
        ({"config_id": 1, "host": "h", "port": 65536}, "port"),
        ({"config_id": 1, "host": "h", "port": "27000"}, "port"),
        ({"config_id": 1, "host": "not a host!", "port": 1}, "host"),
        ({"config_id": 0, "host": "h", "port": 1}, "config_id"),
        ({"config_id": 1, "host": "h", "port": 1, "extra": 1}, "extra"),
    ],
)
async def test_create_bad_params(rpc: Rpc, params: dict[str, Any], field: str) -> None:
    await make.configuration(rpc)
    assert field in make.invalid_fields(await rpc.error("license_servers.create", params))
    assert len((await rpc("configurations.get", {"id": 1}))["license_servers"]) == 1


async def test_update_bad_params(rpc: Rpc) -> None:
    config = await make.configuration(rpc)
    id_ = config["license_servers"][0]["id"]
    assert make.invalid_fields(await rpc.error("license_servers.update", {"id": id_})) == ["params"]
    for params in ({"id": id_, "host": None}, {"id": id_, "port": 0}, {"id": id_, "name": "x"}):
        make.invalid_fields(await rpc.error("license_servers.update", params))
    assert await rpc("license_servers.get", {"id": id_}) == config["license_servers"][0]


async def test_list_search_sort_page(rpc: Rpc) -> None:
    one = await make.configuration(rpc, servers=[{"host": "alpha.example", "port": 300}])
    two = await make.configuration(
        rpc, servers=[{"host": "beta.example", "port": 100}, {"host": "gamma.lan", "port": 200}]
    )
    listed = await rpc("license_servers.list")
    assert [s["host"] for s in listed] == ["alpha.example", "beta.example", "gamma.lan"]
    assert [s["config_id"] for s in listed] == [one["id"], two["id"], two["id"]]
    by_port = await rpc("license_servers.list", {"sort_field": "port"})
    assert [s["port"] for s in by_port] == [100, 200, 300]
    desc = await rpc("license_servers.list", {"sort_field": "host", "sort_ascending": False})
    assert [s["host"] for s in desc] == ["gamma.lan", "beta.example", "alpha.example"]
    by_config = await rpc(
        "license_servers.list", {"sort_field": "config_id", "sort_ascending": False}
    )
    assert [s["config_id"] for s in by_config] == [two["id"], two["id"], one["id"]]
    found = await rpc("license_servers.list", {"search": "GAMMA alpha"})
    assert [s["host"] for s in found] == ["alpha.example", "gamma.lan"]
    page = await rpc("license_servers.list", {"sort_field": "port", "limit": 1, "offset": 1})
    assert [s["port"] for s in page] == [200]
    error = await rpc.error("license_servers.list", {"sort_field": "name"})
    assert "sort_field" in make.invalid_fields(error)
    assert "limit" in make.invalid_fields(await rpc.error("license_servers.list", {"limit": 0}))


async def test_types(rpc: Rpc) -> None:
    expected = ["flexlm", "rlm", "lsdyna", "lmx", "olicense", "dsls"]
    assert await rpc("license_servers.types") == expected
    assert await rpc("license_servers.types", as_=identity("license-server:read")) == expected
    error = await rpc.error("license_servers.types", as_=identity("config:read"))
    assert (error.code, error.data) == (-32003, {"required": "license-manager:license-server:read"})
    assert make.invalid_fields(await rpc.error("license_servers.types", {"x": 1})) == ["x"]


async def test_concurrent_deletes_keep_one_server(rpc: Rpc) -> None:
    """Two servers deleted at once: the configuration row lock lets exactly one go."""
    for round_ in range(5):
        config = await make.configuration(rpc, name=f"c{round_}")
        extra = await rpc(
            "license_servers.create", {"config_id": config["id"], "host": "lic2", "port": 2}
        )
        ids = [config["license_servers"][0]["id"], extra["id"]]
        outcomes: list[Any] = []

        async def delete(id_: int, outcomes: list[Any]) -> None:
            try:
                outcomes.append(await rpc("license_servers.delete", {"id": id_}))
            except RpcError as error:
                outcomes.append(error.code)

        async with trio.open_nursery() as nursery:
            for id_ in ids:
                nursery.start_soon(delete, id_, outcomes)
        refused = [outcome for outcome in outcomes if outcome == -32009]
        deleted = [outcome["deleted"] for outcome in outcomes if isinstance(outcome, dict)]
        assert (len(refused), len(deleted)) == (1, 1)
        left = (await rpc("configurations.get", {"id": config["id"]}))["license_servers"]
        assert [server["id"] for server in left] == [id_ for id_ in ids if id_ not in deleted]
