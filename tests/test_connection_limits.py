"""API.md §1: slow or idle clients cannot hold the server.

A real ``lmrpc serve`` (both backends) under a lowered open-file limit, as on a host with
the common limit of 1,024: clients that send their request heads slowly, past the
connection cap, while legitimate calls must still be answered promptly.
"""

import resource
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lmrpc.connections import default_max_connections
from tests.raw_http import CALL, NO_HANG_S, post_headers, raw_client
from tests.server import HTTP, Server, running_server, server_env
from tests.tokens import TokenFactory

OPEN_FILES = 256  # the server's limit, soft and hard
NOT_STARVED_S = 1.0  # a generous bound: a call takes milliseconds here
SLOW_HEAD = b"POST /rpc HTTP/1.1\r\nHost: lmrpc\r\n"  # and never the rest


def open_file_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that lowers the child's soft and hard open-file limits."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


@contextmanager
def limited_server(
    database_url: str,
    tokens: TokenFactory,
    directory: Path,
    extra: dict[str, str] | None = None,
    workers: int = 1,
) -> Iterator[Server]:
    env = server_env(database_url, tokens, directory / "data", extra or {})
    preexec = open_file_limit(OPEN_FILES)
    with running_server(env, directory, workers=workers, preexec_fn=preexec) as server:
        yield server


@contextmanager
def slow_clients(server: Server, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent the start of a request head, and no more."""
    host, port = server.url.removeprefix("http://").split(":")
    clients: list[socket.socket] = []
    try:
        for _ in range(count):
            client = socket.create_connection((host, int(port)), timeout=NO_HANG_S)
            client.sendall(SLOW_HEAD)
            clients.append(client)
        yield clients
    finally:
        for client in clients:
            client.close()


def wait_until_closed(clients: list[socket.socket], at_least: int) -> int:
    """Wait until the server has closed at least ``at_least`` of ``clients``; how many."""
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + NO_HANG_S
    while len(closed) < at_least and time.monotonic() < deadline:
        readable, _, _ = select.select([c for c in clients if c not in closed], [], [], 0.5)
        for client in readable:
            try:
                if client.recv(1) == b"":
                    closed.add(client)
            except ConnectionResetError:
                closed.add(client)
    return len(closed)


def assert_answered_promptly(server: Server, token: str, calls: int = 20) -> None:
    for _ in range(calls):  # each on a new connection, as a new client's would be
        started = time.monotonic()
        response = HTTP.post(
            server.url + "/rpc",
            content=CALL,
            headers=post_headers(token, len(CALL)),
            timeout=NO_HANG_S,
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert "flexlm" in response.json()["result"]
        assert elapsed < NOT_STARVED_S, f"a legitimate call took {elapsed:.2f} s"


@pytest.mark.parametrize("workers", [1, 2])
def test_past_the_cap_slow_clients_make_room_for_legitimate_calls(
    database_url: str, tokens: TokenFactory, tmp_path: Path, workers: int
) -> None:
    cap = default_max_connections(OPEN_FILES)
    slow = 2 * cap + 50  # more than every worker's cap, and than the open-file limit
    with limited_server(database_url, tokens, tmp_path, workers=workers) as server:
        with slow_clients(server, slow) as clients:
            assert wait_until_closed(clients, slow - workers * cap) >= slow - workers * cap
            assert_answered_promptly(server, tokens.mint("admin"))
        log = server.log.read_text()
    assert "EMFILE" not in log
    assert "Traceback" not in log


def test_a_request_head_has_a_total_deadline(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    """A head sent a byte at a time is cut off, although each byte comes well within
    Hypercorn's read timeout (30 s); an idle connection is not a slow head."""
    extra = {"LMRPC_HEADERS_TIMEOUT": "1"}
    with (
        limited_server(database_url, tokens, tmp_path, extra) as server,
        raw_client(server) as idle,
        raw_client(server) as trickling,
    ):
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < NO_HANG_S:
            try:
                trickling.sock.sendall(b"X")  # a header name that never ends
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            readable, _, _ = select.select([trickling.sock], [], [], 0.1)
            closed = closed or (bool(readable) and trickling.closed_by_server())
        assert closed
        idle.head(post_headers(tokens.mint("admin"), len(CALL)))
        idle.body(CALL)
        assert idle.answer().status == 200


def test_a_slow_body_has_a_total_deadline(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    """A body sent a byte at a time gets 408 once its deadline has passed."""
    extra = {"LMRPC_BODY_TIMEOUT": "1"}
    with (
        limited_server(database_url, tokens, tmp_path, extra) as server,
        raw_client(server) as client,
    ):
        client.head(post_headers(tokens.mint("admin"), len(CALL)))
        answered = False
        for byte in CALL[:-1]:
            client.sock.sendall(bytes([byte]))
            readable, _, _ = select.select([client.sock], [], [], 0.1)
            if readable:
                answered = True
                break
        assert answered
        answer = client.answer()
        assert answer.status == 408
        assert answer.headers[b"connection"] == b"close"


def test_running_out_of_file_descriptors_is_logged_once_without_traceback(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    """A cap set above the open-file limit cannot protect the process: accept fails with
    EMFILE every 100 ms, and the log says so once."""
    extra = {"LMRPC_MAX_CONNECTIONS": str(10 * OPEN_FILES)}
    with limited_server(database_url, tokens, tmp_path, extra) as server:
        with slow_clients(server, OPEN_FILES + 50):
            deadline = time.monotonic() + NO_HANG_S
            while "EMFILE" not in server.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)  # ten retries of accept: without the filter, ten more lines
        log = server.log.read_text()
    assert log.count("EMFILE") == 1
    assert "Traceback" not in log
