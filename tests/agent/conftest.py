"""Fixtures of the agent's end-to-end tests: one real Slurm for the session, whose
PrologSlurmctld/EpilogSlurmctld run ``lmrpc agent prolog|epilog`` with an env file each test
rewrites to point at its own real ``lmrpc serve`` (SQLite: no behaviour here depends on the
storage backend), and the license-tool simulator."""

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.simulator import install_bin
from tests.agent.harness import LICENSES, Cluster
from tests.agent.slurm import Slurm, SlurmUnavailable, running_slurm
from tests.server import running_server, server_env
from tests.tokens import TokenFactory


@pytest.fixture(scope="session")
def agent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("agent")
    install_bin(directory / "bin")
    return directory


@pytest.fixture(scope="session")
def slurm(agent_dir: Path) -> Iterator[Slurm]:
    lmrpc = Path(sys.executable).parent / "lmrpc"
    hooks = {}
    for hook in ("prolog", "epilog"):
        script = agent_dir / f"{hook}.sh"
        script.write_text(
            "#!/bin/sh\n"
            f"export LMRPC_AGENT_ENV_FILE={agent_dir / 'agent.env'}\n"
            f"exec {lmrpc} agent {hook} 2>>{agent_dir / 'hooks.log'}\n"
        )
        script.chmod(0o755)
        hooks[hook] = script
    try:
        with running_slurm(
            agent_dir / "slurm", LICENSES, hooks["prolog"], hooks["epilog"]
        ) as running:
            yield running
    except SlurmUnavailable as error:
        pytest.fail(str(error))


@pytest.fixture
def cluster(
    slurm: Slurm,
    agent_dir: Path,
    sqlite_template: Path,
    tokens: TokenFactory,
    tmp_path: Path,
) -> Iterator[Cluster]:
    """A fresh lmrpc on SQLite, the env file pointing at it, an empty Slurm queue."""
    database = tmp_path / "lmrpc.sqlite3"
    shutil.copy(sqlite_template, database)
    env = server_env(f"sqlite:///{database}", tokens, tmp_path / "data")
    with running_server(env, tmp_path) as server:
        cluster = Cluster(server, slurm, tokens, agent_dir, tmp_path)
        cluster.env_file.write_text(
            "".join(f"{key}={value}\n" for key, value in cluster.agent_env(hooks=True).items())
        )
        cluster.env_file.chmod(0o600)
        cluster.simulate({})
        try:
            yield cluster
        finally:
            cluster.reset()
            (agent_dir / "state.json").write_text(json.dumps({}))
