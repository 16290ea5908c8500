"""Slow and idle clients cannot hold the server: limits on connections, below the app.

Hypercorn accepts without bound and its read timeout is per read, so a thousand clients
sending their request heads a byte at a time took every file descriptor, and legitimate
calls timed out. Hypercorn's trio worker has no hook for connections: it builds one
``TCPServer`` per accepted socket, looked up in ``hypercorn.trio.run``, so :func:`install`
puts a subclass there (in every worker process, as it imports ``lmrpc.asgi``). It adds:

- a cap on concurrent connections per process: past it, a new connection makes room by
  closing the connection that has waited longest for its next request head (a slow or
  idle client), so legitimate calls are still answered; only when every connection is in
  the middle of a request is the new one refused (closed);
- a total deadline for a request head, from its first byte;
- Hypercorn's keep-alive timeout (and the closing of idle connections at shutdown) kept by
  the same deadline, where Hypercorn started a task for it after every request;
- the soft open-file limit raised to the hard one, and ``accept … EMFILE`` logged at most
  once a minute, without a traceback.

The request body's deadline is :mod:`lmrpc.request_body`'s.
"""

import logging
import math
import resource
import time
from collections.abc import Awaitable, Callable
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.events import Event, Updated
from hypercorn.trio.worker_context import TrioSingleTask, WorkerContext
from hypercorn.typing import AppWrapper, LifespanState

from lmrpc.response_head import HeadWithBodyTCPServer
from lmrpc.settings import Settings

log = logging.getLogger("lmrpc.connections")

ACCEPT_LOG_INTERVAL_S = 60.0
_RESERVED_FILES = 100  # database connections, log files, keys, JWKS fetches


def raise_open_file_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; the soft limit then in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, error)
    return soft


def default_max_connections(open_files: int) -> int:
    """What the open-file limit leaves for connections after the process's own files."""
    return max(16, open_files - max(_RESERVED_FILES, open_files // 10))


class ConnectionTable:
    """This process's connections; those waiting for a request head, oldest first."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._connections: set[GuardedTCPServer] = set()
        self._waiting: dict[GuardedTCPServer, None] = {}  # insertion order: oldest first

    def __len__(self) -> int:
        return len(self._connections)

    def admit(self, connection: "GuardedTCPServer") -> "GuardedTCPServer | None":
        """Add ``connection``; returns the one to close to make room for it (or itself,
        when every connection is busy with a request)."""
        evicted: GuardedTCPServer | None = None
        if len(self._connections) >= self.cap:
            evicted = next(iter(self._waiting), connection)
            self.remove(evicted)
            if evicted is connection:
                return connection
        self._connections.add(connection)
        self._waiting[connection] = None
        return evicted

    def busy(self, connection: "GuardedTCPServer") -> None:
        self._waiting.pop(connection, None)

    def waiting(self, connection: "GuardedTCPServer") -> None:
        if connection in self._connections:
            self._waiting.pop(connection, None)
            self._waiting[connection] = None  # now the newest

    def remove(self, connection: "GuardedTCPServer") -> None:
        self._connections.discard(connection)
        self._waiting.pop(connection, None)


class _WatchedStream(trio.abc.HalfCloseableStream):
    """A socket stream that tells its connection when bytes arrive."""

    def __init__(self, stream: trio.SocketStream, on_bytes: Callable[[], None]) -> None:
        self.socket = stream.socket  # Hypercorn reads the peer's address from it
        self._stream = stream
        self._on_bytes = on_bytes

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self._stream.receive_some(max_bytes)
        if data:
            self._on_bytes()
        return bytes(data)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


class _NotStarted(TrioSingleTask):
    """Hypercorn's idle task, never started: :class:`GuardedTCPServer`'s deadline does its
    work. Hypercorn starts that task anew after every request (a lock and a nursery start,
    about a tenth of the CPU of a ``/healthz`` request), to keep one timeout."""

    async def restart(self, task_group: object, action: Callable[[], Awaitable[None]]) -> None:
        pass

    async def stop(self) -> None:
        pass


class GuardedTCPServer(HeadWithBodyTCPServer):
    """Hypercorn's connection handler, counted in a table, with one deadline: the keep-alive
    timeout while it waits for a request, the head's deadline from the head's first byte,
    none during a request (the body's deadline is :mod:`lmrpc.request_body`'s); a response's
    head goes out with its body (:mod:`lmrpc.response_head`)."""

    def __init__(
        self,
        table: ConnectionTable,
        headers_timeout: float,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        state: LifespanState,
        stream: trio.SocketStream,
    ) -> None:
        watched = _WatchedStream(stream, self._bytes_arrived)
        super().__init__(app, config, context, state, watched)  # type: ignore[arg-type]
        self.idle_task = _NotStarted()
        self._table = table
        self._headers_timeout = headers_timeout
        self._in_request = False
        self._head_begun = False
        self._deadline = trio.CancelScope()

    async def run(self) -> None:
        evicted = self._table.admit(self)
        if evicted is not None:
            await evicted.stream.aclose()
            if evicted is self:
                return
        try:
            async with trio.open_nursery() as nursery:
                self._wait_for_a_request()
                nursery.start_soon(self._close_when_due)
                await super().run()
                nursery.cancel_scope.cancel()
        finally:
            self._table.remove(self)

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated):  # Hypercorn's word for a request begun or finished
            self._in_request = not event.idle
            if self._in_request:
                self._table.busy(self)
                self._deadline.deadline = math.inf
            else:
                self._table.waiting(self)
                self._wait_for_a_request()
            return  # Hypercorn would only restart or stop its idle task
        await super().protocol_send(event)

    def _wait_for_a_request(self) -> None:
        self._head_begun = False
        self._deadline.deadline = trio.current_time() + self.config.keep_alive_timeout

    def _bytes_arrived(self) -> None:
        if not self._in_request and not self._head_begun:
            self._head_begun = True
            head_deadline = trio.current_time() + self._headers_timeout
            self._deadline.deadline = min(self._deadline.deadline, head_deadline)

    async def _close_when_due(self) -> None:
        """Close the connection past its deadline, or at shutdown unless it is answering a
        request (Hypercorn closes that one after its answer)."""
        with self._deadline:
            await self.context.terminated.wait()
            if self._in_request:
                return
        await self.stream.aclose()  # the reader sees it closed; Hypercorn cleans up


class _OncePerInterval(logging.Filter):
    """Lets trio's ``accept returned EMFILE`` through once per interval, without traceback:
    it repeats every 100 ms for as long as the process is out of file descriptors."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._last = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        record.exc_info = None
        record.exc_text = None
        record.msg = f"{record.msg} (said at most every {self.interval:g} s)"
        return True


def install(settings: Settings) -> ConnectionTable:
    """Put the limits in place for this process's Hypercorn trio worker."""
    from hypercorn.trio import run as hypercorn_trio

    open_files = raise_open_file_limit()
    table = ConnectionTable(settings.max_connections or default_max_connections(open_files))
    guarded = partial(GuardedTCPServer, table, settings.headers_timeout)
    hypercorn_trio.TCPServer = guarded  # type: ignore[attr-defined, assignment]
    logging.getLogger("trio.serve_listeners").addFilter(_OncePerInterval(ACCEPT_LOG_INTERVAL_S))
    log.debug("at most %d connections (open-file limit %d)", table.cap, open_files)
    return table
