"""Crash: a server process killed with SIGKILL under a booking load loses no answered
booking, and the admission rule held for everything stored. On SQLite and PostgreSQL."""

import signal
from pathlib import Path
from typing import Any

import httpx
import trio
from sqlalchemy import select

from lmrpc.client import request
from storage import engine as engines
from storage.schema import bookings, features
from tests.factories import feature_in, stored_bookings
from tests.server import running_server, server_env
from tests.tokens import TokenFactory

Json = dict[str, Any]
KILL_AFTER_ANSWERED = 400  # bookings answered before the kill: the load is well under way
WORKERS = 12


def set_counters(url: str, feature_id: int, used: int, reserved: int) -> None:
    engine = engines.create(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(
                features.update()
                .where(features.c.id == feature_id)
                .values(used=used, reserved=reserved)
            )
    finally:
        engine.dispose()


def stored_rows(url: str) -> tuple[dict[int, tuple[int, int, int]], dict[int, int]]:
    """booking id → (job_id, feature_id, quantity), and feature id → total - used - reserved."""
    engine = engines.create(url, pool_size=1)
    try:
        with engine.connect() as conn:
            rows = {
                r.id: (r.job_id, r.feature_id, r.quantity) for r in conn.execute(select(bookings))
            }
            free = {r.id: r.total - r.used - r.reserved for r in conn.execute(select(features))}
            return rows, free
    finally:
        engine.dispose()


async def test_sigkill_under_load_loses_no_answered_booking_and_never_overbooks(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    # One small feature that fills up during the load (refusals under load), two large ones
    # that are still committing when the process dies.
    small = feature_in(database_url, 60)
    large = [feature_in(database_url, 100_000) for _ in range(2)]
    set_counters(database_url, small, used=10, reserved=5)  # 45 free
    for feature_id in large:
        set_counters(database_url, feature_id, used=1_000, reserved=500)
    targets = [small, *large]
    token = tokens.mint("job:create", "booking:create")
    headers = {"Authorization": f"Bearer {token}"}
    env = server_env(database_url, tokens, tmp_path / "data")
    answered: dict[int, tuple[int, int, int]] = {}  # booking id → (job, feature, quantity)
    refused = 0
    enough = trio.Event()

    with running_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            jobs = []
            for number in range(WORKERS):
                created = await client.post(
                    "/rpc",
                    json=request(
                        "jobs.create",
                        {"slurm_job_id": f"crash-{number}", "username": "u", "lead_host": "h"},
                        1,
                    ),
                )
                jobs.append(created.json()["result"]["id"])

            async def book(worker: int) -> None:
                nonlocal refused
                round_ = 0
                while True:
                    wanted = [
                        (jobs[worker], targets[(worker + round_ + i) % 3], 1 + (i + round_) % 3)
                        for i in range(8)
                    ]
                    body = [
                        request("bookings.create", {"job_id": j, "feature_id": f, "quantity": q}, i)
                        for i, (j, f, q) in enumerate(wanted, 1)
                    ]
                    try:
                        response = await client.post("/rpc", json=body)
                    except httpx.HTTPError:
                        return  # the process is gone: this request's outcome is unknown
                    for answer in response.json():
                        if "result" in answer:
                            booking = answer["result"]
                            answered[booking["id"]] = wanted[answer["id"] - 1]
                            assert (
                                booking["job_id"],
                                booking["feature_id"],
                                booking["quantity"],
                            ) == wanted[answer["id"] - 1]
                        else:
                            assert answer["error"]["code"] == -32010, answer
                            refused += 1
                    if len(answered) >= KILL_AFTER_ANSWERED:
                        enough.set()
                    round_ += 1

            async with trio.open_nursery() as nursery:
                for worker in range(WORKERS):
                    nursery.start_soon(book, worker)
                with trio.fail_after(60):
                    await enough.wait()
                server.process.send_signal(signal.SIGKILL)
        assert await trio.to_thread.run_sync(server.process.wait) == -signal.SIGKILL

    assert len(answered) >= KILL_AFTER_ANSWERED
    assert refused > 0  # the small feature filled up during the load
    stored, free = stored_rows(database_url)
    # every answered booking is stored, exactly as answered
    for booking_id, row in answered.items():
        assert stored.get(booking_id) == row, booking_id
    # booked_total equals the sum of bookings (checked inside) and the rule held
    by_feature = stored_bookings(database_url)
    for feature_id in targets:
        assert sum(q for _, q in by_feature.get(feature_id, [])) <= free[feature_id]

    # After a restart the service carries on from the stored truth: the small feature takes
    # exactly what is left of it, and no more.
    with running_server(env, tmp_path) as again:
        async with httpx.AsyncClient(base_url=again.url, headers=headers, timeout=30) as client:
            for _ in range(60):
                answer = (
                    await client.post(
                        "/rpc",
                        json=request(
                            "bookings.create",
                            {"job_id": jobs[0], "feature_id": small, "quantity": 1},
                            1,
                        ),
                    )
                ).json()
                if "error" in answer:
                    assert answer["error"]["code"] == -32010, answer
                    assert answer["error"]["data"]["available"] == 0
                    break
            else:
                raise AssertionError("the small feature never filled up")
    by_feature = stored_bookings(database_url)
    assert sum(q for _, q in by_feature[small]) == free[small] == 45
    assert "Traceback" not in again.log.read_text()
