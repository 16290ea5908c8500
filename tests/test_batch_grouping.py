"""A batch's ``bookings.create`` calls go to the actors as one message per feature; each call
is still answered on its own, in request order; on both backends."""

import json
from typing import Any

import pytest

from actors.feature_actor import FeatureActor
from actors.supervisor import Supervisor
from lmrpc.dispatch import dispatch
from lmrpc.identity import Identity
from lmrpc.registry import CallContext
from storage.facade import Storage
from tests.conftest import ADMIN_IDENTITY, identity
from tests.factories import booked_total, make_feature, make_job


def call(id_: int | None, method: str, params: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if id_ is not None:
        entry["id"] = id_
    return entry


async def run_batch(
    calls: list[dict[str, Any]],
    storage: Storage,
    supervisor: Supervisor,
    who: Identity = ADMIN_IDENTITY,
) -> list[dict[str, Any]]:
    raw = await dispatch(
        json.dumps(calls).encode(),
        who,
        lambda caller: CallContext(caller, storage, supervisor),
        1000,
        max_response_bytes=10_000_000,
    )
    assert raw is not None
    answers: list[dict[str, Any]] = json.loads(raw)
    return answers


@pytest.fixture
def deliveries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many requests each message to an actor carried (the real delivery still runs)."""
    sizes: list[int] = []
    deliver = FeatureActor.deliver

    async def counted(self: FeatureActor, message: Any, nursery: Any) -> None:
        sizes.append(len(message.requests))
        await deliver(self, message, nursery)

    monkeypatch.setattr(FeatureActor, "deliver", counted)
    return sizes


async def test_each_call_is_answered_in_order_and_a_refusal_touches_no_other(
    storage: Storage, supervisor: Supervisor, deliveries: list[int]
) -> None:
    scarce = await make_feature(storage, 2)
    plenty = await make_feature(storage, 100)
    job = await make_job(storage)
    book = "bookings.create"
    calls = [
        call(1, book, {"job_id": job, "feature_id": scarce, "quantity": 1}),
        call(2, book, {"job_id": job, "feature_id": plenty, "quantity": 5}),
        call(3, book, {"job_id": job, "feature_id": scarce, "quantity": 2}),  # refused
        call(4, book, {"job_id": job, "feature_id": scarce, "quantity": 1}),  # fits after 3
        call(5, book, {"job_id": job, "feature_id": plenty, "quantity": 0}),  # bad params
        call(6, book, {"job_id": job + 99, "feature_id": plenty, "quantity": 1}),  # no job
        call(7, book, {"job_id": job, "feature_id": plenty + 99, "quantity": 1}),  # no feature
        call(8, "products.list", {}),
        call(None, book, {"job_id": job, "feature_id": plenty, "quantity": 1}),  # notification
        call(9, book, {"job_id": job, "feature_id": scarce, "quantity": 1}),  # refused: full
    ]
    answers = await run_batch(calls, storage, supervisor)
    assert [a["id"] for a in answers] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    codes = [a["error"]["code"] if "error" in a else None for a in answers]
    assert codes == [None, None, -32010, None, -32602, -32004, -32004, None, -32010]
    assert answers[2]["error"]["data"]["available"] == 1
    assert [answers[i]["result"]["quantity"] for i in (0, 1, 3)] == [1, 5, 1]
    assert await booked_total(storage, scarce) == (2, 2)
    assert await booked_total(storage, plenty) == (6, 6)  # 5 and the notification's 1
    # one message per feature: scarce (4 calls), plenty (3 valid), the missing feature (1)
    assert sorted(deliveries) == [1, 3, 4]


async def test_a_caller_of_another_cluster_is_refused_call_by_call(
    storage: Storage, supervisor: Supervisor
) -> None:
    feature = await make_feature(storage, 10, cluster="cluster-b")
    own_job = await make_job(storage, cluster="cluster-b")
    other_job = await make_job(storage, cluster="cluster-a")
    booker = identity("booking:create", cluster="cluster-b")
    calls = [
        call(1, "bookings.create", {"job_id": other_job, "feature_id": feature, "quantity": 1}),
        call(2, "bookings.create", {"job_id": own_job, "feature_id": feature, "quantity": 1}),
        call(3, "bookings.get", {"id": 1}),  # not permitted to this caller
    ]
    answers = await run_batch(calls, storage, supervisor, booker)
    codes = [a["error"]["code"] if "error" in a else None for a in answers]
    assert codes == [-32003, None, -32003]
    assert await booked_total(storage, feature) == (1, 1)
