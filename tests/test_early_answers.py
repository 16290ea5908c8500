"""API.md §1: an answer sent before the request body was read never breaks the connection.

A raw HTTP/1.1 client (h11 over a plain socket) sends a request head, reads the whole answer
*before* it sends the body, then sends the body and a next request on the same connection:
the order that made Hypercorn's connections hang is forced, not left to timing. Against a
real ``lmrpc serve`` on both backends.
"""

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmrpc.client import Client
from tests.raw_http import CALL, NO_HANG_S, post_headers, raw_client
from tests.server import Server, running_server, server_env
from tests.tokens import TokenFactory


@pytest.mark.parametrize(
    "refusal",
    ["no token", "expired token", "not json"],
)
def test_an_answer_before_the_body_leaves_the_connection_usable(
    server: Server, tokens: TokenFactory, refusal: str
) -> None:
    reader = tokens.mint("admin")
    headers, status = {
        "no token": (post_headers(None, len(CALL)), 401),
        "expired token": (post_headers(tokens.mint("admin", ttl=-3600), len(CALL)), 401),
        "not json": (post_headers(reader, len(CALL), "text/plain"), 415),
    }[refusal]
    with raw_client(server) as client:
        client.head(headers)
        early = client.answer()  # answered while the body is not yet on the wire
        assert early.status == status
        assert b"connection" not in early.headers  # so the connection must stay usable
        client.body(CALL)
        client.next_cycle()
        client.head(post_headers(reader, len(CALL)))
        client.body(CALL)
        answer = client.answer()
        assert answer.status == 200
        assert json.loads(answer.body)["result"][0] == "flexlm"


@pytest.mark.parametrize("body", ["over the limit", "chunked"])
def test_an_early_answer_to_a_body_not_worth_waiting_for_closes_the_connection(
    server: Server, tokens: TokenFactory, body: str
) -> None:
    """The rest of a body over the limit, or of unknown length, is not read: the answer says
    the connection closes, and it does."""
    headers, status = {
        "over the limit": (post_headers(tokens.mint("admin"), 5 * 1024 * 1024), 413),
        "chunked": ({"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, 401),
    }[body]
    with raw_client(server) as client:
        client.head(headers)
        answer = client.answer()
        assert answer.status == status
        assert answer.headers[b"connection"] == b"close"
        assert client.closed_by_server()


def test_a_request_for_an_unknown_path_is_answered_and_the_connection_reused(
    server: Server, tokens: TokenFactory
) -> None:
    """Any early answer, not only the app's own: here Quart's 404."""
    with raw_client(server) as client:
        client.head(post_headers(None, len(CALL)), target="/nowhere")
        assert client.answer().status == 404
        client.body(CALL)
        client.next_cycle()
        client.head({}, target="/healthz", method="GET")
        assert client.answer().status == 200


@pytest.fixture
def impatient(database_url: str, tokens: TokenFactory, tmp_path: Path) -> Iterator[Server]:
    """A server that waits at most one second for a request body."""
    env = server_env(database_url, tokens, tmp_path / "data", {"LMRPC_BODY_TIMEOUT": "1"})
    with running_server(env, tmp_path) as srv:
        yield srv


def test_a_body_that_does_not_come_in_time_gets_408_and_the_connection_closes(
    impatient: Server, tokens: TokenFactory
) -> None:
    with raw_client(impatient) as client:
        client.head(post_headers(tokens.mint("admin"), len(CALL)))
        client.sock.sendall(CALL[:10])  # and never the rest
        answer = client.answer()
        assert answer.status == 408
        assert answer.headers[b"connection"] == b"close"
        assert json.loads(answer.body) == {
            "jsonrpc": "2.0",
            "error": {
                "code": -32600,
                "message": "Invalid request",
                "data": {"reason": "request body not received within 1 s"},
            },
            "id": None,
        }
        assert client.closed_by_server()


def test_an_early_answer_whose_body_never_comes_closes_the_connection(impatient: Server) -> None:
    with raw_client(impatient) as client:
        client.head(post_headers(None, len(CALL)))
        assert client.answer().status == 401
        assert client.closed_by_server()  # after the body deadline, not never


# --- the CLI's renew-and-retry, on one keep-alive connection ---------------------------------


class BodyHoldingProxy:
    """A TCP proxy that passes each connection's first request head at once but holds its
    body until the server's answer has come back: the order a busy machine makes likely."""

    def __init__(self, server: Server) -> None:
        host, port = server.url.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.upstream)
            answered = threading.Event()
            threading.Thread(
                target=self._forward_requests, args=(downstream, upstream, answered), daemon=True
            ).start()
            threading.Thread(
                target=self._forward_answers, args=(upstream, downstream, answered), daemon=True
            ).start()

    @staticmethod
    def _forward_requests(
        source: socket.socket, target: socket.socket, answered: threading.Event
    ) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            received += source.recv(65536)
        head, _, held = received.partition(b"\r\n\r\n")
        target.sendall(head + b"\r\n\r\n")
        answered.wait()
        target.sendall(held)
        while data := source.recv(65536):
            target.sendall(data)

    @staticmethod
    def _forward_answers(
        source: socket.socket, target: socket.socket, answered: threading.Event
    ) -> None:
        while data := source.recv(65536):
            target.sendall(data)
            answered.set()
        target.close()


class RenewableToken:
    """Credentials whose cached token has expired and whose renewal gives a good one."""

    def __init__(self, tokens: TokenFactory) -> None:
        self.tokens = tokens
        self.renewals = 0

    def token(self) -> str | None:
        return self.tokens.mint("admin", ttl=-3600)

    def renew(self) -> str | None:
        self.renewals += 1
        return self.tokens.mint("admin")


def test_the_cli_client_renews_and_retries_on_the_same_connection(
    server: Server, tokens: TokenFactory
) -> None:
    proxy = BodyHoldingProxy(server)
    credentials = RenewableToken(tokens)
    try:
        with Client(proxy.url, None, timeout=NO_HANG_S) as client:
            client.credentials = credentials
            assert "flexlm" in client.call("license_servers.types")
    finally:
        proxy.close()
    assert credentials.renewals == 1
    assert proxy.connections == 1  # the retry went over the kept-alive connection
