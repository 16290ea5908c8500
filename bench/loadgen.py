"""A small HTTP/1.1 keep-alive load generator (Trio + h11) for JSON-RPC calls.

Each client owns one connection and sends its next request when the previous answer is
in (closed loop), or on a fixed schedule (``rate``). It records latency per request and
counts JSON-RPC results and errors, including the calls inside batch responses.
"""

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11
import trio

BodyMaker = Callable[[int, int], bytes]  # (client index, request number) → body


@dataclass
class Stats:
    seconds: float = 0.0
    requests: int = 0
    results: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    http_errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def calls(self) -> int:
        return self.results + sum(self.errors.values())

    def line(self) -> str:
        return (
            f"{self.requests / self.seconds:8.0f} req/s {self.calls / self.seconds:8.0f} calls/s "
            f"{self.results / self.seconds:8.0f} ok/s  p50 {self.percentile(50) * 1000:6.1f} ms "
            f"p99 {self.percentile(99) * 1000:6.1f} ms  errors {dict(self.errors)} "
            f"http-errors {self.http_errors}"
        )


class Connection:
    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/rpc"
        self.headers = [
            ("Host", f"{self.host}:{self.port}"),
            ("Authorization", f"Bearer {token}"),
            ("Content-Type", "application/json"),
        ]
        self.stream: trio.SocketStream | None = None
        self.conn = h11.Connection(h11.CLIENT)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.stream is None:
            self.stream = await trio.open_tcp_stream(self.host, self.port)
            self.conn = h11.Connection(h11.CLIENT)
        headers = [*self.headers, ("Content-Length", str(len(body)))]
        data = self.conn.send(h11.Request(method="POST", target=self.path, headers=headers))
        data += self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        status, chunks = 0, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
        if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
            await self.stream.aclose()
            self.stream = None
        else:
            self.conn.start_next_cycle()
        return status, b"".join(chunks)


def _count(stats: Stats, status: int, body: bytes) -> None:
    if status != 200:
        stats.http_errors += status not in (204,)
        return
    answer = json.loads(body)
    for item in answer if isinstance(answer, list) else [answer]:
        if "result" in item:
            stats.results += 1
        else:
            stats.errors[item["error"]["code"]] += 1


async def run(
    url: str,
    token: str,
    clients: int,
    make_body: BodyMaker,
    *,
    duration: float | None = None,
    requests_per_client: int | None = None,
    rate: float | None = None,
) -> Stats:
    """Run ``clients`` connections until ``duration`` seconds pass or each has sent
    ``requests_per_client``; with ``rate`` (requests/s over all clients) open loop."""
    stats = Stats()
    start = time.perf_counter()
    deadline = start + duration if duration else float("inf")

    async def client(index: int) -> None:
        connection = Connection(url, token)
        number = 0
        next_at = start + (index / rate if rate else 0)
        while time.perf_counter() < deadline and (
            requests_per_client is None or number < requests_per_client
        ):
            if rate:
                await trio.sleep_until(
                    trio.current_time() + max(0.0, next_at - time.perf_counter())
                )
                next_at += clients / rate
            body = make_body(index, number)
            sent = time.perf_counter()
            status, answer = await connection.post(body)
            stats.latencies.append(time.perf_counter() - sent)
            stats.requests += 1
            _count(stats, status, answer)
            number += 1
        if connection.stream is not None:
            await connection.stream.aclose()

    async with trio.open_nursery() as nursery:
        for index in range(clients):
            nursery.start_soon(client, index)
    stats.seconds = time.perf_counter() - start
    return stats
