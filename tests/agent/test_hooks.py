"""``lmrpc agent prolog|epilog`` as slurmctld runs them (the console script, a bare
environment plus the env file) against a real ``lmrpc serve`` on both backends."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agent.harness import AGENT_PERMISSIONS
from tests.agent.slurm import Slurm
from tests.server import Server, free_port
from tests.tokens import TokenFactory

LMRPC = str(Path(sys.executable).parent / "lmrpc")


def hook(name: str, env_file: Path, **job: str) -> subprocess.CompletedProcess[str]:
    """The hook with only what slurmctld gives it: no LMRPC_* but the env file's path."""
    env = {"PATH": os.environ["PATH"], "LMRPC_AGENT_ENV_FILE": str(env_file), **job}
    return subprocess.run(
        [LMRPC, "agent", name], env=env, capture_output=True, text=True, timeout=60
    )


def write_env(path: Path, **values: str) -> Path:
    path.write_text("# agent\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


@pytest.fixture
def env_file(server: Server, tokens: TokenFactory, tmp_path: Path) -> Path:
    admin = tokens.mint("admin", client_id="operator")
    product = server.rpc(admin, "products.create", {"name": "abaqus"})["result"]
    config = server.rpc(
        admin,
        "configurations.create",
        {
            "name": "abaqus",
            "cluster_client_id": "cluster-a",
            "type": "flexlm",
            "license_servers": [{"host": "lic1", "port": 27000}],
            "features": [{"name": "abaqus", "product_id": product["id"]}],
        },
    )["result"]
    feature = config["features"][0]["id"]
    server.rpc(admin, "features.update", {"id": feature, "total": 5, "used": 0})
    token = tokens.mint(*AGENT_PERMISSIONS, client_id="cluster-a")
    return write_env(tmp_path / "agent.env", LMRPC_URL=server.url, LMRPC_TOKEN=f'"{token}"')


def jobs(server: Server, tokens: TokenFactory) -> dict[str, Any]:
    token = tokens.mint("job:read", client_id="cluster-a")
    return {j["slurm_job_id"]: j for j in server.rpc(token, "jobs.by_client_id")["result"]}


def job(job_id: str, licenses: str, nodelist: str = "n07.cluster.example") -> dict[str, str]:
    return {
        "SLURM_JOB_ID": job_id,
        "SLURM_JOB_USER": "alice",
        "SLURM_JOB_NODELIST": nodelist,
        "SLURM_JOB_LICENSES": licenses,
    }


def test_prolog_books_the_tracked_licenses_and_epilog_releases_them(
    server: Server, tokens: TokenFactory, env_file: Path
) -> None:
    admitted = hook("prolog", env_file, **job("11", "abaqus.abaqus@flexlm:2,scratch:1"))
    assert admitted.returncode == 0, admitted.stderr
    booked = jobs(server, tokens)["11"]
    assert (booked["username"], booked["lead_host"]) == ("alice", "n07.cluster.example")
    assert [b["quantity"] for b in booked["bookings"]] == [2]

    retried = hook("prolog", env_file, **job("11", "abaqus.abaqus@flexlm:2"))
    assert retried.returncode == 0  # -32009: booked by the first try
    assert len(jobs(server, tokens)["11"]["bookings"]) == 1

    for _ in range(2):  # the second time there is nothing left: still success
        released = hook("epilog", env_file, **job("11", "abaqus.abaqus@flexlm:2"))
        assert released.returncode == 0, released.stderr
        assert "11" not in jobs(server, tokens)


def test_prolog_refuses_a_job_lmrpc_has_no_licenses_for(
    server: Server, tokens: TokenFactory, env_file: Path
) -> None:
    refused = hook("prolog", env_file, **job("12", "abaqus.abaqus@flexlm:6"))
    assert refused.returncode == 1
    assert "Not enough licenses" in refused.stderr
    assert "12" not in jobs(server, tokens)


def test_prolog_ignores_features_lmrpc_does_not_track(
    server: Server, tokens: TokenFactory, env_file: Path
) -> None:
    mixed = "ansys.hpc@rlm:4,abaqus.abaqus@flexlm:1"
    assert hook("prolog", env_file, **job("13", mixed)).returncode == 0
    assert [b["quantity"] for b in jobs(server, tokens)["13"]["bookings"]] == [1]
    assert hook("prolog", env_file, **job("14", "ansys.hpc@rlm:4")).returncode == 0
    assert "14" not in jobs(server, tokens)  # nothing left to book: like a job without any


def test_prolog_without_tracked_licenses_needs_no_lmrpc(tmp_path: Path) -> None:
    nowhere = write_env(tmp_path / "agent.env", LMRPC_URL=f"http://127.0.0.1:{free_port()}")
    for licenses in ("", "(null)", "scratch:2,matlab"):
        assert hook("prolog", nowhere, **job("15", licenses)).returncode == 0
        assert hook("epilog", nowhere, **job("15", licenses)).returncode == 0


def test_prolog_when_lmrpc_is_unreachable_follows_the_setting(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    wanted = job("16", "abaqus.abaqus@flexlm:1")
    refuse = hook("prolog", write_env(tmp_path / "refuse.env", LMRPC_URL=url), **wanted)
    assert refuse.returncode == 1 and "cannot connect" in refuse.stderr
    admit_env = write_env(
        tmp_path / "admit.env", LMRPC_URL=url, LMRPC_AGENT_PROLOG_ON_ERROR="admit"
    )
    assert hook("prolog", admit_env, **wanted).returncode == 0
    assert hook("epilog", admit_env, **wanted).returncode == 0  # never requeues a job


def test_the_environment_wins_over_the_env_file_which_must_be_private(
    server: Server, tokens: TokenFactory, env_file: Path, tmp_path: Path
) -> None:
    env_file.chmod(0o644)
    wanted = job("17", "abaqus.abaqus@flexlm:1")
    admitted = hook("prolog", env_file, **wanted)
    assert admitted.returncode == 0
    assert "readable by others" in admitted.stderr
    overridden = hook(
        "prolog",
        env_file,
        LMRPC_URL=f"http://127.0.0.1:{free_port()}",
        **job("18", "abaqus.abaqus@flexlm:1"),
    )
    assert overridden.returncode == 1 and "cannot connect" in overridden.stderr


def test_the_lead_host_of_a_node_range_is_its_first_node(
    server: Server, tokens: TokenFactory, env_file: Path, slurm: Slurm
) -> None:
    wanted = job("19", "abaqus.abaqus@flexlm:1", nodelist="gpu[07-09],cpu1")
    assert hook("prolog", env_file, SLURM_CONF=str(slurm.conf), **wanted).returncode == 0
    assert jobs(server, tokens)["19"]["lead_host"] == "gpu07"
