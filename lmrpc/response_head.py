"""A response's head goes out with its first body bytes: one send to the socket, not two.

Hypercorn writes every h11 event to the socket as it comes: a response's head, then its
body, each a send (a system call and trio's locking and checkpoints), ≈ 8 % of a single
call's CPU. Here the head of a final response (status 200 and up) waits for the next bytes,
the body or the end of an empty one (which Hypercorn always writes right after), or for
any other event, and goes out with them. An informational head (``100 Continue``) goes at
once: the client waits for it before it sends its body.
"""

from hypercorn.events import Event, RawData
from hypercorn.trio.tcp_server import TCPServer

_HEAD = b"HTTP/1.1 "


def is_final_head(data: bytes) -> bool:
    """Whether ``data`` is the head of a final response (h11 writes every head whole)."""
    return data.startswith(_HEAD) and data[len(_HEAD) : len(_HEAD) + 1] != b"1"


class HeadWithBodyTCPServer(TCPServer):
    """Hypercorn's connection handler, sending a final response's head with what follows."""

    _held = b""  # a final response's head, not sent yet

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            if not self._held and is_final_head(event.data):
                self._held = event.data
                return
            data, self._held = self._held + event.data, b""
            if not data:
                return  # h11's end of a sized body: Hypercorn would take a lock and yield for it
            event = RawData(data=data, address=event.address)
        elif self._held:
            held, self._held = self._held, b""
            await super().protocol_send(RawData(data=held))
        await super().protocol_send(event)
