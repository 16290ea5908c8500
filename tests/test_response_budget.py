"""The response budget and the read share of one request (API.md §1, issue 14 item 3):
the pure accounting, and the dispatcher on real storage of both backends."""

import json
from collections.abc import Callable
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from actors.supervisor import Supervisor
from lmrpc import jsonrpc
from lmrpc.budget import ResponseBudget, framing
from lmrpc.dispatch import SLOTS_PER_BATCH, dispatch
from lmrpc.errors import RESPONSE_TOO_LARGE, RpcError
from lmrpc.registry import CallContext
from storage.facade import Storage
from storage.runner import ThreadRunner
from tests.conftest import ADMIN_IDENTITY, Rpc

# --- the pure accounting ---------------------------------------------------------------------

sizes = st.lists(st.tuples(st.integers(0, 5000), st.integers(40, 400)), max_size=60)


@given(sizes, st.integers(0, 40_000), st.booleans())
def test_the_answers_and_their_framing_never_pass_the_limit(
    calls: list[tuple[int, int]], limit: int, is_batch: bool
) -> None:
    """Whatever the calls answer, in whatever order they finish, the response fits."""
    fallbacks = [b"f" * fallback for _, fallback in calls]
    set_aside = sum(map(len, fallbacks)) + framing(len(calls), is_batch)
    budget = ResponseBudget(limit, set_aside)
    if not budget.possible:
        assert set_aside > limit
        return
    kept = [
        budget.fit(b"a" * size, fallback)
        for (size, _), fallback in zip(calls, fallbacks, strict=True)
    ]
    assert sum(map(len, kept)) + framing(len(calls), is_batch) <= limit
    for (size, _), fallback, answer in zip(calls, fallbacks, kept, strict=True):
        assert answer == fallback or len(answer) == size


def test_a_refused_answer_leaves_room_for_smaller_ones_after_it() -> None:
    budget = ResponseBudget(1000, 2 * 10)
    assert budget.fit(b"x" * 2000, b"f" * 10) == b"f" * 10
    assert budget.spent
    assert budget.fit(b"y" * 500, b"f" * 10) == b"y" * 500


@given(
    st.one_of(
        st.none(),
        st.integers(-(2**63) + 1, 2**63 - 1),
        st.text(max_size=255),
    )
)
def test_the_error_encoder_writes_what_encode_writes(id_: Any) -> None:
    error = RpcError(RESPONSE_TOO_LARGE, {"limit_bytes": 12345})
    assert jsonrpc.error_encoder(error)(id_) == jsonrpc.encode(jsonrpc.error(id_, error))


# --- the dispatcher on real storage ------------------------------------------------------------


class Counted:
    """Counts the transactions of one storage lane and how many ran at once; each still
    runs on the real storage thread."""

    def __init__(self, lane: ThreadRunner) -> None:
        self.started = 0
        self.running = 0
        self.most = 0
        real_run = lane.run

        async def run(fn: Callable[[Any], Any]) -> Any:
            self.started += 1
            self.running += 1
            self.most = max(self.most, self.running)
            try:
                return await real_run(fn)
            finally:
                self.running -= 1

        lane.run = run  # type: ignore[method-assign]


def batch(method: str, calls: int, params: dict[str, Any] | None = None) -> bytes:
    return json.dumps(
        [
            {"jsonrpc": "2.0", "id": number, "method": method, "params": params or {}}
            for number in range(calls)
        ]
    ).encode()


async def answer(
    body: bytes, storage: Storage, supervisor: Supervisor, budget: int
) -> tuple[bytes, Any]:
    raw = await dispatch(
        body,
        ADMIN_IDENTITY,
        lambda who: CallContext(who, storage, supervisor),
        1000,
        max_response_bytes=budget,
    )
    assert raw is not None
    return raw, json.loads(raw)


async def products(rpc: Rpc, count: int) -> None:
    for number in range(count):
        await rpc("products.create", {"name": f"product-{number:03d}-{'x' * 200}"})


def too_large(id_: Any, budget: int) -> dict[str, Any]:
    error = {"code": RESPONSE_TOO_LARGE, "message": "Result too large for the response budget"}
    return {"jsonrpc": "2.0", "error": {**error, "data": {"limit_bytes": budget}}, "id": id_}


async def test_a_batch_stays_within_the_budget_and_stops_reading_once_it_is_spent(
    rpc: Rpc, storage: Storage, supervisor: Supervisor
) -> None:
    await products(rpc, 20)  # a products.list answer is about 5 kB
    one = len(jsonrpc.encode(jsonrpc.result(10, await rpc("products.list"))))
    refusal = jsonrpc.error_encoder(RpcError(RESPONSE_TOO_LARGE, {"limit_bytes": 0}))
    set_aside = sum(len(refusal(number)) for number in range(100)) + framing(100, True)
    budget = set_aside + 2 * one + one // 2  # room for two answers and a half
    reads = Counted(storage._reader)
    raw, answers = await answer(batch("products.list", 100), storage, supervisor, budget)
    assert len(raw) <= budget
    assert [a["id"] for a in answers] == list(range(100))
    listed = [a for a in answers if "result" in a]
    assert len(listed) == 2
    assert all(len(a["result"]) == 20 for a in listed)
    assert [a for a in answers if "error" in a] == [
        too_large(a["id"], budget) for a in answers if "error" in a
    ]
    # the calls whose reads had not begun when the budget was spent never read
    assert reads.started <= len(listed) + 1 + SLOTS_PER_BATCH


async def test_a_batch_reads_through_a_few_slots_only(
    rpc: Rpc, storage: Storage, supervisor: Supervisor
) -> None:
    await products(rpc, 3)
    reads = Counted(storage._reader)
    _, answers = await answer(batch("products.list", 200), storage, supervisor, 16 << 20)
    assert all("result" in a for a in answers)
    assert reads.started == 200
    assert reads.most <= SLOTS_PER_BATCH


async def test_two_batches_each_get_their_own_slots(
    rpc: Rpc, storage: Storage, supervisor: Supervisor
) -> None:
    """The share is per request: two batches at once may read twice as much at a time,
    and neither waits for the other to finish."""
    await products(rpc, 3)
    reads = Counted(storage._reader)
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(answer, batch("products.list", 200), storage, supervisor, 16 << 20)
    assert reads.started == 400
    assert reads.most <= 2 * SLOTS_PER_BATCH


async def test_a_batch_writes_through_a_few_slots_and_writes_even_once_the_budget_is_spent(
    rpc: Rpc, storage: Storage, supervisor: Supervisor
) -> None:
    await products(rpc, 60)  # a list of about 15 kB: it never fits, the creates always do
    writes = Counted(storage._writer)
    calls = [{"jsonrpc": "2.0", "id": 0, "method": "products.list"}] + [
        {"jsonrpc": "2.0", "id": n, "method": "products.create", "params": {"name": f"new{n}"}}
        for n in range(1, 101)
    ]
    _, answers = await answer(json.dumps(calls).encode(), storage, supervisor, 14_000)
    assert answers[0] == too_large(0, 14_000)
    created = [a for a in answers[1:] if "result" in a]
    assert len(created) == 100  # small answers still fit beside the refused list
    assert writes.started == 100
    assert writes.most <= SLOTS_PER_BATCH


async def test_a_single_answer_past_the_budget_is_refused(
    rpc: Rpc, storage: Storage, supervisor: Supervisor
) -> None:
    await products(rpc, 20)
    body = json.dumps({"jsonrpc": "2.0", "id": "x", "method": "products.list"}).encode()
    raw, refused = await answer(body, storage, supervisor, 2000)
    assert refused == too_large("x", 2000)
    assert len(raw) <= 2000
    _, paged = await answer(
        json.dumps(
            {"jsonrpc": "2.0", "id": "x", "method": "products.list", "params": {"limit": 2}}
        ).encode(),
        storage,
        supervisor,
        2000,
    )
    assert len(paged["result"]) == 2


async def test_a_batch_whose_refusals_alone_pass_the_budget_is_refused_before_running(
    rpc: Rpc, storage: Storage, supervisor: Supervisor
) -> None:
    body = json.dumps(
        [
            {
                "jsonrpc": "2.0",
                "id": f"{number:0255d}",
                "method": "products.create",
                "params": {"name": f"p{number}"},
            }
            for number in range(100)
        ]
    ).encode()
    _, refused = await answer(body, storage, supervisor, 20_000)
    assert refused == too_large(None, 20_000)
    assert await rpc("products.list") == []


async def test_notifications_take_no_budget_and_still_run(
    rpc: Rpc, storage: Storage, supervisor: Supervisor
) -> None:
    calls = [
        {"jsonrpc": "2.0", "method": "products.create", "params": {"name": f"p{n}"}}
        for n in range(5)
    ]
    result = await dispatch(
        json.dumps(calls).encode(),
        ADMIN_IDENTITY,
        lambda who: CallContext(who, storage, supervisor),
        1000,
        max_response_bytes=10,
    )
    assert result is None
    assert len(await rpc("products.list")) == 5


@pytest.mark.parametrize(("budget", "fitting"), [(2_000, 0), (8_000, 2), (1 << 20, 10)])
async def test_errors_count_against_the_budget_like_results(
    storage: Storage, supervisor: Supervisor, budget: int, fitting: int
) -> None:
    """Bad calls are answered within the budget too: their error, or -32012 in its place.
    Each -32602 here lists 20 long names (about 3 kB)."""
    unknown = {f"{number:0100d}": 1 for number in range(30)}
    raw, answers = await answer(batch("products.get", 10, unknown), storage, supervisor, budget)
    assert len(raw) <= budget
    codes = [a["error"]["code"] for a in answers]
    assert codes.count(-32602) == fitting
    assert codes.count(RESPONSE_TOO_LARGE) == 10 - fitting


async def test_metrics_and_logs_hear_the_code_that_was_sent(
    rpc: Rpc, storage: Storage, supervisor: Supervisor
) -> None:
    await products(rpc, 20)
    heard: dict[Any, int | None] = {}

    def observe(call: jsonrpc.Call, code: int | None, seconds: float) -> None:
        heard[call.id] = code

    raw = await dispatch(
        batch("products.list", 10),
        ADMIN_IDENTITY,
        lambda who: CallContext(who, storage, supervisor),
        1000,
        observe,
        max_response_bytes=8000,
    )
    assert raw is not None
    sent = {a["id"]: a["error"]["code"] if "error" in a else None for a in json.loads(raw)}
    assert heard == sent
    assert RESPONSE_TOO_LARGE in heard.values()
