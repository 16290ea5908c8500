"""One huge read batch cannot starve other callers (issue 14 item 3), end to end.

A token with only ``job:read`` sends 1,000 ``jobs.list`` calls over 2,000 stored jobs
while another cluster books in a loop and ``/healthz`` is polled, on a real ``lmrpc serve``
on each backend: every admission and every health check succeeds, and the response stays
within the budget, the calls past it answered -32012.
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from storage import engine as engines
from storage.rows import now
from storage.schema import jobs
from tests.factories import feature_in
from tests.server import HTTP, Server, running_server, server_env
from tests.tokens import TokenFactory

JOBS = 2000
CALLS = 1000
BUDGET = 1024 * 1024  # low, so the test stays fast: a full jobs.list is about 0.3 MB
BOOKER = "cluster-b"
BOOKED_FEATURE = "abaqus.cae"


def seed_jobs(database_url: str) -> None:
    """JOBS jobs of cluster-a in one transaction, straight into the database."""
    engine = engines.create(database_url)
    rows = [
        {
            "slurm_job_id": str(number),
            "cluster_client_id": "cluster-a",
            "username": "alice",
            "lead_host": f"node{number:04d}",
            "created_at": now(),
        }
        for number in range(JOBS)
    ]
    with engine.begin() as conn:
        conn.execute(insert(jobs), rows)
    engine.dispose()


@pytest.fixture
def seeded(database_url: str, tokens: TokenFactory, tmp_path: Path) -> Iterator[Server]:
    """A server with JOBS jobs stored, a feature of BOOKER with licenses to spare
    (BOOKED_FEATURE), and a response budget of BUDGET bytes."""
    seed_jobs(database_url)
    feature_in(database_url, 1_000_000, cluster=BOOKER, product="abaqus", name="cae")
    extra = {"LMRPC_MAX_RESPONSE_BYTES": str(BUDGET)}
    env = server_env(database_url, tokens, tmp_path / "data", extra)
    with running_server(env, tmp_path) as srv:
        yield srv


class Loop(threading.Thread):
    """Repeats ``attempt`` until stopped, recording (start, end, outcome) of each."""

    def __init__(self, attempt: Callable[[httpx.Client], Any]) -> None:
        super().__init__(daemon=True)
        self.attempt = attempt
        self.outcomes: list[tuple[float, float, Any]] = []
        self.first = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    outcome = self.attempt(client)
                except httpx.HTTPError as error:  # recorded: a failure the test will report
                    outcome = repr(error)
                self.outcomes.append((started, time.monotonic(), outcome))
                self.first.set()

    def during(self, start: float, end: float) -> list[Any]:
        """Outcomes of the attempts that ran at some time within [start, end]."""
        return [outcome for s, e, outcome in self.outcomes if s <= end and start <= e]


def test_a_huge_read_batch_leaves_admissions_and_health_alone(
    seeded: Server, tokens: TokenFactory
) -> None:
    booker = tokens.mint("job:create", client_id=BOOKER)
    slurm_ids = count(1)

    def admit(client: httpx.Client) -> Any:
        request = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "jobs.create",
            "params": {
                "slurm_job_id": str(next(slurm_ids)),
                "username": "bob",
                "lead_host": "b001",
                "bookings": [{"product_feature": BOOKED_FEATURE, "quantity": 1}],
            },
        }
        response = client.post(
            seeded.url + "/rpc", json=request, headers={"Authorization": f"Bearer {booker}"}
        )
        answer = response.json()
        return "admitted" if "result" in answer else answer

    def health(client: httpx.Client) -> Any:
        response = client.get(seeded.url + "/healthz")
        return "ok" if response.status_code == 200 else (response.status_code, response.text)

    loops = [Loop(admit), Loop(health)]
    for loop in loops:
        loop.start()
    for loop in loops:
        assert loop.first.wait(30)

    batch = [
        {"jsonrpc": "2.0", "id": number, "method": "jobs.list", "params": {}}
        for number in range(CALLS)
    ]
    reader = tokens.mint("job:read")
    started = time.monotonic()
    response = HTTP.post(
        seeded.url + "/rpc",
        content=json.dumps(batch).encode(),
        headers={"Authorization": f"Bearer {reader}", "Content-Type": "application/json"},
        timeout=300,
    )
    finished = time.monotonic()
    for loop in loops:
        loop.stop.set()
    for loop in loops:
        loop.join(60)
    admissions, checks = (loop.outcomes for loop in loops)

    assert response.status_code == 200
    assert len(response.content) <= BUDGET
    answers = response.json()
    assert [answer["id"] for answer in answers] == list(range(CALLS))
    listed = [answer for answer in answers if "result" in answer]
    refused = [answer for answer in answers if "error" in answer]
    assert listed and refused
    assert all(len(answer["result"]) >= JOBS for answer in listed)  # and the new jobs
    for answer in refused:
        assert answer["error"]["code"] == -32012, answer
        assert answer["error"]["data"] == {"limit_bytes": BUDGET}

    assert [outcome for _, _, outcome in admissions if outcome != "admitted"] == []
    assert [outcome for _, _, outcome in checks if outcome != "ok"] == []
    assert loops[0].during(started, finished), "no admission ran while the batch was served"
    assert loops[1].during(started, finished), "no health check ran while the batch was served"
