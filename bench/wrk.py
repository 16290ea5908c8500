"""The targets of issue 11, measured the way the side-by-side comparison measured them.

    python -m bench.wrk --backend sqlite --duration 10
    python -m bench.wrk --backend postgresql --scenarios book,prolog,healthz
    python -m bench.wrk --big        # also 1M bookings (100k jobs) stored: bookings and jobs

Throughput comes from wrk (2 threads, keep-alive) driven by bench/lua/rpc.lua; the server's
CPU time per request from /proc (user + system of the server's processes over the run),
which stays steady on a machine shared with other work where requests/s do not; the tail
from the fixed-rate client of bench/loadgen.py. It prints one table with every target and
✔ or ✘. Nothing here is a pass/fail test.
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

from bench import loadgen, seed
from bench.run import BIG, CLUSTER, Server, body, database
from lmrpc import keys
from lmrpc.client import request
from tests.server import free_port

LUA = Path(__file__).with_name("lua") / "rpc.lua"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measure:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # the server's CPU time per request
    db_cpu_ms: float = 0.0  # the local PostgreSQL's CPU time per request (0 on SQLite)

    @property
    def all_cpu_ms(self) -> float:
        return self.cpu_ms + self.db_cpu_ms

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _cpu_ticks(stat: Path) -> int:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def cpu_seconds(server: Server) -> float:
    """User + system CPU of the server's processes so far (/proc/<pid>/stat)."""
    return sum(_cpu_ticks(Path(f"/proc/{pid}/stat")) for pid in server.pids()) / TICKS


def postgres_cpu_seconds() -> float:
    """User + system CPU so far of the local PostgreSQL's processes alive now (the server's
    pooled connections live through a run, so the difference over a run is its share)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().startswith(f"{stat.parent.name} (postgres)"):
                total += _cpu_ticks(stat)
        except OSError:  # the process ended while the list was read
            continue
    return total / TICKS


class Run:
    def __init__(self, directory: Path, url: str, duration: float) -> None:
        self.url = url
        self.duration = duration
        engine = seed.engine(url)
        self.engine = engine
        self.features = seed.features_of(engine, CLUSTER, 65, BIG)
        self.jobs = seed.jobs_of(engine, CLUSTER, 64, "bench-")
        seed.features_of(engine, CLUSTER, 1000, 10_000, product="bulk")
        self.token = keys.mint(keys.load_or_create(directory), client_id=CLUSTER, ttl=24 * 3600)
        self.server = Server(url, directory, 1, port=free_port())

    def measured(self, work: Callable[[], Measure]) -> Measure:
        before, db_before = cpu_seconds(self.server), self.db_cpu_seconds()
        result = work()
        per_request = 1000 / max(result.requests, 1)
        result.cpu_ms = (cpu_seconds(self.server) - before) * per_request
        result.db_cpu_ms = (self.db_cpu_seconds() - db_before) * per_request
        return result

    def db_cpu_seconds(self) -> float:
        return postgres_cpu_seconds() if self.url.startswith("postgresql") else 0.0

    def wrk(
        self, template: str, connections: int, *, path: str = "/rpc", get: bool = False
    ) -> Measure:
        env = {
            **os.environ,
            "LMRPC_TOKEN": self.token,
            "LMRPC_TEMPLATE": template,
            "LMRPC_FEATURES": ",".join(map(str, self.features[:64])),
            "LMRPC_JOBS": ",".join(map(str, self.jobs)),
            "LMRPC_METHOD": "GET" if get else "POST",
        }
        command = ["wrk", "-t2", f"-c{connections}", f"-d{self.duration:.0f}s", "-s", str(LUA)]

        def work() -> Measure:
            output = subprocess.run(
                [*command, self.server.base + path], env=env, capture_output=True, text=True
            ).stdout
            line = next(x for x in output.splitlines() if x.startswith("LMRPC "))
            totals = json.loads(line.removeprefix("LMRPC "))
            print(f"           wrk {totals}", flush=True)  # the errors by kind
            errors = totals["errors"] + totals["http_errors"] + totals["socket_errors"]
            return Measure(
                totals["requests"],
                totals["seconds"],
                errors,
                totals["p50_ms"],
                totals["p99_ms"],
                0.0,
            )

        return self.measured(work)

    def loadgen(
        self,
        make_body: loadgen.BodyMaker,
        clients: int,
        *,
        duration: float | None = None,
        requests_per_client: int | None = None,
        rate: float | None = None,
    ) -> Measure:
        def work() -> Measure:
            stats = trio.run(
                lambda: loadgen.run(
                    self.server.base + "/rpc",
                    self.token,
                    clients,
                    make_body,
                    duration=duration,
                    requests_per_client=requests_per_client,
                    rate=rate,
                )
            )
            errors = sum(stats.errors.values()) + stats.http_errors
            return Measure(
                stats.requests,
                stats.seconds,
                errors,
                stats.percentile(50) * 1000,
                stats.percentile(99) * 1000,
                0.0,
            )

        return self.measured(work)


BOOK = (
    json.dumps(
        request("bookings.create", {"job_id": 0, "feature_id": 0, "quantity": 1}, 1),
        separators=(",", ":"),
    )
    .replace('"job_id":0', '"job_id":{job}')
    .replace('"feature_id":0', '"feature_id":{feature}')
)


def prolog_template(run: int) -> str:
    """jobs.create with two bookings, as the slurmctld prolog sends it."""
    params = {
        "slurm_job_id": f"p{run}-UNIQUE",
        "username": "bench",
        "lead_host": "node001",
        "bookings": [
            {"product_feature": "bench.f0", "quantity": 1},
            {"product_feature": "bench.f1", "quantity": 1},
        ],
    }
    return json.dumps(request("jobs.create", params, 1), separators=(",", ":")).replace(
        "UNIQUE", "{unique}"
    )


def batch_template() -> str:
    return "[" + ",".join(BOOK.replace('"id":1', f'"id":{i + 1}') for i in range(100)) + "]"


def bulk_body(client: int, number: int) -> bytes:
    entries = [
        {
            "product_name": "bulk",
            "feature_name": f"f{i}",
            "total": 10_000,
            "used": (i + number) % 100,
        }
        for i in range(1000)
    ]
    return body(request("features.bulk_update", {"features": entries}, 1))


@dataclass
class Row:
    measure: str
    target: str
    value: str
    met: bool


def flat(measure: str, few: Measure, stored: Measure, unit: str) -> Row:
    """Whether a request costs as much with many rows stored: CPU per request (lmrpc's and
    the database's) with few rows as a share of the same with many."""
    share = few.all_cpu_ms / stored.all_cpu_ms
    return Row(
        f"{measure} (CPU per request)",
        "≥ 95 %",
        f"{share:.0%} ({stored.rate:,.0f} {unit}, {stored.all_cpu_ms:.2f} ms CPU)",
        share >= 0.95 and stored.errors == 0,
    )


def scenarios(run: Run, wanted: list[str], big: bool) -> list[Row]:
    rows: list[Row] = []
    book = run.wrk(BOOK, 16)
    print(f"  book     {book}", flush=True)
    rows.append(
        Row(
            "single `bookings.create`, 16 connections",
            "(reference)",
            f"{book.rate:,.0f} req/s",
            True,
        )
    )
    rows.append(
        Row(
            "single `bookings.create`, server CPU per request",
            "≤ 1.0 ms",
            f"{book.cpu_ms:.2f} ms"
            + (f" (+ {book.db_cpu_ms:.2f} ms database)" if book.db_cpu_ms else ""),
            book.cpu_ms <= 1.0,
        )
    )
    prolog: Measure | None = None
    if "prolog" in wanted:
        prolog = run.wrk(prolog_template(1), 16)
        print(f"  prolog   {prolog}", flush=True)
        share = prolog.rate / book.rate
        # What the rates would be on a quiet machine, where lmrpc and the database share
        # the cores and both are CPU-bound.
        by_cpu = book.all_cpu_ms / prolog.all_cpu_ms
        database = f" + {prolog.db_cpu_ms:.2f} ms database" if prolog.db_cpu_ms else ""
        rows.append(
            Row(
                "`jobs.create` with 2 bookings, 16 connections",
                "≥ 80 % of single bookings (judged by CPU per request)",
                f"{prolog.rate:,.0f} jobs/s = {share:.0%}; "
                f"{prolog.cpu_ms:.2f} ms CPU{database} = {by_cpu:.0%}",
                by_cpu >= 0.8 and prolog.errors == 0,
            )
        )
    if "batch" in wanted:
        batch = run.wrk(batch_template(), 8)
        print(f"  batch    {batch}", flush=True)
        rows.append(
            Row(
                "batches of 100 `bookings.create`, 8 connections",
                "≥ 10,000 admissions/s",
                f"{batch.rate * 100:,.0f}/s ({batch.cpu_ms / 100:.3f} ms CPU each)",
                batch.rate * 100 >= 10_000 and batch.errors == 0,
            )
        )
    if "tail" in wanted:
        features, jobs = run.features[:64], run.jobs

        def one(client: int, number: int) -> bytes:
            params = {
                "job_id": jobs[client % len(jobs)],
                "feature_id": features[(client * 2 + number) % len(features)],
                "quantity": 1,
            }
            return body(request("bookings.create", params, 1))

        tail = run.loadgen(one, 8, duration=run.duration, rate=50.0)
        print(f"  tail     {tail}", flush=True)
        rows.append(
            Row(
                "p99 of `bookings.create` at a fixed 50 req/s",
                "≤ 10 ms",
                f"p50 {tail.p50_ms:.1f}, p99 {tail.p99_ms:.1f} ms",
                tail.p99_ms <= 10,
            )
        )
    if "bulk" in wanted:
        bulk = run.loadgen(bulk_body, 1, requests_per_client=50)
        print(f"  bulk     {bulk}", flush=True)
        rows.append(
            Row(
                "`features.bulk_update` of 1,000 features, one client",
                "p50 ≤ 30 ms",
                f"p50 {bulk.p50_ms:.1f} ms ({bulk.cpu_ms:.1f} ms CPU)",
                bulk.p50_ms <= 30,
            )
        )
    if "healthz" in wanted:
        health = run.wrk("", 32, path="/healthz", get=True)
        print(f"  healthz  {health}", flush=True)
        rows.append(
            Row(
                "`GET /healthz`, 32 connections",
                "≥ 2,000 req/s",
                f"{health.rate:,.0f} req/s ({health.cpu_ms:.2f} ms CPU)",
                health.rate >= 2000 and health.errors == 0,
            )
        )
    if big:
        many = seed.features_of(run.engine, CLUSTER, 100_000, BIG, product="mem")
        seed.bookings_on(
            run.engine, seed.jobs_of(run.engine, CLUSTER, 100_000, "mem-"), many, 1_000_000
        )
        seed.settle(run.engine)
        stored = run.wrk(BOOK, 16)
        print(f"  big      {stored}", flush=True)
        rows.append(flat("single bookings, 1M stored vs empty", book, stored, "req/s"))
        if prolog is not None:
            grown = run.wrk(prolog_template(2), 16)
            print(f"  big job  {grown}", flush=True)
            label = "`jobs.create` with 2 bookings, 100k jobs stored vs few"
            rows.append(flat(label, prolog, grown, "jobs/s"))
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| measure | target | measured | |", "|---|---|---|---|"]
    lines += [f"| {r.measure} | {r.target} | {r.value} | {'✔' if r.met else '✘'} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--scenarios", default="prolog,batch,tail,bulk,healthz")
    parser.add_argument(
        "--big", action="store_true", help="also 1M bookings (100k jobs) stored (slow)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp, database(args.backend, Path(tmp)) as url:
        run = Run(Path(tmp), url, args.duration)
        try:
            httpx.get(run.server.base + "/healthz").raise_for_status()
            print(f"lmrpc vs issue 11: {args.backend}, {os.cpu_count()} cores", flush=True)
            rows = scenarios(run, args.scenarios.split(","), args.big)
            mismatched, past = seed.overbooked(run.engine)
            rows.append(
                Row(
                    "integrity: booked_total = Σ bookings, nothing past total",
                    "0 and 0",
                    f"{mismatched} and {past}",
                    mismatched == past == 0,
                )
            )
            print(table(rows))
        finally:
            run.server.stop()


if __name__ == "__main__":
    main()
