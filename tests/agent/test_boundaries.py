"""What the agent may import: never the service's storage, actors or methods (it speaks
JSON-RPC only), and on the prolog's hot path nothing of the typer CLI or pydantic."""

import json
import subprocess
import sys

SERVICE = ("actors", "storage", "lmrpc.methods", "sqlalchemy", "alembic")
CLI = ("typer", "rich", "pydantic", "click", "trio", "anyio")


def imported_by(code: str, *argv: str) -> set[str]:
    loaded = "sorted(k for k, v in sys.modules.items() if v is not None)"  # None: blocked
    probe = f"{code}\nimport json, sys\nprint(json.dumps({loaded}), file=sys.stderr)"
    result = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60
    )
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def roots(modules: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in modules if m.startswith(prefixes)}


def test_the_agent_never_imports_the_service() -> None:
    modules = imported_by(
        "import agent.cli, agent.runner, agent.report, agent.hooks\n"
        "from agent.cli import _settings\n_settings(None, None)"
    )
    assert roots(modules, SERVICE) == set()


def test_the_hooks_start_without_the_cli() -> None:
    code = (
        "import os, sys\n"
        "os.environ.update(SLURM_JOB_ID='1', SLURM_JOB_LICENSES='a.b@flexlm:1',\n"
        "    LMRPC_URL='http://127.0.0.1:9', LMRPC_AGENT_ENV_FILE='/nonexistent')\n"
        "sys.argv = ['lmrpc', 'agent', 'prolog']\n"
        "from lmrpc.console import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    modules = imported_by(code)
    assert "httpx" in modules and "agent.hooks" in modules  # it did try to book
    assert roots(modules, CLI + SERVICE) == set()
