"""Objects created through the RPC methods, for the tests of configurations, servers,
features and clusters."""

from typing import Any

from tests.conftest import Rpc


async def product(rpc: Rpc, name: str = "abaqus") -> int:
    created: dict[str, Any] = await rpc("products.create", {"name": name})
    return int(created["id"])


async def configuration(
    rpc: Rpc,
    *,
    name: str = "config",
    cluster: str = "cluster-a",
    features: list[dict[str, Any]] | None = None,
    servers: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    params = {
        "name": name,
        "cluster_client_id": cluster,
        "type": "flexlm",
        "license_servers": servers or [{"host": "lic1.example.org", "port": 27000}],
        "features": features or [],
        **fields,
    }
    created: dict[str, Any] = await rpc("configurations.create", params)
    return created


async def feature(
    rpc: Rpc, config_id: int, product_id: int, name: str = "cfd", **fields: Any
) -> dict[str, Any]:
    params = {"name": name, "product_id": product_id, "config_id": config_id, **fields}
    created: dict[str, Any] = await rpc("features.create", params)
    return created


async def booking(rpc: Rpc, feature_id: int, quantity: int = 1, slurm_job_id: str = "1") -> int:
    """A job of cluster-a with one booking of ``feature_id`` (whose total must allow it)."""
    job = await rpc(
        "jobs.create", {"slurm_job_id": slurm_job_id, "username": "alice", "lead_host": "n1"}
    )
    created = await rpc(
        "bookings.create", {"job_id": job["id"], "feature_id": feature_id, "quantity": quantity}
    )
    return int(created["id"])


def invalid_fields(error: Any) -> list[str]:
    """The ``field`` of every -32602 error entry."""
    assert error.code == -32602, error.to_json()
    return [entry["field"] for entry in error.data["errors"]]
