"""The cached storage check behind ``/healthz``: at most about one query a second, shared
by concurrent pollers, failures reported; on both backends and against a real refused
PostgreSQL connection."""

import pytest
import trio
import trio.testing

from storage.errors import StorageUnavailable
from storage.facade import Storage
from storage.health import CachedCheck
from tests.server import HTTP, Server, free_port


class Counted:
    """The real storage ping, counting how often it ran."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.runs = 0

    async def __call__(self) -> None:
        self.runs += 1
        await self.storage.ping()


async def test_polls_within_the_age_share_one_query(storage: Storage) -> None:
    ping = Counted(storage)
    check = CachedCheck(ping, max_age=60)
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(check)
    for _ in range(20):
        await check()
    assert ping.runs == 1


async def test_an_old_result_is_checked_again(storage: Storage) -> None:
    ping = Counted(storage)
    check = CachedCheck(ping, max_age=0.05)
    await check()
    await trio.sleep(0.1)  # older than max_age
    await check()
    assert ping.runs == 2


async def test_a_failure_is_reported_and_cached_too() -> None:
    down = Storage(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    try:
        ping = Counted(down)
        check = CachedCheck(ping, max_age=60)
        for _ in range(3):
            with pytest.raises(StorageUnavailable):
                await check()
        assert ping.runs == 1
    finally:
        await down.close()


async def test_a_cancelled_check_leaves_no_answer_behind(storage: Storage) -> None:
    started = trio.Event()
    runs = 0

    async def first_hangs() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            started.set()
            await trio.sleep_forever()
        await storage.ping()

    check = CachedCheck(first_hangs, max_age=60)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(check)
        await started.wait()
        nursery.cancel_scope.cancel()
    await check()  # the cancelled check answered nothing: this one asks the database
    assert runs == 2


async def test_a_check_past_its_timeout_is_a_failure_and_the_next_asks_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = 0

    async def first_hangs() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await trio.sleep_forever()

    check = CachedCheck(first_hangs, max_age=60, timeout=3)
    with pytest.raises(StorageUnavailable, match=r"^timeout$"):
        await check()
    await check()  # the timed-out check answered nothing: this one asks again
    assert runs == 2


def test_healthz_still_answers_ok(server: Server) -> None:
    for _ in range(5):
        response = HTTP.get(server.url + "/healthz", timeout=10)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
