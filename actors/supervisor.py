"""The supervisor: creates feature actors on demand, retires idle ones, replaces failed ones.

All actor tasks run in the supervisor's nursery (structured concurrency: shutdown follows
the tree). Callers talk to actors only through the supervisor's methods.
"""

from collections.abc import Iterable
from typing import Any

import trio

from actors.committer import Committer
from actors.feature_actor import FeatureActor
from actors.messages import Book, Hold, Message
from actors.transactions import BookingRequest
from storage.errors import NotEnoughLicenses, StorageUnavailable
from storage.facade import Storage

IDLE_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 10.0

Held = tuple[FeatureActor, int]


class Supervisor:
    def __init__(self, storage: Storage, *, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.storage = storage
        self._idle_timeout = idle_timeout
        self._actors: dict[int, FeatureActor] = {}
        self._committer = Committer(storage)
        self._nursery: trio.Nursery | None = None
        self._closed = trio.Event()
        self._stopped = trio.Event()
        self.admitted = 0  # bookings admitted and refused, for the metrics
        self.refused = 0

    @property
    def live(self) -> int:
        return len(self._actors)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the actors' nursery until ``close``; retire idle actors meanwhile."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._committer.run)
                task_status.started()
                while not self._closed.is_set():
                    with trio.move_on_after(self._idle_timeout / 4):
                        await self._closed.wait()
                    self._retire_idle()
                # Shutting down: let actors finish the commits they have started and answer.
                with trio.move_on_after(DRAIN_TIMEOUT_S):
                    while any(actor.running for actor in self._actors.values()):
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self._stopped.set()

    async def close(self) -> None:
        """Stop taking messages, let running actors drain (bounded), then stop."""
        self._closed.set()
        if self._nursery is not None:
            await self._stopped.wait()

    def _retire_idle(self) -> None:
        horizon = trio.current_time() - self._idle_timeout
        idle = [
            fid
            for fid, actor in self._actors.items()
            if actor.retirable and actor.idle_since < horizon
        ]
        for feature_id in idle:
            del self._actors[feature_id]

    def _forget(self, actor: FeatureActor) -> None:
        """A failed actor is dropped; the next message makes a fresh one from storage."""
        if self._actors.get(actor.feature_id) is actor:
            del self._actors[actor.feature_id]

    async def _ask(self, feature_id: int, message: Message) -> tuple[FeatureActor, Any]:
        """Deliver ``message`` to the feature's actor and wait for its reply."""
        if self._nursery is None or self._closed.is_set():
            raise StorageUnavailable("the service is shutting down")
        actor = self._actors.get(feature_id)
        if actor is None:
            actor = FeatureActor(feature_id, self.storage, self._committer, self._forget)
            self._actors[feature_id] = actor
        await actor.deliver(message, self._nursery)
        return actor, await message.reply.wait()

    async def book(self, feature_id: int, request: BookingRequest) -> dict[str, Any]:
        """Admit one booking (or raise NotEnoughLicenses, NotFound, …)."""
        try:
            _, result = await self._ask(feature_id, Book(request))
        except NotEnoughLicenses:
            self.refused += 1
            raise
        self.admitted += 1
        booking: dict[str, Any] = result
        return booking

    async def hold(self, quantities: dict[int, int]) -> list[Held]:
        """Hold quantities of several features for a job, in the job's order, all or none
        (so a refusal names the job's first feature short of licenses).

        Each hold is answered at once by its actor, so holding never waits on another hold
        and cannot deadlock; the wait is shielded so a granted hold is never lost by a
        cancelled caller. On a refusal the holds already granted are given back.
        """
        granted: list[Held] = []
        try:
            for feature_id, quantity in quantities.items():
                with trio.CancelScope(shield=True):
                    actor, _ = await self._ask(feature_id, Hold(quantity))
                granted.append((actor, quantity))
        except BaseException:
            self.settle(granted, booked=False)
            raise
        return granted

    @staticmethod
    def settle(holds: list[Held], *, booked: bool) -> None:
        """Give held quantities back, or mark them booked once their job committed."""
        for actor, quantity in holds:
            actor.settle(quantity, booked)

    def invalidate(self, feature_ids: Iterable[int]) -> None:
        """Counters changed outside the actors: refresh before the next cached decision."""
        for feature_id in feature_ids:
            actor = self._actors.get(feature_id)
            if actor is not None:
                actor.stale = True

    def counters(self) -> dict[int, Any]:
        return {fid: actor.counters for fid, actor in self._actors.items()}
