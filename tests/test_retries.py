"""Idempotent retries: a prolog that retries ``jobs.create`` after a timeout never books
twice, duplicate creates from several clients at once make exactly one job, and a second
``jobs.delete_by_slurm_id`` is a clean -32004. Real servers, on SQLite and PostgreSQL."""

from typing import Any

import httpx
import pytest
import trio
from sqlalchemy import select

from lmrpc.client import request
from storage import engine as engines
from storage.schema import jobs
from tests.factories import feature_in, feature_row_locked, stored_bookings
from tests.server import Server
from tests.tokens import TokenFactory

Json = dict[str, Any]
CLIENTS = 16


def prolog(slurm_job_id: str, quantity: int, product: str) -> Json:
    return request(
        "jobs.create",
        {
            "slurm_job_id": slurm_job_id,
            "username": "alice",
            "lead_host": "node001",
            "bookings": [{"product_feature": f"{product}.hpc", "quantity": quantity}],
        },
        1,
    )


def jobs_named(url: str, slurm_job_id: str) -> list[int]:
    engine = engines.create(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(select(jobs.c.id).where(jobs.c.slurm_job_id == slurm_job_id)).scalars()
            )
    finally:
        engine.dispose()


@pytest.fixture
def server(shared_server: Server) -> Server:
    """Each test books a product of its own, so they share one server per backend."""
    return shared_server


@pytest.fixture
def database_url(shared_database_url: str) -> str:
    return shared_database_url


@pytest.fixture
def token(tokens: TokenFactory) -> str:
    return tokens.mint("job:create", "job:delete", "job:read")


async def test_prolog_retry_after_a_timeout_books_once(
    server: Server, token: str, database_url: str, unique_name: str
) -> None:
    feature = feature_in(database_url, 10, product=unique_name, name="hpc")
    slurm_job_id = f"{unique_name}-4242"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        # the prolog gives up waiting; its call is still in the server, waiting to commit
        with feature_row_locked(database_url, feature), pytest.raises(httpx.ReadTimeout):
            await client.post("/rpc", json=prolog(slurm_job_id, 3, unique_name), timeout=0.5)
        # The retry, as a prolog's loop sends it. The first call had started its transaction,
        # so it commits and the retry is told about it (had the disconnect caught it still
        # queued, it would have been abandoned and the retry would create the job: once).
        retried = (
            await client.post("/rpc", json=prolog(slurm_job_id, 3, unique_name), timeout=30)
        ).json()
        if "result" in retried:
            job_id = retried["result"]["id"]
        else:
            assert retried["error"]["code"] == -32009, retried
            job_id = retried["error"]["data"]["job_id"]
        assert jobs_named(database_url, slurm_job_id) == [job_id]
        again = (
            await client.post("/rpc", json=prolog(slurm_job_id, 3, unique_name), timeout=30)
        ).json()
        assert again["error"]["code"] == -32009, again
        assert again["error"]["data"]["job_id"] == job_id
        got = (
            await client.post(
                "/rpc", json=request("jobs.get_by_slurm_id", {"slurm_job_id": slurm_job_id}, 1)
            )
        ).json()
        assert [b["quantity"] for b in got["result"]["bookings"]] == [3]
    assert stored_bookings(database_url)[feature] == [(job_id, 3)]  # booked once


async def test_concurrent_duplicate_creates_make_one_job(
    server: Server, token: str, database_url: str, unique_name: str
) -> None:
    feature = feature_in(database_url, 100, product=unique_name, name="hpc")
    headers = {"Authorization": f"Bearer {token}"}
    answers: list[Json] = []
    async with httpx.AsyncClient(
        base_url=server.url,
        headers=headers,
        timeout=30,
        limits=httpx.Limits(max_connections=CLIENTS),
    ) as client:
        for round_ in range(3):  # a few rounds: the race is won at different points
            answers.clear()

            body = prolog(f"{unique_name}-dup-{round_}", 2, unique_name)

            async def create() -> None:
                answers.append((await client.post("/rpc", json=body)).json())  # noqa: B023

            async with trio.open_nursery() as nursery:
                for _ in range(CLIENTS):
                    nursery.start_soon(create)
            created = [a for a in answers if "result" in a]
            assert len(created) == 1, answers
            job_id = created[0]["result"]["id"]
            conflicts = [a for a in answers if "error" in a]
            assert len(conflicts) == CLIENTS - 1
            for answer in conflicts:
                assert answer["error"]["code"] == -32009, answer
                assert answer["error"]["data"]["job_id"] == job_id, answer
            assert jobs_named(database_url, body["params"]["slurm_job_id"]) == [job_id]
    stored = stored_bookings(database_url)[feature]
    assert len(stored) == 3 and sum(q for _, q in stored) == 6  # one booking per job


async def test_second_delete_by_slurm_id_is_not_found(
    server: Server, token: str, database_url: str, unique_name: str
) -> None:
    feature = feature_in(database_url, 10, product=unique_name, name="hpc")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:

        async def rpc(body: Json) -> Json:
            response = await client.post("/rpc", json=body)
            assert response.status_code == 200
            answer: Json = response.json()
            return answer

        slurm_job_id = f"{unique_name}-77"
        job_id = (await rpc(prolog(slurm_job_id, 4, unique_name)))["result"]["id"]
        first = await rpc(request("jobs.delete_by_slurm_id", {"slurm_job_id": slurm_job_id}, 1))
        assert first["result"] == {"deleted": job_id}
        second = await rpc(request("jobs.delete_by_slurm_id", {"slurm_job_id": slurm_job_id}, 1))
        assert second["error"]["code"] == -32004, second
        assert set(second["error"]) == {"code", "message", "data"}
        # the licenses came back once: the feature takes its whole total again
        full = await rpc(prolog(f"{unique_name}-78", 10, unique_name))
        assert "result" in full, full
    assert stored_bookings(database_url)[feature] == [(full["result"]["id"], 10)]
