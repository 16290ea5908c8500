"""Whole answers sent straight through ASGI, for the routes in front of Quart."""

from lmrpc.request_body import Send


def headers_for(content_type: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]


async def send_answer(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def method_not_allowed(send: Send, allow: bytes) -> None:
    """405 for a method the path does not take, saying which it does (RFC 9110 §15.5.6)."""
    body = b"method not allowed\n"
    await send_answer(send, 405, [*headers_for(b"text/plain", body), (b"allow", allow)], body)
