"""``GET /healthz`` as a plain ASGI route in front of Quart, like ``POST /rpc``.

Probes poll it often and its storage check is already answered from the last second's
ping (:mod:`storage.health`), so Quart's per-request machinery was nearly all of its cost
(README, Architecture). The answer is the one API.md §1 gives, byte for byte what Quart's
``jsonify`` sent: keys sorted, compact, a newline at the end.
"""

import json
from typing import TYPE_CHECKING

from lmrpc.plain_answer import headers_for, method_not_allowed, send_answer
from lmrpc.request_body import App, Message, Receive, Send
from storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from lmrpc.app import Service

PATH = "/healthz"
_METHODS = ("GET", "HEAD")


def _json(document: dict[str, str]) -> bytes:
    """``document`` encoded as Quart's ``jsonify`` encoded it."""
    return (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()


_OK = _json({"status": "ok"})


class HealthRoute:
    """Answers ``/healthz``; passes every other path to ``app``."""

    def __init__(self, service: "Service", app: App) -> None:
        self.service = service
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _METHODS:
            await method_not_allowed(send, b"GET, HEAD")
            return
        status, body = await self.answer()
        headers = headers_for(b"application/json", body)
        if scope["method"] == "HEAD":
            body = b""  # a GET's headers without its body (RFC 9110 §9.3.2)
        await send_answer(send, status, headers, body)

    async def answer(self) -> tuple[int, bytes]:
        """200 when the storage answers (within the last second), else 503 and why."""
        try:
            await self.service.default.storage.recent_ping()
        except StorageUnavailable as error:
            return 503, _json({"status": "unavailable", "reason": f"storage: {error}"})
        return 200, _OK
