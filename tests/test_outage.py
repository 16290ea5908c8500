"""Database outage: a PostgreSQL server is stopped for a few seconds under load and started
again. Meanwhile calls answer -32050 quickly and /healthz says 503; afterwards the service
recovers by itself, and no acknowledged booking is lost or doubled.

The server stopped is one of the test's own (``tests/private_pg.py``), never the machine's
shared one, so the rest of the suite runs on undisturbed, in parallel if it likes.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from sqlalchemy import select

from lmrpc.client import request
from storage import engine as engines
from storage import migrate
from storage.health import MAX_AGE_S
from storage.schema import bookings, jobs
from tests.factories import feature_in, stored_bookings
from tests.private_pg import PrivatePostgres, private_postgres
from tests.server import running_server, server_env
from tests.tokens import TokenFactory

Json = dict[str, Any]
OUTAGE_S = 1.5
ANSWER_BOUND_S = 10.0  # no call may hang longer than this, outage or not
RECOVERY_BOUND_S = 5.0
WORKERS = 8


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
def database_url(postgres: PrivatePostgres) -> str:
    migrate.upgrade(postgres.url)
    return postgres.url


async def test_postgresql_restart_under_load(
    postgres: PrivatePostgres, database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    feature = feature_in(database_url, 1_000_000, product="outage", name="lic")
    token = tokens.mint("job:create", "booking:create")
    env = server_env(database_url, tokens, tmp_path / "data", {"LMRPC_DB_TIMEOUT": "3"})
    headers = {"Authorization": f"Bearer {token}"}
    # slurm_job_id → job id acknowledged (by a result, or by -32009 naming the job)
    acknowledged_jobs: dict[str, int] = {}
    acknowledged_bookings: set[int] = set()  # ids answered to bookings.create
    unavailable: list[float] = []  # durations of the calls answered -32050
    durations: list[float] = []
    health_codes: list[tuple[float, int]] = []  # (when the poll was sent, its status)
    down_at = up_at = first_success_after = 0.0
    stop = trio.Event()

    try:
        with running_server(env, tmp_path) as server:
            async with httpx.AsyncClient(
                base_url=server.url, headers=headers, timeout=ANSWER_BOUND_S + 5
            ) as client:

                async def rpc(body: Json) -> Json:
                    nonlocal first_success_after
                    started = time.monotonic()
                    response = await client.post("/rpc", json=body)
                    seconds = time.monotonic() - started
                    durations.append(seconds)
                    assert response.status_code == 200, response.text
                    answer: Json = response.json()
                    if answer.get("error", {}).get("code") == -32050:
                        unavailable.append(seconds)
                    elif up_at and not first_success_after and "result" in answer:
                        first_success_after = time.monotonic() - up_at
                    return answer

                job_of_bookings = (
                    await rpc(
                        request(
                            "jobs.create",
                            {"slurm_job_id": "b", "username": "u", "lead_host": "h"},
                            1,
                        )
                    )
                )["result"]["id"]

                async def prolog(worker: int) -> None:
                    """Creates jobs with a booking, retrying each after -32050 as a prolog does."""
                    number = 0
                    while not stop.is_set():
                        slurm_id = f"{worker}-{number}"
                        params = {
                            "slurm_job_id": slurm_id,
                            "username": "u",
                            "lead_host": "h",
                            "bookings": [{"product_feature": "outage.lic", "quantity": 1}],
                        }
                        while True:
                            answer = await rpc(request("jobs.create", params, 1))
                            if "result" in answer:
                                acknowledged_jobs[slurm_id] = answer["result"]["id"]
                                break
                            code = answer["error"]["code"]
                            if code == -32009:  # an earlier try got through after all
                                acknowledged_jobs[slurm_id] = answer["error"]["data"]["job_id"]
                                break
                            assert code == -32050, answer
                            await trio.sleep(0.05)
                        number += 1

                async def booker() -> None:
                    while not stop.is_set():
                        answer = await rpc(
                            request(
                                "bookings.create",
                                {"job_id": job_of_bookings, "feature_id": feature, "quantity": 1},
                                1,
                            )
                        )
                        if "result" in answer:
                            acknowledged_bookings.add(answer["result"]["id"])
                        else:
                            assert answer["error"]["code"] == -32050, answer
                            await trio.sleep(0.05)

                async def watch_health() -> None:
                    while not stop.is_set():
                        sent = time.monotonic()
                        status = (await client.get("/healthz")).status_code
                        health_codes.append((sent, status))
                        await trio.sleep(0.1)

                async with trio.open_nursery() as nursery:
                    for worker in range(WORKERS):
                        nursery.start_soon(prolog, worker)
                    nursery.start_soon(booker)
                    await trio.sleep(1.0)
                    before = len(acknowledged_jobs)
                    assert before > 10
                    health_codes.clear()
                    nursery.start_soon(watch_health)
                    await trio.to_thread.run_sync(postgres.stop)
                    down_at = time.monotonic()
                    at_down = len(acknowledged_jobs)
                    await trio.sleep(OUTAGE_S)
                    during = len(acknowledged_jobs)
                    health_during = list(health_codes)
                    await trio.to_thread.run_sync(postgres.start)
                    up_at = time.monotonic()
                    assert postgres.ready()
                    # run on until the service has recovered and carried more load
                    with trio.fail_after(RECOVERY_BOUND_S + 10):
                        while not first_success_after or len(acknowledged_jobs) < during + 20:
                            await trio.sleep(0.05)
                    # /healthz may repeat a failed check for up to MAX_AGE_S, then says ok
                    recovered_at = time.monotonic()
                    with trio.fail_after(RECOVERY_BOUND_S):
                        while (await client.get("/healthz")).status_code != 200:
                            await trio.sleep(0.05)
                    health_lag = time.monotonic() - recovered_at
                    stop.set()
            log = server.log.read_text()
    finally:
        postgres.start()  # whatever happened: the checks below read the database

    outage_s = up_at - down_at
    print(
        f"outage {outage_s:.1f} s; jobs acknowledged {len(acknowledged_jobs)} (before {before},"
        f" during {during - before}); bookings acknowledged {len(acknowledged_bookings)};"
        f" -32050 answers {len(unavailable)} (slowest {max(unavailable, default=0):.2f} s);"
        f" slowest call {max(durations):.2f} s; recovered {first_success_after:.2f} s after start"
    )
    assert unavailable, "the outage was not seen"
    assert max(durations) <= ANSWER_BOUND_S
    # /healthz answers from a check at most MAX_AGE_S old (storage/health.py): once the
    # database is down, an "ok" may last that long (plus scheduling slack), never longer.
    stale_until = down_at + MAX_AGE_S + 0.5
    assert 503 in [status for sent, status in health_during if sent >= down_at]
    assert 200 not in [status for sent, status in health_during if sent >= stale_until]
    assert health_lag <= MAX_AGE_S + 0.5
    assert first_success_after <= RECOVERY_BOUND_S
    assert during - at_down <= WORKERS  # at most the calls in flight when it went down

    # Nothing acknowledged is lost; nothing is doubled.
    engine = engines.create(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            stored_jobs = conn.execute(select(jobs.c.slurm_job_id, jobs.c.id)).all()
            stored_bookings_of = conn.execute(select(bookings.c.job_id, bookings.c.id)).all()
    finally:
        engine.dispose()
    by_slurm = {slurm: job_id for slurm, job_id in stored_jobs}
    assert len(by_slurm) == len(stored_jobs)  # unique anyway: the schema says so
    for slurm_id, job_id in acknowledged_jobs.items():
        assert by_slurm.get(slurm_id) == job_id, slurm_id
    # every prolog job has its one booking, no more (a retried create never books twice)
    per_job: dict[int, int] = {}
    for job_id, _ in stored_bookings_of:
        per_job[job_id] = per_job.get(job_id, 0) + 1
    for slurm_id, job_id in by_slurm.items():
        if slurm_id != "b":
            assert per_job.get(job_id) == 1, slurm_id
    # bookings.create: the stored ones are exactly the acknowledged ones (-32050 changed nothing)
    stored_direct = {bid for job_id, bid in stored_bookings_of if job_id == job_of_bookings}
    assert acknowledged_bookings <= stored_direct
    assert len(stored_direct - acknowledged_bookings) == 0, "a -32050 booking was stored"
    assert stored_bookings(database_url)  # and booked_total equals the sum of bookings
    assert "Traceback" not in log
