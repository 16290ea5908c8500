"""A real ``lmrpc serve`` process (Hypercorn, trio worker) for end-to-end tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from lmrpc.client import request
from tests.tokens import AUDIENCE, ISSUER, TokenFactory

START_TIMEOUT_S = 30
HEALTH_POLL_S = 0.02  # a refused connection costs next to nothing; a late look costs a test


def http_client(*, keep_alive: bool = True) -> httpx.Client:
    """A client for the plain-HTTP test servers. Building an httpx client loads the CA
    bundle (15-30 ms of CPU) even for http:// URLs, where there is nothing to verify, so tests
    use these rather than ``httpx.get``/``httpx.post`` (a client and a CA bundle each)."""
    limits = httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(timeout=30, verify=False, limits=limits)


# one-shot requests, a new connection each, as ``httpx.get`` and ``httpx.post`` make them
HTTP = http_client(keep_alive=False)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Ports free now and distinct from each other (each is held until all are picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    http: httpx.Client = field(default_factory=http_client, repr=False)

    def rpc(self, token: str, method: str, params: Any = None, id_: Any = 1) -> Any:
        """POST one call and return the decoded response object."""
        response = self.http.post(
            self.url + "/rpc",
            json=request(method, params, id_),
            headers={"Authorization": f"Bearer {token}"},
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
    with _serving([partial(_start, env, directory, workers, port, preexec_fn)]) as (server,):
        yield server


@contextmanager
def running_servers(count: int, env: Mapping[str, str], directory: Path) -> Iterator[list[Server]]:
    """``count`` servers like ``running_server``'s, all started before the first is waited
    for: a start is mostly imports, so side by side they take little longer than one."""
    starts = [partial(_start, env, directory, 1, port, None) for port in free_ports(count)]
    with _serving(starts) as servers:
        yield servers


@contextmanager
def _serving(starts: Sequence[Callable[[], Server]]) -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        for start in starts:
            servers.append(start())
        for server in servers:
            _wait_healthy(server)
        yield servers
    finally:
        for server in servers:
            server.http.close()
            stop_process(server.process, timeout=15)


def _start(
    env: Mapping[str, str],
    directory: Path,
    workers: int,
    port: int | None,
    preexec_fn: Callable[[], None] | None,
) -> Server:
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
    return Server(f"http://127.0.0.1:{port}", process, log)


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
            if server.http.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(HEALTH_POLL_S)
    raise RuntimeError(f"server did not become healthy:\n{server.log.read_text()}")
