"""The storage check of ``/healthz``, answered from the last result for about a second.

A monitor or load balancer may poll ``/healthz`` thousands of times a second; a query per
poll made it cost more than a booking. The check's answer may be a second old, which is
as fresh as any poller can act on. Callers arriving while a check runs wait for it rather
than start their own, so the database sees at most about one check per second.
"""

from collections.abc import Awaitable, Callable

import trio

from storage.errors import StorageUnavailable

MAX_AGE_S = 1.0
TIMEOUT_S = 3.0


class CachedCheck:
    def __init__(
        self,
        check: Callable[[], Awaitable[None]],
        max_age: float = MAX_AGE_S,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self._check = check
        self._max_age = max_age
        self._timeout = timeout
        self._failure: str | None = None  # why the last finished check failed
        self._at = -float("inf")  # when it finished
        self._running: trio.Event | None = None

    async def __call__(self) -> None:
        """Raise StorageUnavailable unless the last check, or a new one, succeeded.

        Waiting for a check longer than the timeout counts as a failure ("timeout"); a
        fresh answer needs no wait, and no cancel scope, which is most of a poll's cost."""
        if trio.current_time() - self._at >= self._max_age:
            with trio.move_on_after(self._timeout) as waited:
                await self._refresh()
            if waited.cancelled_caught:
                raise StorageUnavailable("timeout")
        if self._failure is not None:
            raise StorageUnavailable(self._failure)

    async def _refresh(self) -> None:
        while trio.current_time() - self._at >= self._max_age:
            if self._running is not None:
                await self._running.wait()  # a cancelled check leaves the result old: retry
                continue
            self._running = running = trio.Event()
            try:
                await self._check()
            except StorageUnavailable as error:
                self._failure = str(error) or "unavailable"
            else:
                self._failure = None
            finally:
                self._running = None
                running.set()
            self._at = trio.current_time()  # not reached when cancelled: the next one checks
