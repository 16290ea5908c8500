"""Writes that change counters outside the actors never leave an actor deciding on old
counters: an actor keeps no counters, each admission decides on the feature's row read
under lock in its transaction (actors/transactions.py).

These tests warm an actor with a booking, change the counters through each method that
changes them, and check the next ``bookings.create`` is decided on the new counters. In
process, on both backends.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lmrpc.errors import NOT_ENOUGH_LICENSES, NOT_FOUND
from tests import rpc_objects as make
from tests.conftest import Rpc, identity

AGENT_A = identity("feature:report", "job:delete", cluster="cluster-a")
TOTAL = 10


async def _feature(rpc: Rpc) -> tuple[dict[str, Any], dict[str, Any]]:
    """A configuration of cluster-a with one feature of ``TOTAL`` licenses."""
    abaqus = await make.product(rpc)
    config = await make.configuration(rpc, features=[{"name": "cfd", "product_id": abaqus}])
    [feature] = config["features"]
    await rpc("features.update", {"id": feature["id"], "total": TOTAL})
    return config, feature


def _booking(job_id: int, feature_id: int, quantity: int) -> dict[str, int]:
    return {"job_id": job_id, "feature_id": feature_id, "quantity": quantity}


async def _second_job(rpc: Rpc) -> int:
    """A job of cluster-a beside the one that warmed the actor."""
    job = await rpc("jobs.create", {"slurm_job_id": "2", "username": "bob", "lead_host": "n2"})
    return int(job["id"])


Shrink = Callable[[Rpc, dict[str, Any], dict[str, Any]], Awaitable[Any]]

SHRINKS: dict[str, Shrink] = {
    "features.update": lambda rpc, config, feature: rpc(
        "features.update", {"id": feature["id"], "total": 3}
    ),
    "features.bulk_update": lambda rpc, config, feature: rpc(
        "features.bulk_update",
        {"features": [{"product_name": "abaqus", "feature_name": "cfd", "total": 3, "used": 0}]},
        as_=AGENT_A,
    ),
    "configurations.update": lambda rpc, config, feature: rpc(
        "configurations.update",
        {"id": config["id"], "features": [{"id": feature["id"], "reserved": TOTAL - 3}]},
    ),
}


@pytest.mark.parametrize("method", SHRINKS)
async def test_fewer_licenses_are_never_booked_on_old_counters(rpc: Rpc, method: str) -> None:
    config, feature = await _feature(rpc)
    await make.booking(rpc, feature["id"], 1)  # 9 free when the actor last committed
    await SHRINKS[method](rpc, config, feature)  # 2 free
    job = await _second_job(rpc)
    refused = await rpc.error("bookings.create", _booking(job, feature["id"], 5))
    assert refused.code == NOT_ENOUGH_LICENSES, refused.to_json()
    assert (refused.data["requested"], refused.data["available"]) == (5, 2)
    await rpc("bookings.create", _booking(job, feature["id"], 2))
    assert (await rpc("features.get", {"id": feature["id"]}))["booked_total"] == 3


@pytest.mark.parametrize("method", ["features.delete", "configurations.delete"])
async def test_a_deleted_feature_is_never_booked_on_old_counters(rpc: Rpc, method: str) -> None:
    config, feature = await _feature(rpc)
    await make.booking(rpc, feature["id"], 1)
    await rpc(method, {"id": config["id"] if method.startswith("config") else feature["id"]})
    job = await _second_job(rpc)
    missing = await rpc.error("bookings.create", _booking(job, feature["id"], 1))
    assert missing.code == NOT_FOUND, missing.to_json()
    error = await rpc.error(
        "jobs.create",
        {
            "slurm_job_id": "3",
            "username": "bob",
            "lead_host": "n2",
            "bookings": [{"product_feature": "abaqus.cfd", "quantity": 1}],
        },
    )
    assert error.code == NOT_FOUND, error.to_json()


Free = Callable[[Rpc, int], Awaitable[Any]]

FREES: dict[str, Free] = {
    "bookings.delete": lambda rpc, booking: rpc("bookings.delete", {"id": booking}),
    "jobs.delete": lambda rpc, booking: _delete_job(rpc, booking),
    "jobs.delete_by_slurm_id": lambda rpc, booking: rpc(
        "jobs.delete_by_slurm_id", {"slurm_job_id": "1"}, as_=AGENT_A
    ),
}


async def _delete_job(rpc: Rpc, booking: int) -> None:
    job = (await rpc("bookings.get", {"id": booking}))["job_id"]
    await rpc("jobs.delete", {"id": job})


@pytest.mark.parametrize("method", FREES)
async def test_freed_licenses_are_never_refused_on_old_counters(rpc: Rpc, method: str) -> None:
    _, feature = await _feature(rpc)
    booking = await make.booking(rpc, feature["id"], TOTAL)  # 0 free when the actor last committed
    await FREES[method](rpc, booking)
    assert (await rpc("features.get", {"id": feature["id"]}))["booked_total"] == 0
    job = await _second_job(rpc)
    await rpc("bookings.create", _booking(job, feature["id"], TOTAL))
    assert (await rpc("features.get", {"id": feature["id"]}))["booked_total"] == TOTAL
