"""The agent against a real Slurm (AGENT.md §6): slurmctld runs ``lmrpc agent prolog|epilog``
for every job, ``lmrpc agent once|run`` reads the simulated license servers and Slurm and
reports to a real ``lmrpc serve``."""

import signal
import subprocess
import sys
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from tests.agent.harness import HOST, RESERVATION, Cluster, wait_for
from tests.server import free_port

ABAQUS = "abaqus.abaqus@flexlm"


def flexlm_server(
    total: int, *checkouts: tuple[str, str, int], used: int | None = None
) -> dict[str, Any]:
    feature: dict[str, Any] = {
        "total": total,
        "checkouts": [{"username": u, "lead_host": h, "quantity": q} for u, h, q in checkouts],
    }
    if used is not None:
        feature["used"] = used
    return {"features": {"abaqus": feature}}


def state(cluster: Cluster, job_id: str) -> str:
    return cluster.slurm.job_state(job_id)


def job_field(cluster: Cluster, job_id: str, name: str) -> str:
    out = cluster.slurm.run("scontrol", "-o", "show", "job", job_id).stdout
    fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
    return fields.get(name, "")


def test_a_job_is_booked_while_it_runs_and_released_when_it_ends(cluster: Cluster) -> None:
    cluster.configure("abaqus", ["abaqus"])
    cluster.simulate({"lic1:27000": flexlm_server(10)})
    cluster.once()
    assert cluster.feature("abaqus.abaqus")["total"] == 10

    job = cluster.slurm.sbatch("-L", f"{ABAQUS}:3", "-o", "/dev/null", wrap="sleep 2")
    wait_for("the job to run", lambda: state(cluster, job) == "RUNNING")
    booked = cluster.jobs()[job]
    assert booked["username"] == "root" and booked["lead_host"] == HOST
    assert [b["quantity"] for b in booked["bookings"]] == [3]
    assert cluster.feature("abaqus.abaqus")["booked_total"] == 3

    wait_for("the job to end", lambda: state(cluster, job) in ("COMPLETED", ""))
    wait_for("the epilog to release the job", lambda: job not in cluster.jobs())
    assert cluster.feature("abaqus.abaqus")["booked_total"] == 0


def test_a_job_lmrpc_refuses_waits_until_its_licenses_are_free(cluster: Cluster) -> None:
    cluster.configure("abaqus", ["abaqus"])
    cluster.simulate({"lic1:27000": flexlm_server(10)})
    cluster.once()
    holder = cluster.call(
        "jobs.create",
        {
            "slurm_job_id": "elsewhere-1",
            "username": "alice",
            "lead_host": "n1",
            "cluster_client_id": "cluster-a",
            "bookings": [{"product_feature": "abaqus.abaqus", "quantity": 9}],
        },
    )

    job = cluster.slurm.sbatch("-L", f"{ABAQUS}:3", "-o", "/dev/null", wrap="sleep 2")
    # Slurm sees 10 free licenses and starts it; the prolog's -32010 requeues it.
    wait_for("the prolog to refuse the job", lambda: int(job_field(cluster, job, "Restarts") or 0))
    assert state(cluster, job) != "RUNNING"
    assert job not in cluster.jobs()

    wait_for("the job to be requeued", lambda: state(cluster, job) == "PENDING")

    cluster.call("jobs.delete", {"id": holder["id"]})
    # Slurm delays a requeued job's next start (BeginTime, about two minutes): bring it
    # forward so the test need not wait; the prolog decides again on that start.
    cluster.slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")
    wait_for("the job to run once the licenses are free", lambda: job in cluster.jobs())
    assert [b["quantity"] for b in cluster.jobs()[job]["bookings"]] == [3]


def test_the_reservation_hides_licenses_used_elsewhere_or_booked(cluster: Cluster) -> None:
    cluster.configure("abaqus", ["abaqus"])
    # 4 checked out by a workstation outside Slurm; 2 booked by a job not yet checked out.
    other = cluster.configure("abaqus", ["abaqus"], cluster="cluster-b")  # same server
    cluster.call("features.update", {"id": other["features"][0]["id"], "total": 10, "used": 4})
    cluster.simulate({"lic1:27000": flexlm_server(10, ("bob", "ws7", 4))})
    cluster.call(
        "jobs.create",
        {
            "slurm_job_id": "77",
            "username": "carol",
            "lead_host": "n2",
            "cluster_client_id": "cluster-b",
            "bookings": [{"product_feature": "abaqus.abaqus", "quantity": 2}],
        },
    )
    cycle = cluster.once()
    row = next(f for f in cycle["features"] if f["product_feature"] == "abaqus.abaqus")
    assert (row["server_used"], row["slurm_used"], row["booked"]) == (4, 0, 2)
    assert cycle["reservation"] == {ABAQUS: 6}
    assert cluster.slurm.licenses()[ABAQUS]["Reserved"] == 6
    # The server's checkouts reached lmrpc with the counters (features.checkouts).
    ours = cluster.feature("abaqus.abaqus")
    held = cluster.call("features.checkouts", {"feature_id": ours["id"]})
    assert [(c["username"], c["lead_host"], c["quantity"]) for c in held] == [("bob", "ws7", 4)]
    assert cluster.slurm.licenses()["scratch"]["Reserved"] == 0  # Slurm-local: left alone

    # 6 of 10 hidden: a job asking 5 never starts (Slurm's own refusal, not the prolog's).
    job = cluster.slurm.sbatch("-L", f"{ABAQUS}:5", "-o", "/dev/null", wrap="sleep 1")
    wait_for(
        "Slurm to hold the job for licenses",
        lambda: job_field(cluster, job, "Reason") == "Licenses",
    )
    assert job_field(cluster, job, "Restarts") == "0"
    cluster.slurm.run("scancel", job)


def test_failover_to_the_second_server_and_fail_closed_when_all_are_down(
    cluster: Cluster,
) -> None:
    cluster.configure("abaqus", ["abaqus"], servers=["lic1:27000", "lic2:27001"])
    cluster.simulate({"lic1:27000": {"down": True}, "lic2:27001": flexlm_server(8, used=1)})
    cycle = cluster.once()
    assert cluster.feature("abaqus.abaqus")["total"] == 8
    assert cycle["fail_closed"] == []

    cluster.simulate({"lic1:27000": {"down": True}, "lic2:27001": {"down": True}})
    cycle = cluster.once()
    assert cycle["fail_closed"] == ["abaqus.abaqus"]
    assert cluster.feature("abaqus.abaqus")["total"] == 0
    assert cluster.slurm.licenses()[ABAQUS]["Reserved"] == 10


def test_stale_jobs_and_checked_out_bookings_are_released_in_one_cycle(
    cluster: Cluster,
) -> None:
    cluster.configure("abaqus", ["abaqus"])
    cluster.configure("ansys", ["hpc"], type_="rlm", servers=["lic3:5053"], grace_time=1)
    cluster.simulate(
        {
            "lic1:27000": flexlm_server(10),
            "lic3:5053": {"features": {"hpc": {"total": 6}}},
        }
    )
    cluster.once()
    # A job whose epilog never ran: lmrpc has it, Slurm does not.
    cluster.call(
        "jobs.create",
        {
            "slurm_job_id": "123456",
            "username": "dave",
            "lead_host": "n3",
            "cluster_client_id": "cluster-a",
            "bookings": [{"product_feature": "abaqus.abaqus", "quantity": 1}],
        },
    )
    past_grace = cluster.slurm.sbatch("-L", "ansys.hpc@rlm:1", "-o", "/dev/null", wrap="sleep 60")
    checked_out = cluster.slurm.sbatch("-L", f"{ABAQUS}:2", "-o", "/dev/null", wrap="sleep 60")

    def running(job: str) -> bool:
        return state(cluster, job) == "RUNNING"

    for job in (past_grace, checked_out):
        wait_for(f"job {job} to run", partial(running, job))
    wait_for(
        "the job to pass its grace time",
        lambda: int(job_field(cluster, past_grace, "RunTime").split(":")[-1]) >= 2,
    )
    # Its licenses now show on the server, by root on this host (any case, any domain).
    cluster.simulate(
        {
            "lic1:27000": flexlm_server(10, ("ROOT", f"{HOST.upper()}.cluster.example", 2)),
            "lic3:5053": {"features": {"hpc": {"total": 6, "used": 1}}},
        }
    )
    cycle = cluster.once()

    released = {(r["kind"], r["slurm_job_id"]) for r in cycle["released"]}
    assert released == {("job", "123456"), ("job", past_grace), ("booking", checked_out)}
    jobs = cluster.jobs()
    assert set(jobs) == {checked_out} and jobs[checked_out]["bookings"] == []
    assert cluster.feature("abaqus.abaqus")["booked_total"] == 0
    assert cluster.feature("ansys.hpc")["booked_total"] == 0


def test_a_stopped_agent_s_reservation_lapses_within_three_intervals(cluster: Cluster) -> None:
    cluster.configure("abaqus", ["abaqus"])
    cluster.simulate({"lic1:27000": flexlm_server(10, ("bob", "ws7", 5))})
    log = cluster.tmp_path / "agent.log"
    with open(log, "w") as out:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "lmrpc"), "agent", "run"],
            env={**cluster.agent_env(), "LMRPC_AGENT_INTERVAL": "3"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("the reservation", lambda: cluster.slurm.licenses()[ABAQUS]["Reserved"] == 5)
        status = cluster.call("clusters.get_status", {"cluster_client_id": "cluster-a"})
        assert status["interval"] == 3
    finally:
        stopped = datetime.now()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
    assert "cycle duration_s=" in log.read_text()

    shown = cluster.slurm.run("scontrol", "-o", "show", "reservation", RESERVATION).stdout
    fields = dict(item.split("=", 1) for item in shown.split() if "=" in item)
    # The last cycle before SIGTERM pushed the end to that moment + 3 intervals (Slurm keeps
    # whole seconds, local time).
    assert datetime.fromisoformat(fields["EndTime"]) <= stopped + timedelta(seconds=3 * 3 + 1)
    wait_for("the reservation to lapse", lambda: cluster.slurm.licenses()[ABAQUS]["Reserved"] == 0)


def test_dry_run_changes_nothing_and_failures_have_their_exit_status(cluster: Cluster) -> None:
    cluster.configure("abaqus", ["abaqus"])
    cluster.simulate({"lic1:27000": {"down": True}})
    table = cluster.agent("once", "--dry-run")
    assert table.returncode == 0, table.stderr
    assert "FAIL-CLOSED" in table.stdout and f"{ABAQUS}:10 (dry run)" in table.stdout
    assert cluster.slurm.licenses()[ABAQUS]["Reserved"] == 0
    status = cluster.server.rpc(
        cluster.admin, "clusters.get_status", {"cluster_client_id": "cluster-a"}
    )
    assert status["error"]["code"] == -32004  # not even the status was reported

    unreachable = cluster.agent("once", "--url", f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 3, unreachable.stderr
    refused = cluster.agent("once", "--token", "not-a-token")
    assert refused.returncode == 3 and "authentication failed" in refused.stderr
    forbidden = cluster.agent(
        "once", "--token", cluster.tokens.mint("job:read", client_id="cluster-a")
    )
    assert forbidden.returncode == 1 and "cycle failed" in forbidden.stderr
