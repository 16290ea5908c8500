"""A cluster's Slurm job exists once (actors/transactions.py ``_plan_job``): creating it again, with
or without bookings, alone or racing, is -32009 naming the existing job, and nothing more
is booked. In process on both backends."""

from typing import Any

import pytest
import trio

from lmrpc.errors import CONFLICT, RpcError
from tests import rpc_objects as make
from tests.conftest import Rpc

REASON = "a job with this cluster and slurm_job_id exists"


def job(bookings: list[dict[str, Any]]) -> dict[str, Any]:
    return {"slurm_job_id": "42", "username": "alice", "lead_host": "n1", "bookings": bookings}


@pytest.fixture
async def feature(rpc: Rpc) -> int:
    """abaqus.cfd of cluster-a with 3 licenses."""
    abaqus = await make.product(rpc)
    config = await make.configuration(rpc, features=[{"name": "cfd", "product_id": abaqus}])
    feature_id: int = config["features"][0]["id"]
    await rpc("features.update", {"id": feature_id, "total": 3})
    return feature_id


ONE = [{"product_feature": "abaqus.cfd", "quantity": 1}]
TOO_MANY = [{"product_feature": "abaqus.cfd", "quantity": 5}]


@pytest.mark.parametrize("first", [[], ONE])
@pytest.mark.parametrize("again", [[], ONE, TOO_MANY])
async def test_a_second_create_names_the_first(
    rpc: Rpc, feature: int, first: list[dict[str, Any]], again: list[dict[str, Any]]
) -> None:
    created = await rpc("jobs.create", job(first))
    error = await rpc.error("jobs.create", job(again))
    assert (error.code, error.data) == (CONFLICT, {"reason": REASON, "job_id": created["id"]})
    booked = (await rpc("features.get", {"id": feature}))["booked_total"]
    assert booked == len(first)


async def test_racing_creates_make_one_job(rpc: Rpc, feature: int) -> None:
    """Enough licenses for every racer, so each loser is refused as a duplicate."""
    await rpc("features.update", {"id": feature, "total": 10})
    created: list[int] = []
    conflicts: list[RpcError] = []

    async def create() -> None:
        try:
            created.append((await rpc("jobs.create", job(ONE)))["id"])
        except RpcError as error:
            conflicts.append(error)

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(create)
    assert len(created) == 1
    assert [(e.code, e.data) for e in conflicts] == [
        (CONFLICT, {"reason": REASON, "job_id": created[0]})
    ] * 5
    assert (await rpc("features.get", {"id": feature}))["booked_total"] == 1
