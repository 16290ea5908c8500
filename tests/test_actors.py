"""Feature actors and the supervisor against real storage, on both backends."""

import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from actors.supervisor import Supervisor
from actors.transactions import BookingRequest
from lmrpc.errors import Forbidden
from storage.errors import NotEnoughLicenses, NotFound
from storage.facade import Storage
from storage.rows import now
from tests.conftest import ADMIN_IDENTITY, identity
from tests.factories import booked_total, make_feature, make_job

AN_ADMIN = ADMIN_IDENTITY.check_owner
CLUSTER_B = identity("booking:create", cluster="cluster-b").check_owner


async def test_concurrent_bookings_never_exceed_total(
    storage: Storage, supervisor: Supervisor
) -> None:
    feature = await make_feature(storage, total=100)
    job = await make_job(storage)
    admitted: list[int] = []
    refused: list[NotEnoughLicenses] = []

    async def book() -> None:
        try:
            admitted.append(
                (await supervisor.book(feature, BookingRequest(job, 1, AN_ADMIN)))["id"]
            )
        except NotEnoughLicenses as error:
            refused.append(error)

    async with trio.open_nursery() as nursery:
        for _ in range(150):
            nursery.start_soon(book)
    assert len(admitted) == 100 and len(set(admitted)) == 100
    assert len(refused) == 50 and all(e.available == 0 for e in refused)
    assert await booked_total(storage, feature) == (100, 100)


async def test_booking_errors(storage: Storage, supervisor: Supervisor) -> None:
    feature = await make_feature(storage, total=5, used=2, reserved=1)
    job = await make_job(storage, cluster="cluster-a")
    try:
        await supervisor.book(feature, BookingRequest(job, 3, AN_ADMIN))
    except NotEnoughLicenses as error:
        assert (error.requested, error.available) == (3, 2)
    else:
        raise AssertionError("booked past total")
    for request, expected in (
        (BookingRequest(job + 100, 1, AN_ADMIN), NotFound),
        (BookingRequest(job, 1, CLUSTER_B), Forbidden),
    ):
        try:
            await supervisor.book(feature, request)
        except expected:
            pass
        else:
            raise AssertionError(f"{request} was admitted")
    try:
        await supervisor.book(feature + 100, BookingRequest(job, 1, AN_ADMIN))
    except NotFound as error:
        assert error.resource == "feature"
    else:
        raise AssertionError("booked on a missing feature")
    assert await booked_total(storage, feature) == (0, 0)


async def test_idle_actors_retire_and_come_back(
    storage: Storage, nursery: trio.Nursery, mock_clock: MockClock
) -> None:
    """Trio's time is the test's own: the idle timeout passes by a jump, not a sleep.

    The usage history's hour stands still and is packed up front, so each of the
    supervisor's looks is done without a storage thread, within the jump that woke it."""
    moment = now()
    supervisor = Supervisor(storage, idle_timeout=60, clock=lambda: moment)
    await supervisor.roll_up()
    await nursery.start(supervisor.run)
    feature = await make_feature(storage, total=2)
    job = await make_job(storage)
    await supervisor.book(feature, BookingRequest(job, 1, AN_ADMIN))
    assert supervisor.live == 1
    idle = 0
    while supervisor.live:  # the supervisor looks every quarter of the timeout
        assert idle <= 120, "an idle actor was never retired"
        mock_clock.jump(15)
        idle += 15
        await wait_all_tasks_blocked()
    assert idle > 60  # never before the idle timeout
    await supervisor.book(feature, BookingRequest(job, 1, AN_ADMIN))
    assert await booked_total(storage, feature) == (2, 2)
    await supervisor.close()
