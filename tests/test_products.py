"""products.* through the dispatcher, on both backends."""

from tests.conftest import Rpc


async def test_create_get_list_update_delete(rpc: Rpc) -> None:
    created = await rpc("products.create", {"name": "abaqus"})
    assert created == {"id": created["id"], "name": "abaqus"}
    assert await rpc("products.get", {"id": created["id"]}) == created
    await rpc("products.create", {"name": "ansys"})
    names = [
        p["name"]
        for p in await rpc("products.list", {"sort_field": "name", "sort_ascending": False})
    ]
    assert names == ["ansys", "abaqus"]
    assert [p["name"] for p in await rpc("products.list", {"search": "ABA"})] == ["abaqus"]
    renamed = await rpc("products.update", {"id": created["id"], "name": "abaqus2"})
    assert renamed["name"] == "abaqus2"
    assert await rpc("products.delete", {"id": created["id"]}) == {"deleted": created["id"]}
    error = await rpc.error("products.get", {"id": created["id"]})
    assert error.code == -32004
    assert error.data == {"resource": "product", "id": created["id"]}


async def test_duplicate_name_is_conflict(rpc: Rpc) -> None:
    await rpc("products.create", {"name": "abaqus"})
    error = await rpc.error("products.create", {"name": "abaqus"})
    assert error.code == -32009


async def test_bad_params(rpc: Rpc) -> None:
    for params in ({}, {"name": ""}, {"name": 5}, {"name": "x" * 256}, {"name": "a", "extra": 1}):
        error = await rpc.error("products.create", params)
        assert error.code == -32602, params
        assert error.data["errors"], params
    error = await rpc.error("products.update", {"id": 1})
    assert error.code == -32602
    error = await rpc.error("products.list", {"sort_field": "nope"})
    assert error.code == -32602
