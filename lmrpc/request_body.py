"""Every answer leaves its HTTP/1.1 connection usable: ASGI middleware in front of the app.

Hypercorn recycles a connection for its next request only when the request body was read
whole, and it does that bookkeeping inside the app's last ``send``; Quart-Trio cancels that
very task as soon as Hypercorn reports the stream closed, half-way through. An answer sent
before the body was read (401, 413, 415, a 404) therefore left the connection neither
recycled nor closed, and the client's next request waited forever.

So the last ``send`` is shielded, and before it the unread rest of the body is read and
thrown away when its declared length is within the body limit; a longer body, or one of
unknown length, gets ``Connection: close`` instead. The body also has a total deadline: a
client that has not sent it in time gets 408 and the connection is closed.
"""

import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from lmrpc import jsonrpc
from lmrpc.errors import INVALID_REQUEST, RpcError

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Any, Any, Any], Awaitable[None]]  # an ASGI app (Hypercorn types its messages)

_KEEP_ALIVE_VERSIONS = {"1.0", "1.1"}
_LAST_BODY: Message = {"type": "http.response.body", "body": b"", "more_body": False}


class RequestBodyGuard:
    """Wraps an ASGI app; see the module docstring."""

    def __init__(self, app: App, max_body_bytes: int, body_timeout: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["http_version"] not in _KEEP_ALIVE_VERSIONS:
            await self.app(scope, receive, send)  # HTTP/2 streams end independently
            return
        deadline = trio.current_time() + self.body_timeout
        length = declared_length(scope["headers"])
        drainable = length is not None and length <= self.max_body_bytes
        await _Exchange(receive, send, deadline, drainable, self.body_timeout).run(self.app, scope)


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's length from the request head, or None when unknown (chunked)."""
    length = 0
    for name, value in headers:
        name = name.lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value)  # h11 has already refused a malformed one
    return length


class _Exchange:
    """One request and its answer, as seen between Hypercorn and the app."""

    def __init__(
        self, receive: Receive, send: Send, deadline: float, drainable: bool, timeout: float
    ) -> None:
        self._receive = receive
        self._send = send
        self._deadline = deadline
        self._drainable = drainable
        self._timeout = timeout
        self._body_read = trio.Event()
        self._answering = False
        self._body_timer = trio.CancelScope(deadline=deadline)

    async def run(self, app: App, scope: Message) -> None:
        with self._body_timer:
            await app(scope, self.receive, self.send)
        if self._body_timer.cancelled_caught and not self._answering:
            # (an answer already begun is ended by Hypercorn, which then closes the
            # connection since the body was not read)
            with trio.CancelScope(shield=True):
                await self._answer_timeout()

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self._body_read.set()
            self._stop_body_timer()
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._answering = True
            self._stop_body_timer()  # from here on the drain below has its own deadline
            if not self._body_read.is_set() and not self._drainable:
                message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
            await self._send(message)
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            if self._must_drain():
                if message.get("body"):  # the client may wait for it before sending its body
                    await self._send({**message, "more_body": True})
                    message = _LAST_BODY
                await self._drain()
            with trio.CancelScope(shield=True):
                await self._send(message)
        else:
            await self._send(message)

    def _stop_body_timer(self) -> None:
        self._body_timer.deadline = math.inf

    def _must_drain(self) -> bool:
        return self._drainable and not self._body_read.is_set()

    async def _drain(self) -> None:
        """Read and discard what is left of a body within the limit, until the deadline;
        the app's own reader may take some of it, so wait for whoever reads the end."""
        with trio.move_on_at(self._deadline):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._discard_body)
                await self._body_read.wait()
                nursery.cancel_scope.cancel()

    async def _discard_body(self) -> None:
        while not self._body_read.is_set():
            await self.receive()

    async def _answer_timeout(self) -> None:
        reason = f"request body not received within {self._timeout:g} s"
        body = jsonrpc.encode(jsonrpc.error(None, RpcError(INVALID_REQUEST, {"reason": reason})))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self._send({"type": "http.response.start", "status": 408, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
