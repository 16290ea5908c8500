"""A real ``lmrpc serve`` process (Hypercorn, trio worker) for end-to-end tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lmrpc.client import request
from tests.tokens import AUDIENCE, ISSUER, TokenFactory

START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def rpc(self, token: str, method: str, params: Any = None, id_: Any = 1) -> Any:
        """POST one call and return the decoded response object."""
        response = httpx.post(
            self.url + "/rpc",
            json=request(method, params, id_),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return response.json()


def server_env(
    database_url: str, tokens: TokenFactory, data_dir: Path, extra: Mapping[str, str | None] = {}
) -> dict[str, str]:
    """The server's environment; an ``extra`` value of None removes that variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMRPC_")}
    env.update(
        LMRPC_DATABASE_URL=database_url,
        LMRPC_DATA_DIR=str(data_dir),
        LMRPC_OIDC_JWKS_FILE=str(tokens.jwks_file),
        LMRPC_OIDC_ISSUER=ISSUER,
        LMRPC_OIDC_AUDIENCE=AUDIENCE,
    )
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@contextmanager
def running_server(
    env: Mapping[str, str],
    directory: Path,
    *,
    workers: int = 1,
    port: int | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[Server]:
    """Start ``lmrpc serve`` with ``env``, wait until /healthz answers, stop it after;
    ``preexec_fn`` runs in the child before the server (e.g. to lower its limits)."""
    port = port or free_port()
    log = directory / f"server-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lmrpc",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        stop_process(process, timeout=15)


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log.read_text()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not become healthy:\n{server.log.read_text()}")
