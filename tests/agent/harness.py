"""What the agent's end-to-end tests share: an lmrpc with a cluster configured, the
simulator's state, ``lmrpc agent …`` run as the console script, and waiting for Slurm."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.agent.slurm import Slurm
from tests.server import Server
from tests.tokens import TokenFactory

CLUSTER = "cluster-a"
RESERVATION = "lmrpc-test"
# Slurm's licenses for the session: tracked ones and one Slurm-local license.
LICENSES = {
    "abaqus.abaqus@flexlm": 10,
    "ansys.hpc@rlm": 6,
    "comsol.base@flexlm": 4,
    "scratch": 2,
}
# The agent's permissions (docs/security.md): feature:report, never feature:update.
AGENT_PERMISSIONS = (
    "config:read",
    "feature:read",
    "feature:report",
    "job:read",
    "job:create",
    "job:delete",
    "booking:delete",
    "status:update",
)
WAIT_S = 60  # generous bound for "it happens", never a timing claim
HOST = socket.gethostname().split(".")[0]
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class Cluster:
    server: Server
    slurm: Slurm
    tokens: TokenFactory
    agent_dir: Path
    tmp_path: Path
    admin: str = field(init=False)
    agent_token: str = field(init=False)

    def __post_init__(self) -> None:
        self.admin = self.tokens.mint("admin", client_id="operator", ttl=3600)
        self.agent_token = self.tokens.mint(*AGENT_PERMISSIONS, client_id=CLUSTER, ttl=3600)

    @property
    def env_file(self) -> Path:
        return self.agent_dir / "agent.env"

    @property
    def state_file(self) -> Path:
        return self.agent_dir / "state.json"

    def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, as_agent: bool = False
    ) -> Any:
        answer = self.server.rpc(
            self.agent_token if as_agent else self.admin, method, dict(params or {})
        )
        assert "result" in answer, f"{method}: {answer}"
        return answer["result"]

    def configure(
        self,
        product: str,
        features: Iterable[str],
        *,
        type_: str = "flexlm",
        servers: Iterable[str] = ("lic1:27000",),
        grace_time: int = 3600,
        cluster: str = CLUSTER,
    ) -> dict[str, Any]:
        """A configuration of this cluster with its license servers and features."""
        found = self.call("products.list", {"search": product})
        product_id = next((p["id"] for p in found if p["name"] == product), None)
        if product_id is None:
            product_id = self.call("products.create", {"name": product})["id"]
        result: dict[str, Any] = self.call(
            "configurations.create",
            {
                "name": f"{product}-{type_}-{cluster}",
                "cluster_client_id": cluster,
                "type": type_,
                "grace_time": grace_time,
                "license_servers": [
                    {"host": s.split(":")[0], "port": int(s.split(":")[1])} for s in servers
                ],
                "features": [{"name": name, "product_id": product_id} for name in features],
            },
        )
        return result

    def simulate(self, servers: Mapping[str, Any]) -> None:
        """The simulator's state: ``host:port`` → {features: {name: {total, used,
        checkouts}}, down}."""
        self.state_file.write_text(json.dumps(servers))

    def agent_env(self, *, hooks: bool = False) -> dict[str, str]:
        env = {
            "LMRPC_URL": self.server.url,
            "LMRPC_TOKEN": self.agent_token,
            "LMRPC_AGENT_RESERVATION": RESERVATION,
            "LMRPC_AGENT_TOOL_TIMEOUT": "5",
        }
        if hooks:
            return env
        bin_dir = self.agent_dir / "bin"
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("LMRPC_")},
            **env,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "SLURM_CONF": str(self.slurm.conf),
            "LMRPC_SIM_STATE": str(self.state_file),
            "LMRPC_AGENT_ENV_FILE": str(self.tmp_path / "no-env-file"),
        }

    def agent(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """``lmrpc agent ARGS`` as the console script, with the agent's environment."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "lmrpc"), "agent", *args],
            env={**self.agent_env(), **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def once(self, *args: str) -> dict[str, Any]:
        """One cycle; its JSON report (the cycle must succeed)."""
        result = self.agent("once", "--json", *args)
        assert result.returncode == 0, result.stderr + result.stdout
        cycle: dict[str, Any] = json.loads(result.stdout)
        return cycle

    def jobs(self) -> dict[str, dict[str, Any]]:
        """lmrpc's jobs of this cluster by Slurm job id."""
        return {j["slurm_job_id"]: j for j in self.call("jobs.by_client_id", as_agent=True)}

    def feature(self, product_feature: str) -> dict[str, Any]:
        product, name = product_feature.split(".")
        for feature in self.call("features.list", {"search": name}):
            if feature["product"]["name"] == product and feature["name"] == name:
                return dict(feature)
        raise AssertionError(f"no feature {product_feature}")

    def reset(self) -> None:
        """An empty queue and no reservation, for the next test."""
        self.slurm.run("scancel", "--user=root", check=False)
        wait_for("an empty Slurm queue", lambda: not self.slurm.run("squeue", "-h").stdout.strip())
        self.slurm.run("scontrol", "delete", f"ReservationName={RESERVATION}", check=False)
