"""``POST /rpc`` as a plain ASGI route in front of Quart: the hot path skips the framework.

Quart-Trio's per-request machinery (request and app contexts, a nursery per request,
werkzeug headers and responses) cost several times the call itself: measured with wrk on
``license_servers.types`` (README, Architecture). Quart keeps every other route and the
lifespan (the service's start and stop); other methods on ``/rpc`` get 405 here. What
API.md §1 says of ``/rpc`` (statuses, headers, limits) is kept here; the body's deadline
and the keep-alive rules are :mod:`lmrpc.request_body`'s, which wraps both.
"""

import uuid
from typing import TYPE_CHECKING

from lmrpc import jsonrpc
from lmrpc.auth import Unauthenticated
from lmrpc.dispatch import dispatch
from lmrpc.errors import INVALID_REQUEST, STORAGE_UNAVAILABLE, UNAUTHENTICATED, RpcError
from lmrpc.identity import Identity
from lmrpc.logs import call_lines, log_call
from lmrpc.plain_answer import headers_for, method_not_allowed, send_answer
from lmrpc.registry import CallContext
from lmrpc.request_body import App, Message, Receive, Send, declared_length
from storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from lmrpc.app import Service

JSON = "application/json"
MISSING_TOKEN = "missing bearer token"

Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, Headers, bytes]


class _ClientGone(Exception):
    """The client disconnected before its body was whole: there is no one to answer."""


class RpcRoute:
    """Answers ``POST /rpc``; passes everything else to ``app`` (Quart)."""

    def __init__(self, service: "Service", app: App) -> None:
        self.service = service
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/rpc":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await method_not_allowed(send, b"POST")
            return
        try:
            status, headers, body = await self._answer(scope["headers"], receive)
        except _ClientGone:
            return
        if body:
            headers += headers_for(JSON.encode(), body)
        await send_answer(send, status, headers, body)

    async def _answer(self, head: Headers, receive: Receive) -> Answer:
        service = self.service
        try:
            identity = await service.authenticate(_header(head, b"authorization"))
        except Unauthenticated as denied:
            # RFC 6750 §3.1: no error code when the request carries no bearer token at all
            missing = denied.reason == MISSING_TOKEN
            challenge = b"Bearer" if missing else b'Bearer error="invalid_token"'
            return _error(
                401,
                RpcError(UNAUTHENTICATED, {"reason": denied.reason}),
                [(b"www-authenticate", challenge)],
            )
        media_type = _header(head, b"content-type").partition(";")[0].strip().lower()
        if media_type != JSON:
            reason = "Content-Type must be application/json"
            return _error(415, RpcError(INVALID_REQUEST, {"reason": reason}))
        limit = service.settings.max_body_bytes
        body = await _read_body(receive, limit, declared_length(head))
        if body is None:
            return _error(413, RpcError(INVALID_REQUEST, {"reason": f"body exceeds {limit} bytes"}))
        request_id = _header(head, b"x-request-id")[:64] or uuid.uuid4().hex[:16]

        def observe(call: jsonrpc.Call, code: int | None, seconds: float) -> None:
            service.metrics.observe(call, code, seconds, identity.organization)
            log_call(request_id, identity, call, code, seconds)

        try:
            tenant = await service.tenant_of(identity)
        except StorageUnavailable:
            return _error(200, RpcError(STORAGE_UNAVAILABLE))

        def context_for(who: Identity) -> CallContext:
            return CallContext(who, tenant.storage, tenant.actors)

        with call_lines():
            answer = await dispatch(
                body,
                identity,
                context_for,
                service.settings.max_batch,
                observe,
                max_response_bytes=service.settings.max_response_bytes,
            )
        if answer is None:
            return 204, [], b""
        return 200, [(b"x-request-id", request_id.encode("latin-1"))], answer


def _header(head: Headers, name: bytes) -> str:
    """The first value of header ``name`` (given in lower case, as h11 passes names)."""
    for key, value in head:
        if key == name:
            return value.decode("latin-1")
    return ""


def _error(status: int, error: RpcError, headers: Headers | None = None) -> Answer:
    return status, list(headers or []), jsonrpc.encode(jsonrpc.error(None, error))


async def _read_body(receive: Receive, limit: int, length: int | None) -> bytes | None:
    """The whole body, or None when it is (or is declared) longer than ``limit``."""
    if length is not None and length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
