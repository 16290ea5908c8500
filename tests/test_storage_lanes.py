"""Admissions and the health check have their own storage lane (issue 14 item 3): with every
read thread busy and more reads queued, they are served at once, on both backends."""

import threading

import trio
from sqlalchemy import Connection, text

from actors.supervisor import Supervisor
from storage.facade import Storage
from tests.conftest import Rpc
from tests.factories import make_feature

GENEROUS_S = 5  # "is not stuck behind the reads": those wait for the test, up to 30 s
QUEUED = 10


async def test_admissions_and_ping_pass_a_read_lane_full_of_stuck_reads(
    storage: Storage, supervisor: Supervisor, rpc: Rpc
) -> None:
    await make_feature(storage, 10, product="abaqus", name="cae")
    release = threading.Event()
    readers = len(storage._reader._threads)
    entered = 0
    all_busy = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def count_in() -> None:
        nonlocal entered
        entered += 1
        if entered == readers:
            all_busy.set()

    def stuck(conn: Connection) -> int:
        trio.from_thread.run_sync(count_in, trio_token=token)
        release.wait(30)
        return int(conn.execute(text("SELECT 1")).scalar_one())

    async with trio.open_nursery() as nursery:
        for _ in range(QUEUED):
            nursery.start_soon(storage.read, stuck)
        await all_busy.wait()
        try:
            with trio.fail_after(GENEROUS_S):
                await storage.ping()
                job = await rpc(
                    "jobs.create",
                    {
                        "slurm_job_id": "1",
                        "username": "alice",
                        "lead_host": "n1",
                        "bookings": [{"product_feature": "abaqus.cae", "quantity": 3}],
                    },
                )
                deleted = await rpc("jobs.delete_by_slurm_id", {"slurm_job_id": "1"})
        finally:
            release.set()
    assert [b["quantity"] for b in job["bookings"]] == [3]
    assert deleted == {"deleted": job["id"]}
    assert entered == QUEUED  # the stuck reads all ran once released
