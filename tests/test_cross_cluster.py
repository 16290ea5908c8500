"""Cluster-owned objects (API.md §2): jobs and their bookings are created, changed and
deleted only by their own cluster's token or an admin; reading needs only the read
permission. In process on SQLite and PostgreSQL.
"""

from dataclasses import dataclass
from typing import Any

import pytest

from lmrpc.errors import FORBIDDEN, NOT_FOUND
from lmrpc.identity import Identity
from tests.conftest import Rpc, identity

AGENT_PERMISSIONS = (
    "job:create",
    "job:read",
    "job:delete",
    "booking:create",
    "booking:read",
    "booking:delete",
    "feature:read",
)
A = identity(*AGENT_PERMISSIONS, cluster="cluster-a")
B = identity(*AGENT_PERMISSIONS, cluster="cluster-b")
NO_CLUSTER = identity(*AGENT_PERMISSIONS, cluster=None)
ADMIN_OF_B = identity("admin", cluster="cluster-b")
READER_B = identity("job:read", "booking:read", cluster="cluster-b")


@dataclass
class World:
    job: dict[str, Any]  # cluster-a's job, with one booking
    booking_id: int
    feature_a: int  # a feature of cluster-a (total 100)
    feature_b: int  # a feature of cluster-b (total 100)


async def _feature(rpc: Rpc, cluster: str, product_id: int) -> int:
    config = await rpc(
        "configurations.create",
        {
            "name": f"licenses-{cluster}",
            "cluster_client_id": cluster,
            "type": "flexlm",
            "license_servers": [{"host": "lic1.example.org", "port": 27000}],
        },
    )
    feature = await rpc(
        "features.create", {"name": "cae", "product_id": product_id, "config_id": config["id"]}
    )
    await rpc("features.update", {"id": feature["id"], "total": 100})
    feature_id: int = feature["id"]
    return feature_id


@pytest.fixture
async def world(rpc: Rpc) -> World:
    product = await rpc("products.create", {"name": "abaqus"})
    feature_a = await _feature(rpc, "cluster-a", product["id"])
    feature_b = await _feature(rpc, "cluster-b", product["id"])
    job = await rpc(
        "jobs.create",
        {
            "slurm_job_id": "1001",
            "username": "alice",
            "lead_host": "node001",
            "bookings": [{"product_feature": "abaqus.cae", "quantity": 5}],
        },
        as_=A,
    )
    assert job["cluster_client_id"] == "cluster-a"
    [booking] = job["bookings"]
    assert booking["feature_id"] == feature_a
    return World(job, booking["id"], feature_a, feature_b)


async def forbidden(rpc: Rpc, method: str, params: dict[str, Any], as_: Identity) -> None:
    error = await rpc.error(method, params, as_=as_)
    assert error.code == FORBIDDEN, error.to_json()
    assert "reason" in error.data, error.to_json()


async def job_of(rpc: Rpc, world: World) -> dict[str, Any]:
    job: dict[str, Any] = await rpc("jobs.get", {"id": world.job["id"]})
    return job


async def booked(rpc: Rpc, feature_id: int) -> int:
    feature = await rpc("features.get", {"id": feature_id})
    total: int = feature["booked_total"]
    return total


async def test_another_cluster_cannot_delete_the_job(rpc: Rpc, world: World) -> None:
    for intruder in (B, NO_CLUSTER):
        await forbidden(rpc, "jobs.delete", {"id": world.job["id"]}, intruder)
    assert await job_of(rpc, world) == world.job
    assert await booked(rpc, world.feature_a) == 5
    # by slurm id, B only ever sees its own cluster's jobs
    error = await rpc.error("jobs.delete_by_slurm_id", {"slurm_job_id": "1001"}, as_=B)
    assert error.code == NOT_FOUND
    assert await job_of(rpc, world) == world.job
    assert await rpc("jobs.delete", {"id": world.job["id"]}, as_=A) == {"deleted": world.job["id"]}


async def test_another_cluster_cannot_book_on_the_job(rpc: Rpc, world: World) -> None:
    for feature_id in (world.feature_a, world.feature_b):
        params = {"job_id": world.job["id"], "feature_id": feature_id, "quantity": 1}
        await forbidden(rpc, "bookings.create", params, B)
        await forbidden(rpc, "bookings.create", params, NO_CLUSTER)
    assert await job_of(rpc, world) == world.job
    assert (await booked(rpc, world.feature_a), await booked(rpc, world.feature_b)) == (5, 0)
    own = {"job_id": world.job["id"], "feature_id": world.feature_a, "quantity": 1}
    assert (await rpc("bookings.create", own, as_=A))["quantity"] == 1


async def test_another_cluster_cannot_delete_the_jobs_bookings(rpc: Rpc, world: World) -> None:
    await forbidden(rpc, "bookings.delete", {"id": world.booking_id}, B)
    await forbidden(rpc, "bookings.delete", {"id": world.booking_id}, NO_CLUSTER)
    assert (await rpc("bookings.get", {"id": world.booking_id}))["quantity"] == 5
    assert await booked(rpc, world.feature_a) == 5
    deleted = await rpc("bookings.delete", {"id": world.booking_id}, as_=A)
    assert deleted == {"deleted": world.booking_id}
    assert await booked(rpc, world.feature_a) == 0


async def test_another_cluster_cannot_create_a_job_for_the_cluster(rpc: Rpc, world: World) -> None:
    params = {
        "slurm_job_id": "2002",
        "username": "mallory",
        "lead_host": "node666",
        "cluster_client_id": "cluster-a",
        "bookings": [{"product_feature": "abaqus.cae", "quantity": 1}],
    }
    await forbidden(rpc, "jobs.create", params, B)
    assert [job["id"] for job in await rpc("jobs.list")] == [world.job["id"]]
    assert await booked(rpc, world.feature_a) == 5
    # naming its own cluster explicitly is fine
    own = await rpc("jobs.create", {**params, "cluster_client_id": "cluster-b"}, as_=B)
    assert own["cluster_client_id"] == "cluster-b"


async def test_an_admin_may_change_any_clusters_jobs_and_bookings(rpc: Rpc, world: World) -> None:
    created = await rpc(
        "jobs.create",
        {
            "slurm_job_id": "3003",
            "username": "root",
            "lead_host": "node002",
            "cluster_client_id": "cluster-a",
        },
        as_=ADMIN_OF_B,
    )
    assert created["cluster_client_id"] == "cluster-a"
    booking = await rpc(
        "bookings.create",
        {"job_id": world.job["id"], "feature_id": world.feature_a, "quantity": 2},
        as_=ADMIN_OF_B,
    )
    assert await booked(rpc, world.feature_a) == 7
    await rpc("bookings.delete", {"id": booking["id"]}, as_=ADMIN_OF_B)
    await rpc("bookings.delete", {"id": world.booking_id}, as_=ADMIN_OF_B)
    assert await rpc("jobs.delete", {"id": world.job["id"]}, as_=ADMIN_OF_B) == {
        "deleted": world.job["id"]
    }
    assert await rpc("jobs.delete", {"id": created["id"]}, as_=ADMIN_OF_B) == {
        "deleted": created["id"]
    }
    assert await rpc("jobs.list") == []
    assert await booked(rpc, world.feature_a) == 0


async def test_reading_needs_only_the_read_permission(rpc: Rpc, world: World) -> None:
    assert await rpc("jobs.get", {"id": world.job["id"]}, as_=READER_B) == world.job
    assert await rpc("jobs.list", as_=READER_B) == [world.job]
    booking = await rpc("bookings.get", {"id": world.booking_id}, as_=READER_B)
    assert booking == world.job["bookings"][0]
    assert await rpc("bookings.list", as_=READER_B) == world.job["bookings"]
    # ...and not a write permission of the same resource
    no_read = identity("job:create", "job:delete", "booking:create", cluster="cluster-a")
    for method, params in [
        ("jobs.get", {"id": world.job["id"]}),
        ("jobs.list", {}),
        ("bookings.get", {"id": world.booking_id}),
    ]:
        error = await rpc.error(method, params, as_=no_read)
        assert error.code == FORBIDDEN and "required" in error.data
