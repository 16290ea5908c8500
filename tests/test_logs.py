"""One structured log line per call, plain or JSON lines, from a real server."""

import json
from pathlib import Path

import pytest

from tests.server import running_server, server_env
from tests.tokens import TokenFactory

# The log lines do not depend on the backend: these run once, on SQLite.
ONCE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@ONCE
def test_json_lines_one_per_call(database_url: str, tokens: TokenFactory, tmp_path: Path) -> None:
    env = server_env(database_url, tokens, tmp_path / "data", {"LMRPC_LOG_FORMAT": "json"})
    token = tokens.mint("product:create", client_id="cluster-log")
    with running_server(env, tmp_path) as server:
        server.rpc(token, "products.create", {"name": "logged"}, id_=41)
        server.rpc(token, "products.create", {"name": "logged"}, id_=42)  # conflict
        log = server.log
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    calls = [line for line in lines if line["logger"] == "lmrpc.calls"]
    assert [(c["call_id"], c["method"], c["outcome"], c["cluster"]) for c in calls] == [
        (41, "products.create", "ok", "cluster-log"),
        (42, "products.create", -32009, "cluster-log"),
    ]
    assert all(c["duration_ms"] >= 0 and len(c["request_id"]) == 16 for c in calls)
    assert calls[0]["request_id"] != calls[1]["request_id"]
    assert token not in log.read_text()


@ONCE
def test_plain_lines(database_url: str, tokens: TokenFactory, tmp_path: Path) -> None:
    env = server_env(database_url, tokens, tmp_path / "data")
    with running_server(env, tmp_path) as server:
        server.rpc(tokens.mint("product:read"), "products.list")
        text = server.log.read_text()
    [line] = [line for line in text.splitlines() if "lmrpc.calls" in line]
    assert "method=products.list" in line and "outcome=ok" in line and "request_id=" in line
