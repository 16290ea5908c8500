"""The agent's numbers: one reconcile cycle at scale, and the prolog's latency.

    python -m bench.agent cycle      # 6 configurations (one per type), 200 features, 2,000 jobs
    python -m bench.agent prolog     # p50/p99 of `lmrpc agent prolog` against a local lmrpc

Both start a real ``lmrpc serve`` on a fresh SQLite database and the license-tool
simulator. For the cycle, Slurm is two small scripts printing ``scontrol show lic`` and
``squeue`` of 2,000 running jobs (a real Slurm does not run 2,000 jobs on this machine).
They print their numbers; nothing here passes or fails.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.license_tools import DEFAULT_EXECUTABLES
from agent.runner import Runner
from agent.settings import AgentSettings
from agent.simulator import install_bin
from bench.run import Server, database
from lmrpc import keys
from lmrpc.client import Client
from tests.factories import feature_in

CLUSTER = "bench-agent"
PORT = 18_766
FEATURES = 200
JOBS = 2_000
TOTAL = 100


def _slurm_scripts(directory: Path, licenses: dict[str, int], job_ids: list[str]) -> None:
    """``scontrol``/``squeue`` stand-ins: fixed outputs, and every change accepted."""
    (directory / "licenses.txt").write_text(
        "".join(
            f"LicenseName={name} Total={TOTAL} Used={used} Free={TOTAL - used} Reserved=0\n"
            for name, used in licenses.items()
        )
    )
    (directory / "jobs.txt").write_text("".join(f"{j}|RUNNING|0:10\n" for j in job_ids))
    scripts = {
        "scontrol": f'case "$*" in *"show licenses"*) cat {directory}/licenses.txt ;; '
        f'*"show reservation"*) echo "ReservationName=lmrpc-licenses" ;; esac',
        "squeue": f"cat {directory}/jobs.txt",
    }
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)


def cycle(directory: Path) -> None:
    with database("sqlite", directory) as url:
        key = keys.load_or_create(directory)
        token = keys.mint(key, client_id=CLUSTER, ttl=3600)
        server = Server(url, directory, 1, PORT)
        try:
            _cycle(directory, server.base, token)
        finally:
            server.stop()


def _cycle(directory: Path, url: str, token: str) -> None:
    types = list(DEFAULT_EXECUTABLES)
    state: dict[str, Any] = {}
    names: list[tuple[str, str, str]] = []  # product, feature, type
    with Client(url, token) as client:
        product = client.call("products.create", {"name": "bench"})
        for index, type_ in enumerate(types):
            mine = [f"f{i}" for i in range(index, FEATURES, len(types))]
            client.call(
                "configurations.create",
                {
                    "name": f"bench-{type_}",
                    "cluster_client_id": CLUSTER,
                    "type": type_,
                    "license_servers": [{"host": f"lic-{type_}", "port": 27000 + index}],
                    "features": [{"name": n, "product_id": product["id"]} for n in mine],
                },
            )
            features = {n: {"total": TOTAL, "used": JOBS // FEATURES} for n in mine}
            state[f"lic-{type_}:{27000 + index}"] = {"features": features}
            names += [("bench", n, type_) for n in mine]
        client.call(
            "features.bulk_update",
            {
                "features": [
                    {"product_name": p, "feature_name": f, "total": TOTAL, "used": 0}
                    for p, f, _ in names
                ]
            },
        )
        jobs = [str(1_000_000 + i) for i in range(JOBS)]
        created = client.batch(
            [
                (
                    "jobs.create",
                    {
                        "slurm_job_id": job,
                        "username": f"user{i % 50}",
                        "lead_host": f"node{i % 300:03d}",
                        "bookings": [
                            {"product_feature": f"bench.{names[i % FEATURES][1]}", "quantity": 1}
                        ],
                    },
                )
                for i, job in enumerate(jobs)
            ]
        )
        failed = [job for job in created if not isinstance(job, dict)]
        assert not failed, f"jobs.create failed: {failed[:3]}"
    bin_dir = directory / "bin"
    install_bin(bin_dir)
    _slurm_scripts(bin_dir, {f"{p}.{f}@{t}": JOBS // FEATURES for p, f, t in names}, jobs)
    (directory / "state.json").write_text(json.dumps(state))
    os.environ["LMRPC_SIM_STATE"] = str(directory / "state.json")
    settings = AgentSettings(
        url=url,
        token=token,
        tools={t: str(bin_dir / exe) for t, exe in DEFAULT_EXECUTABLES.items()},
        scontrol=str(bin_dir / "scontrol"),
        squeue=str(bin_dir / "squeue"),
    )
    print(f"cycle: {len(types)} configurations, {FEATURES} features, {JOBS} running jobs")
    for run in range(3):
        with Client(url, token) as client:
            requests: list[str] = []
            client.http.event_hooks["request"].append(
                lambda r, seen=requests: seen.append(r.url.path)
            )
            cpu, children = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = Runner(settings, client).cycle()
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu
            child = resource.getrusage(resource.RUSAGE_CHILDREN)
            tools = child.ru_utime + child.ru_stime - children.ru_utime - children.ru_stime
        print(
            f"  run {run + 1}: wall {wall:.3f} s, agent CPU {cpu:.3f} s, tools' CPU {tools:.3f} s,"
            f" {len(requests)} HTTP requests to lmrpc, {len(done.actions.releases)} releases,"
            f" {sum(done.actions.reservation.values())} reserved, problems {done.problems}"
        )


def prolog(directory: Path, runs: int) -> None:
    with database("sqlite", directory) as url:
        key = keys.load_or_create(directory)
        token = keys.mint(key, client_id=CLUSTER, ttl=3600)
        feature_in(url, 10**6, cluster=CLUSTER, product="bench", name="f")
        server = Server(url, directory, 1, PORT)
        try:
            _prolog(directory, server.base, token, runs)
        finally:
            server.stop()


def _prolog(directory: Path, url: str, token: str, runs: int) -> None:
    env_file = directory / "agent.env"
    env_file.write_text(f"LMRPC_URL={url}\nLMRPC_TOKEN={token}\n")
    env_file.chmod(0o600)
    lmrpc = str(Path(sys.executable).parent / "lmrpc")
    base = {"PATH": os.environ["PATH"], "LMRPC_AGENT_ENV_FILE": str(env_file)}

    def timed(argv: list[str], env: dict[str, str]) -> float:
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        return time.perf_counter() - started

    def show(name: str, samples: list[float]) -> None:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(
            f"  {name:<42} p50 {statistics.median(samples) * 1000:6.1f} ms"
            f"  p99 {p99 * 1000:6.1f} ms  (n={len(samples)})"
        )

    job = {"SLURM_JOB_USER": "alice", "SLURM_JOB_NODELIST": "node01"}
    print(f"prolog: {runs} runs each, lmrpc at {url}")
    show(
        "python -c pass (interpreter start)",
        [timed([sys.executable, "-c", "pass"], base) for _ in range(runs)],
    )
    show(
        "prolog without tracked licenses",
        [
            timed([lmrpc, "agent", "prolog"], {**base, "SLURM_JOB_LICENSES": "scratch:1"})
            for _ in range(runs)
        ],
    )
    booking, release = [], []
    for i in range(runs):
        env = {**base, **job, "SLURM_JOB_ID": str(i), "SLURM_JOB_LICENSES": "bench.f@flexlm:1"}
        booking.append(timed([lmrpc, "agent", "prolog"], env))
        release.append(timed([lmrpc, "agent", "epilog"], env))
    show("prolog booking one license (jobs.create)", booking)
    show("epilog (jobs.delete_by_slurm_id)", release)
    show(
        "lmrpc --help (the typer CLI, for comparison)",
        [timed([lmrpc, "--help"], base) for _ in range(min(runs, 10))],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("what", choices=["cycle", "prolog"])
    parser.add_argument("--runs", type=int, default=50, help="prolog runs per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lmrpc-bench-agent-") as tmp:
        if args.what == "cycle":
            cycle(Path(tmp))
        else:
            prolog(Path(tmp), args.runs)


if __name__ == "__main__":
    main()
