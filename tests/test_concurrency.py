"""Concurrency hammers through real servers: no interleaving of clients, batches or server
processes may overbook (API.md §5, admission rule). On SQLite and PostgreSQL."""

from pathlib import Path
from typing import Any

import httpx
import trio

from lmrpc.client import request
from tests.factories import feature_in, stored_bookings
from tests.server import Server, running_servers, server_env
from tests.tokens import TokenFactory

Json = dict[str, Any]


async def post(client: httpx.AsyncClient, url: str, token: str, body: Any) -> Any:
    response = await client.post(
        url + "/rpc", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


async def make_job(client: httpx.AsyncClient, url: str, token: str, slurm_job_id: str) -> int:
    answer = await post(
        client,
        url,
        token,
        request(
            "jobs.create",
            {"slurm_job_id": slurm_job_id, "username": "alice", "lead_host": "node001"},
            1,
        ),
    )
    return int(answer["result"]["id"])


async def test_64_clients_on_a_feature_of_100_admit_exactly_100(
    server: Server, tokens: TokenFactory, database_url: str
) -> None:
    feature = feature_in(database_url, 100)
    token = tokens.mint("job:create", "booking:create")
    outcomes: list[int] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:
        job = await make_job(client, server.url, token, "1")

        async def client_books() -> None:
            for _ in range(3):
                answer = await post(
                    client,
                    server.url,
                    token,
                    request(
                        "bookings.create", {"job_id": job, "feature_id": feature, "quantity": 1}, 1
                    ),
                )
                outcomes.append(0 if "result" in answer else answer["error"]["code"])

        async with trio.open_nursery() as nursery:
            for _ in range(64):
                nursery.start_soon(client_books)
    assert outcomes.count(0) == 100
    assert outcomes.count(-32010) == 92
    assert sum(q for _, q in stored_bookings(database_url)[feature]) == 100


async def test_one_batch_of_200_on_a_feature_of_150_admits_exactly_150(
    server: Server, tokens: TokenFactory, database_url: str
) -> None:
    feature = feature_in(database_url, 150)
    token = tokens.mint("job:create", "booking:create")
    async with httpx.AsyncClient() as client:
        job = await make_job(client, server.url, token, "1")
        batch = [
            request("bookings.create", {"job_id": job, "feature_id": feature, "quantity": 1}, i)
            for i in range(1, 201)
        ]
        answers = await post(client, server.url, token, batch)
    assert [a["id"] for a in answers] == list(range(1, 201))
    admitted = [a for a in answers if "result" in a]
    refused = [a for a in answers if "error" in a]
    assert len(admitted) == 150 and len({a["result"]["id"] for a in admitted}) == 150
    assert {a["error"]["code"] for a in refused} == {-32010} and len(refused) == 50
    assert sum(q for _, q in stored_bookings(database_url)[feature]) == 150


async def test_three_server_processes_never_overbook(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    totals = [37, 50, 23]
    ids = [feature_in(database_url, total) for total in totals]
    token = tokens.mint("job:create", "booking:create")
    env = server_env(database_url, tokens, tmp_path / "data")
    admitted = 0
    with running_servers(3, env, tmp_path) as servers:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=48)) as client:
            jobs = [await make_job(client, s.url, token, f"job-{i}") for i, s in enumerate(servers)]

            async def hammer(worker: int) -> None:
                nonlocal admitted
                server = servers[worker % 3]
                for round_ in range(8):
                    batch = [
                        request(
                            "bookings.create",
                            {
                                "job_id": jobs[worker % 3],
                                "feature_id": ids[(worker + round_ + i) % 3],
                                "quantity": 1 + i % 3,
                            },
                            i + 1,
                        )
                        for i in range(6)
                    ]
                    for answer in await post(client, server.url, token, batch):
                        admitted += "result" in answer

            async with trio.open_nursery() as nursery:
                for worker in range(24):
                    nursery.start_soon(hammer, worker)
    stored = stored_bookings(database_url)
    for feature_id, total in zip(ids, totals, strict=True):
        booked = sum(q for _, q in stored.get(feature_id, []))
        assert booked <= total
        assert booked >= total - 2  # demand far exceeds supply: every feature ends (nearly) full
    assert admitted == sum(len(v) for v in stored.values())


async def test_concurrent_jobs_with_two_features_are_all_or_nothing(
    server: Server, tokens: TokenFactory, database_url: str
) -> None:
    first = feature_in(database_url, 20, product="ansys", name="hpc")
    second = feature_in(database_url, 13, product="ansys", name="solver")
    token = tokens.mint("job:create")
    created: list[Json] = []
    refused: list[Json] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=40)) as client:

        async def prolog(number: int) -> None:
            answer = await post(
                client,
                server.url,
                token,
                request(
                    "jobs.create",
                    {
                        "slurm_job_id": str(number),
                        "username": "bob",
                        "lead_host": "n1",
                        "bookings": [
                            {"product_feature": "ansys.hpc", "quantity": 1 + number % 2},
                            {"product_feature": "ansys.solver", "quantity": 1},
                        ],
                    },
                    1,
                ),
            )
            (created if "result" in answer else refused).append(answer)

        async with trio.open_nursery() as nursery:
            for number in range(40):
                nursery.start_soon(prolog, number)
    assert {a["error"]["code"] for a in refused} <= {-32010}
    for answer in created:
        assert len(answer["result"]["bookings"]) == 2
    stored = stored_bookings(database_url)
    jobs_first = {job for job, _ in stored.get(first, [])}
    jobs_second = {job for job, _ in stored.get(second, [])}
    assert jobs_first == jobs_second == {a["result"]["id"] for a in created}
    assert sum(q for _, q in stored[first]) <= 20 and len(stored[second]) <= 13
    assert len(created) >= 10  # at least the smaller feature's capacity minus the odd quantities
