"""Graceful shutdown: SIGTERM under a booking load; every answered booking is stored and
the process exits 0."""

import signal
from pathlib import Path

import httpx
import trio

from lmrpc.client import request
from tests.factories import feature_in, stored_bookings
from tests.server import running_server, server_env
from tests.tokens import TokenFactory

UNDER_LOAD = 200  # bookings answered before SIGTERM: the signal comes mid-load
LOAD_TIMEOUT_S = 120


async def test_sigterm_under_load_loses_no_answered_booking(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    features = [feature_in(database_url, 1_000_000) for _ in range(4)]
    token = tokens.mint("job:create", "booking:create")
    headers = {"Authorization": f"Bearer {token}"}
    answered: list[int] = []
    # Hypercorn leaves idle keep-alive connections open until the graceful timeout ends;
    # a short one keeps the test quick (calls here take milliseconds).
    env = server_env(database_url, tokens, tmp_path / "data", {"LMRPC_GRACEFUL_TIMEOUT": "2"})
    with running_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            job = (
                await client.post(
                    "/rpc",
                    json=request(
                        "jobs.create", {"slurm_job_id": "1", "username": "u", "lead_host": "h"}, 1
                    ),
                )
            ).json()
            job_id = job["result"]["id"]

            loaded = trio.Event()

            async def book(worker: int) -> None:
                while True:
                    body = [
                        request(
                            "bookings.create",
                            {
                                "job_id": job_id,
                                "feature_id": features[(worker + i) % 4],
                                "quantity": 1,
                            },
                            i,
                        )
                        for i in range(10)
                    ]
                    try:
                        response = await client.post("/rpc", json=body)
                    except httpx.HTTPError:
                        return  # the server stopped accepting
                    if response.status_code != 200:
                        return
                    answered.extend(a["result"]["id"] for a in response.json() if "result" in a)
                    if len(answered) >= UNDER_LOAD:
                        loaded.set()

            async with trio.open_nursery() as nursery:
                for worker in range(8):
                    nursery.start_soon(book, worker)
                with trio.fail_after(LOAD_TIMEOUT_S):  # does not hang
                    await loaded.wait()
                server.process.send_signal(signal.SIGTERM)
        exit_code = await trio.to_thread.run_sync(lambda: server.process.wait(30))
    assert exit_code == 0, server.log.read_text()[-2000:]
    assert len(answered) >= UNDER_LOAD
    stored = {fid: len(rows) for fid, rows in stored_bookings(database_url).items()}
    assert sum(stored.values()) >= len(answered)
    # every answered booking id is in the database
    from sqlalchemy import select

    from storage import engine as engines
    from storage.schema import bookings

    engine = engines.create(database_url, pool_size=1)
    with engine.connect() as conn:
        ids = set(conn.execute(select(bookings.c.id)).scalars())
    engine.dispose()
    assert set(answered) <= ids
