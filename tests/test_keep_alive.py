"""The connection's one deadline (lmrpc/connections.py) keeps Hypercorn's keep-alive timeout
and closes idle connections at shutdown, in place of the task Hypercorn started after every
request: a real Hypercorn trio server in this process, with short timeouts."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import run as hypercorn_trio
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from lmrpc import connections
from lmrpc.settings import Settings
from tests.raw_http import NO_HANG_S

REQUEST = b"GET / HTTP/1.1\r\nHost: lmrpc\r\n\r\n"


async def ok_app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """Answers every request with 200 ``ok``."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok", "more_body": False})


@asynccontextmanager
async def hypercorn_server(
    monkeypatch: pytest.MonkeyPatch, keep_alive_s: float, stop: trio.Event
) -> AsyncIterator[tuple[str, int]]:
    """Serving ``ok_app`` with lmrpc's connections, the graceful timeout far beyond the
    tests' bounds; stops when ``stop`` is set."""
    monkeypatch.setattr(hypercorn_trio, "TCPServer", TCPServer)  # restored after
    connections.install(Settings())
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.keep_alive_timeout = keep_alive_s
    config.graceful_timeout = 3 * NO_HANG_S
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, ok_app, config, shutdown_trigger=stop.wait))
        host, port = binds[0].removeprefix("http://").rsplit(":", 1)
        yield host, int(port)
        stop.set()


async def answered(stream: trio.SocketStream, request: bytes = REQUEST) -> bytes:
    await stream.send_all(request)
    answer = b""
    while not answer.endswith(b"\r\n\r\nok"):
        answer += await stream.receive_some()
    return answer


async def closed_by_server(stream: trio.SocketStream) -> bool:
    with trio.move_on_after(NO_HANG_S):
        return await stream.receive_some() == b""
    return False


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with hypercorn_server(monkeypatch, 0.2, trio.Event()) as (host, port):
        stream = await trio.open_tcp_stream(host, port)
        for _ in range(3):  # each request starts the timeout anew
            assert (await answered(stream)).startswith(b"HTTP/1.1 200")
        assert await closed_by_server(stream)


async def test_at_shutdown_an_idle_connection_is_closed_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At once: not after the keep-alive timeout or the graceful timeout, both far longer."""
    stop = trio.Event()
    async with hypercorn_server(monkeypatch, 3 * NO_HANG_S, stop) as (host, port):
        idle = await trio.open_tcp_stream(host, port)
        await answered(idle)
        stop.set()
        assert await closed_by_server(idle)
