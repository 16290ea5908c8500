"""The runner's I/O order: configurations read concurrently, each one's servers in order
until one answers; lmrpc read in one batch and written in one more. Real ``lmrpc serve``,
the real simulator as license tools, the session's real Slurm."""

import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from agent import license_tools
from agent.runner import Runner
from agent.settings import AgentSettings
from lmrpc.client import Client
from tests.agent.harness import AGENT_PERMISSIONS
from tests.agent.slurm import Slurm
from tests.server import Server
from tests.tokens import TokenFactory

TYPES = list(license_tools.DEFAULT_EXECUTABLES)


def test_configurations_are_read_concurrently_and_servers_in_order(
    server: Server,
    tokens: TokenFactory,
    slurm: Slurm,
    agent_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = tokens.mint("admin", client_id="operator")
    product = server.rpc(admin, "products.create", {"name": "sim"})["result"]
    state: dict[str, dict[str, Any]] = {}
    for index, type_ in enumerate(TYPES):
        first, second = f"a-{type_}", f"b-{type_}"
        server.rpc(
            admin,
            "configurations.create",
            {
                "name": type_,
                "cluster_client_id": "cluster-a",
                "type": type_,
                "license_servers": [{"host": first, "port": 1}, {"host": second, "port": 2}],
                "features": [{"name": f"f{index}", "product_id": product["id"]}],
            },
        )
        state[f"{first}:1"] = {"down": True}
        state[f"{second}:2"] = {"features": {f"f{index}": {"total": 3 + index}}}
    (tmp_path / "state.json").write_text(json.dumps(state))
    monkeypatch.setenv("LMRPC_SIM_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))

    # Every configuration's first (down) server waits until all six are being read at
    # once: read one after another, the barrier breaks and the test fails.
    together = threading.Barrier(len(TYPES), timeout=60)
    asked: dict[str, list[str]] = defaultdict(list)

    def run(command: license_tools.ToolCommand, timeout: float) -> license_tools.ToolResult:
        tool = Path(command.argv[0]).name
        if tool in license_tools.DEFAULT_EXECUTABLES.values():
            address = " ".join((*command.argv[1:], command.stdin or ""))
            asked[tool].append("first" if "a-" in address else "second")
            if "a-" in address:
                together.wait()
        return license_tools.run(command, timeout)

    bin_dir = agent_dir / "bin"
    settings = AgentSettings(
        url=server.url,
        token=tokens.mint(*AGENT_PERMISSIONS, client_id="cluster-a"),
        tools={t: str(bin_dir / exe) for t, exe in license_tools.DEFAULT_EXECUTABLES.items()},
        reservation="lmrpc-runner-test",
    )
    with Client(settings.url, settings.token) as client:
        requests: list[str] = []
        client.http.event_hooks["request"].append(lambda r: requests.append(r.url.path))
        cycle = Runner(settings, client, run).cycle()

    assert cycle.problems == [] and cycle.actions.fail_closed == []
    assert requests == ["/rpc", "/rpc"]  # one batch read, one batch written
    assert dict(asked) == {tool: ["first", "second"] for tool in asked} and len(asked) == 6
    features = server.rpc(admin, "features.list", {"sort_field": "name"})["result"]
    assert [(f["name"], f["total"]) for f in features] == [(f"f{i}", 3 + i) for i in range(6)]
