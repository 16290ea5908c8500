"""Writes that change counters outside the actors refresh the actors' cached counters, so a
stale cache never admits or refuses wrongly (lmrpc/registry.py ``write_counters``).

An actor grants a job's hold from its cached counters (actors/feature_actor.py); these tests
warm that cache with a booking, change the counters through each method that changes them,
and check the next hold is decided on the new counters. In process, on both backends.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lmrpc.errors import NOT_FOUND
from storage.errors import NotEnoughLicenses, NotFound
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


async def _hold(rpc: Rpc, feature_id: int, quantity: int) -> None:
    """Ask the feature's actor to hold ``quantity`` for a job, then give it back."""
    held = await rpc.actors.hold({feature_id: quantity})
    rpc.actors.settle(held, booked=False)


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
async def test_fewer_licenses_are_never_held_from_a_stale_cache(rpc: Rpc, method: str) -> None:
    config, feature = await _feature(rpc)
    await make.booking(rpc, feature["id"], 1)  # the actor now caches 9 free
    await SHRINKS[method](rpc, config, feature)  # 2 free
    with pytest.raises(NotEnoughLicenses) as refused:
        await _hold(rpc, feature["id"], 5)
    assert (refused.value.requested, refused.value.available) == (5, 2)
    await _hold(rpc, feature["id"], 2)


@pytest.mark.parametrize("method", ["features.delete", "configurations.delete"])
async def test_a_deleted_feature_is_never_held_from_a_stale_cache(rpc: Rpc, method: str) -> None:
    config, feature = await _feature(rpc)
    await make.booking(rpc, feature["id"], 1)
    await rpc(method, {"id": config["id"] if method.startswith("config") else feature["id"]})
    with pytest.raises(NotFound):
        await _hold(rpc, feature["id"], 1)
    error = await rpc.error(
        "jobs.create",
        {
            "slurm_job_id": "2",
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
async def test_freed_licenses_are_never_refused_from_a_stale_cache(rpc: Rpc, method: str) -> None:
    _, feature = await _feature(rpc)
    booking = await make.booking(rpc, feature["id"], TOTAL)  # the actor now caches 0 free
    await FREES[method](rpc, booking)
    await _hold(rpc, feature["id"], TOTAL)
    assert (await rpc("features.get", {"id": feature["id"]}))["booked_total"] == 0
