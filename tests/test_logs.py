"""One structured log line per call, plain or JSON lines, from a real server."""

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lmrpc import jsonrpc, logs
from lmrpc.client import request
from lmrpc.identity import Identity
from tests.server import running_server, server_env
from tests.tokens import TokenFactory

# The log lines do not depend on the backend: these run once, on SQLite.
ONCE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@ONCE
def test_json_lines_one_per_call(database_url: str, tokens: TokenFactory, tmp_path: Path) -> None:
    env = server_env(database_url, tokens, tmp_path / "data", {"LMRPC_LOG_FORMAT": "json"})
    token = tokens.mint("product:create", client_id="cluster-log")
    batch = [request("products.create", {"name": f"b{i}"}, 43 + i) for i in range(3)]
    with running_server(env, tmp_path) as server:
        server.rpc(token, "products.create", {"name": "logged"}, id_=41)
        server.rpc(token, "products.create", {"name": "logged"}, id_=42)  # conflict
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(server.url + "/rpc", json=batch, headers=headers, timeout=30)
        log = server.log
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    calls = [line for line in lines if line["logger"] == "lmrpc.calls"]
    assert [(c["call_id"], c["method"], c["outcome"], c["cluster"]) for c in calls[:2]] == [
        (41, "products.create", "ok", "cluster-log"),
        (42, "products.create", -32009, "cluster-log"),
    ]
    assert sorted(c["call_id"] for c in calls[2:]) == [43, 44, 45]  # a batch: a line per call
    assert all(c["duration_ms"] >= 0 and len(c["request_id"]) == 16 for c in calls)
    assert calls[0]["request_id"] != calls[1]["request_id"]
    assert len({c["request_id"] for c in calls[2:]}) == 1
    assert token not in log.read_text()


@pytest.fixture
def stderr_lines() -> Iterator[io.StringIO]:
    """The service's log configuration, writing to a buffer; the test process's after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure("plain", "INFO")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_requests_call_lines_are_written_together(stderr_lines: io.StringIO) -> None:
    """One write for a batch's lines; other loggers' lines are not held."""
    identity = Identity(None, frozenset(), "cluster-a", None, 0.0)
    with logs.call_lines():
        for id_ in (1, 2, 3):
            logs.log_call("r1", identity, jsonrpc.Call("products.list", None, id_), None, 0.001)
        logging.getLogger("lmrpc.app").warning("not held")
        assert "call_id" not in stderr_lines.getvalue()
        assert "not held" in stderr_lines.getvalue()
    lines = [line for line in stderr_lines.getvalue().splitlines() if "lmrpc.calls" in line]
    assert [line.split("call_id=")[1][0] for line in lines] == ["1", "2", "3"]
    logs.log_call("r2", identity, jsonrpc.Call("products.list", None, 4), None, 0.001)
    assert "call_id=4" in stderr_lines.getvalue()  # outside a request: written at once


@ONCE
def test_plain_lines(database_url: str, tokens: TokenFactory, tmp_path: Path) -> None:
    env = server_env(database_url, tokens, tmp_path / "data")
    with running_server(env, tmp_path) as server:
        server.rpc(tokens.mint("product:read"), "products.list")
        text = server.log.read_text()
    [line] = [line for line in text.splitlines() if "lmrpc.calls" in line]
    assert "method=products.list" in line and "outcome=ok" in line and "request_id=" in line
