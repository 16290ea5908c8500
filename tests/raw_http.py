"""A raw HTTP/1.1 client for transport tests: one socket, driven event by event with h11's
client side, so a test decides exactly when each part of a request goes on the wire."""

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import h11

from tests.server import Server

NO_HANG_S = 10  # generous: each answer in these tests takes milliseconds
CALL = json.dumps({"jsonrpc": "2.0", "method": "license_servers.types", "id": 1}).encode()


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class RawClient:
    """One TCP connection, driven event by event with h11's client side."""

    def __init__(self, server: Server) -> None:
        host, port = server.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=NO_HANG_S)
        self.http = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.sock.close()

    def head(self, headers: dict[str, str], target: str = "/rpc", method: str = "POST") -> None:
        request = h11.Request(
            method=method, target=target, headers=[("Host", "lmrpc"), *headers.items()]
        )
        self.sock.sendall(self.http.send(request))

    def body(self, data: bytes) -> None:
        self.sock.sendall(self.http.send(h11.Data(data=data)) + self.http.send(h11.EndOfMessage()))

    def answer(self) -> Answer:
        """The next whole answer; a socket timeout here means the server hung."""
        response: h11.Response | None = None
        body = b""
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return Answer(response.status_code, dict(response.headers), body)
            else:
                raise AssertionError(f"unexpected {event!r}")

    def next_cycle(self) -> None:
        self.http.start_next_cycle()

    def closed_by_server(self) -> bool:
        """True once the server has closed its end (read returns EOF or a reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def post_headers(
    token: str | None, length: int, content_type: str = "application/json"
) -> dict[str, str]:
    headers = {"Content-Type": content_type, "Content-Length": str(length)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


@contextmanager
def raw_client(server: Server) -> Iterator[RawClient]:
    client = RawClient(server)
    try:
        yield client
    finally:
        client.close()
