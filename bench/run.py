"""Benchmark scenarios of issue 3 against a real ``lmrpc serve``; prints its numbers.

    python -m bench.run --backend sqlite --duration 10
    python -m bench.run --backend postgresql --scenarios a,f --workers 2

Nothing here is a pass/fail test: it prints what it measured and the targets beside.
"""

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import trio
from sqlalchemy import Engine

from bench import loadgen, seed
from lmrpc import keys
from lmrpc.client import request
from storage import migrate
from tests.server import running_server

CLUSTER = "bench"
BIG = 2_000_000_000
PG_ADMIN = os.environ.get("LMRPC_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def body(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'bench.sqlite3'}"
        migrate.upgrade(url)
        yield url
        return
    name = f"lmrpc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Server:
    """A real ``lmrpc serve`` with embedded auth, started as the tests start theirs."""

    def __init__(self, url: str, data_dir: Path, workers: int, port: int = 18_765) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LMRPC_")}
        env.update(LMRPC_DATABASE_URL=url, LMRPC_DATA_DIR=str(data_dir))
        self._running = ExitStack()
        server = self._running.enter_context(
            running_server(env, data_dir, workers=workers, port=port)
        )
        self.base = server.url
        self.process = server.process

    def pids(self) -> list[int]:
        """The server process and its worker processes."""
        pids, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                todo += [int(child) for child in task.read_text().split()]
        return pids

    def memory_mib(self, field: str = "VmRSS") -> float:
        """Summed ``field`` (VmRSS now, VmHWM peak) of the server's processes."""
        total = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        self._running.close()


class Bench:
    def __init__(self, args: argparse.Namespace, directory: Path, url: str) -> None:
        self.args = args
        self.url = url
        self.engine: Engine = seed.engine(url)
        self.directory = directory
        key = keys.load_or_create(directory)
        self.token = keys.mint(key, client_id=CLUSTER, ttl=24 * 3600)
        self.server = Server(url, directory, args.workers)
        self.results: dict[str, loadgen.Stats] = {}

    def load(
        self, name: str, clients: int, make_body: loadgen.BodyMaker, **kwargs: object
    ) -> loadgen.Stats:
        stats = trio.run(
            lambda: loadgen.run(self.server.base + "/rpc", self.token, clients, make_body, **kwargs)  # type: ignore[arg-type]
        )
        self.results[name.split()[0]] = stats  # keyed by the scenario letter
        print(f"  {name:<34} {stats.line()}", flush=True)
        return stats

    def restart(self, workers: int | None = None) -> None:
        self.server.stop()
        self.server = Server(self.url, self.directory, workers or self.args.workers)


def scenario_f(b: Bench, features: list[int], jobs: list[int]) -> None:
    payload = body(request("products.get", {"id": 1}, 1))
    b.load("f  products.get, 32 clients", 32, lambda c, n: payload, duration=b.args.duration)


def booking_body(features: list[int], jobs: list[int]) -> loadgen.BodyMaker:
    def make(client: int, number: int) -> bytes:
        feature = features[(client * 2 + number) % len(features)]
        return body(
            request(
                "bookings.create",
                {"job_id": jobs[client % len(jobs)], "feature_id": feature, "quantity": 1},
                1,
            )
        )

    return make


def scenario_a(b: Bench, features: list[int], jobs: list[int], label: str = "a") -> None:
    b.load(
        f"{label:<2} bookings.create, 32 clients/64 feat",
        32,
        booking_body(features[:64], jobs),
        duration=b.args.duration,
    )


def scenario_b(b: Bench, features: list[int], jobs: list[int]) -> None:
    hot = features[64]

    def make(client: int, number: int) -> bytes:
        return body(
            request(
                "bookings.create",
                {"job_id": jobs[client % len(jobs)], "feature_id": hot, "quantity": 1},
                1,
            )
        )

    b.load("b  hot feature, 64 clients", 64, make, duration=b.args.duration)


def scenario_c(b: Bench, features: list[int], jobs: list[int]) -> None:
    def make(client: int, number: int) -> bytes:
        return body(
            [
                request(
                    "bookings.create",
                    {
                        "job_id": jobs[client % len(jobs)],
                        "feature_id": features[(client * 7 + i) % 64],
                        "quantity": 1,
                    },
                    i + 1,
                )
                for i in range(100)
            ]
        )

    b.load("c  batches of 100 bookings", 8, make, duration=b.args.duration)


def scenario_d(b: Bench, features: list[int], jobs: list[int]) -> None:
    with b.engine.begin():
        pass
    seed.features_of(b.engine, CLUSTER, 1000, 10_000, product="bulk")

    def make(client: int, number: int) -> bytes:
        return body(
            request(
                "features.bulk_update",
                {
                    "features": [
                        {
                            "product_name": "bulk",
                            "feature_name": f"f{i}",
                            "total": 10_000,
                            "used": (i + number) % 100,
                        }
                        for i in range(1000)
                    ]
                },
                1,
            )
        )

    b.load("d  bulk_update of 1,000 features", 1, make, requests_per_client=50)


def scenario_e(b: Bench, features: list[int], jobs: list[int]) -> None:
    b.load(
        "e  bookings.create at 50 req/s",
        8,
        booking_body(features[:64], jobs),
        duration=b.args.duration,
        rate=50.0,
    )


SCENARIOS = {
    "f": scenario_f,
    "a": scenario_a,
    "b": scenario_b,
    "c": scenario_c,
    "d": scenario_d,
    "e": scenario_e,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scenarios", default="f,a,b,c,d,e,w,g,i")
    args = parser.parse_args()
    wanted = args.scenarios.split(",")
    with tempfile.TemporaryDirectory() as tmp, database(args.backend, Path(tmp)) as url:
        directory = Path(tmp)
        print(
            f"lmrpc bench: backend {args.backend}, workers {args.workers}, {os.cpu_count()} cores, "
            f"{args.duration:.0f} s per scenario",
            flush=True,
        )
        features = seed.features_of(seed.engine(url), CLUSTER, 65, BIG)
        jobs = seed.jobs_of(seed.engine(url), CLUSTER, 64, "bench-")
        b = Bench(args, directory, url)
        try:
            for name in wanted:
                if name in SCENARIOS:
                    SCENARIOS[name](b, features, jobs)
            if "w" in wanted:
                b.restart(workers=2)
                scenario_a(b, features, jobs, label="a2")
                b.restart()
            if "g" in wanted or "i" in wanted:
                scenario_memory(b, features, jobs)
            print(f"  server peak RSS {b.server.memory_mib('VmHWM'):.0f} MiB")
            mismatched, past = seed.overbooked(b.engine)
            print(
                f"  integrity: {mismatched} features with booked_total != sum(bookings), "
                f"{past} features overbooked"
            )
            summary(b)
        finally:
            b.server.stop()


def scenario_memory(b: Bench, features: list[int], jobs: list[int]) -> None:
    started = time.perf_counter()
    many = seed.features_of(b.engine, CLUSTER, 100_000, BIG, product="mem")
    job_ids = seed.jobs_of(b.engine, CLUSTER, 100_000, "mem-")
    seed.bookings_on(b.engine, job_ids, many, 1_000_000)
    seed.settle(b.engine)
    print(
        f"  seeded 100k features, 100k jobs, 1M bookings in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    b.restart()
    rss_before = b.server.memory_mib()

    def touch(client: int, number: int) -> bytes:
        start = (client * 50 + number) * 1000
        return body(
            [
                request(
                    "bookings.create",
                    {"job_id": job_ids[i % len(job_ids)], "feature_id": many[i], "quantity": 1},
                    i + 1,
                )
                for i in range(start, start + 1000)
            ]
        )

    b.load("g  touch 100k features once", 2, touch, requests_per_client=50)
    print(
        f"  g  RSS before {rss_before:.0f} MiB, after touching 100k features "
        f"{b.server.memory_mib():.0f} MiB (peak {b.server.memory_mib('VmHWM'):.0f} MiB)"
    )
    if "i" in b.args.scenarios.split(","):
        scenario_a(b, features, jobs, label="i")


def summary(b: Bench) -> None:
    r = b.results

    def ratio(x: str, y: str) -> str:
        if x in r and y in r and r[y].results:
            return f"{r[x].results / r[x].seconds / (r[y].results / r[y].seconds) * 100:.0f}%"
        return "n/a"

    print("targets:")
    print(f"  (a) >= 80% of (f): {ratio('a', 'f')}")
    print(f"  (b) >= 80% of (a): {ratio('b', 'a')}")
    if "c" in r:
        print(f"  (c) >= 10,000 admissions/s: {r['c'].results / r['c'].seconds:.0f}")
    if "d" in r:
        print(f"  (d) p50 <= 50 ms: {r['d'].percentile(50) * 1000:.1f} ms")
    if "e" in r:
        print(f"  (e) p99 <= 10 ms: {r['e'].percentile(99) * 1000:.1f} ms")
    print(f"  (i) >= 90% of (a): {ratio('i', 'a')}")
    print(f"  (a) with --workers 2 vs (a): {ratio('a2', 'a')}")


if __name__ == "__main__":
    main()
