"""In-process cost of the dispatcher, without HTTP (scenario h).

    python -m bench.micro

Prints µs per no-op call with a cached token and µs per ``bookings.create`` inside a
batch of 100, on a temporary SQLite database.
"""

import json
import os
import tempfile
import time
from pathlib import Path

import trio

import lmrpc.methods  # noqa: F401  (registers the methods)
from actors.supervisor import Supervisor
from bench import seed
from lmrpc import keys
from lmrpc.auth import KeyStore, TokenVerifier
from lmrpc.dispatch import dispatch
from lmrpc.registry import CallContext
from lmrpc.settings import EMBEDDED_ISSUER, Settings
from storage import engine as engines
from storage import migrate
from storage.facade import Storage

NOOP_CALLS = int(os.environ.get("MICRO_NOOP_CALLS", 20_000))
BATCHES = int(os.environ.get("MICRO_BATCHES", 100))


async def measure(directory: Path) -> None:
    url = f"sqlite:///{directory / 'micro.sqlite3'}"
    migrate.upgrade(url)
    sync_engine = engines.create(url, pool_size=1)
    features = seed.features_of(sync_engine, "bench", 64, 2_000_000_000)
    jobs = seed.jobs_of(sync_engine, "bench", 64, "micro-")
    key = keys.load_or_create(directory)
    settings = Settings(data_dir=directory, oidc_issuer=None)
    verifier = TokenVerifier(settings, KeyStore(keys.public_key_set(key)))
    assert settings.oidc_issuer is None and EMBEDDED_ISSUER
    token = keys.mint(key, client_id="bench")
    storage = Storage(url)
    async with trio.open_nursery() as nursery:
        actors = Supervisor(storage)
        await nursery.start(actors.run)

        def context(identity: object) -> CallContext:
            return CallContext(identity, storage, actors)  # type: ignore[arg-type]

        budget = settings.max_response_bytes
        noop = json.dumps({"jsonrpc": "2.0", "method": "license_servers.types", "id": 1}).encode()
        started = time.perf_counter()
        for _ in range(NOOP_CALLS):
            identity = await verifier.verify(token)
            await dispatch(noop, identity, context, 1000, max_response_bytes=budget)
        per_noop = (time.perf_counter() - started) / NOOP_CALLS * 1e6

        def batch(number: int) -> bytes:
            return json.dumps(
                [
                    {
                        "jsonrpc": "2.0",
                        "method": "bookings.create",
                        "id": i,
                        "params": {
                            "job_id": jobs[i % 64],
                            "feature_id": features[(i + number) % 64],
                            "quantity": 1,
                        },
                    }
                    for i in range(100)
                ]
            ).encode()

        bodies = [batch(n) for n in range(BATCHES)]
        started = time.perf_counter()
        for body in bodies:
            identity = await verifier.verify(token)
            answer = await dispatch(body, identity, context, 1000, max_response_bytes=budget)
            assert answer is not None
            assert b'"error"' not in answer, answer[:300]
        per_booking = (time.perf_counter() - started) / (BATCHES * 100) * 1e6
        print(f"h  no-op call, cached token:   {per_noop:6.1f} µs  (target ≤ 60)")
        print(f"h  bookings.create, batch 100: {per_booking:6.1f} µs  (target ≤ 100)")
        await actors.close()
    await storage.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(measure, Path(tmp))


if __name__ == "__main__":
    main()
