"""The supervisor: creates feature actors on demand, retires idle ones, replaces failed ones.

All actor tasks run in the supervisor's nursery (structured concurrency: shutdown follows
the tree). Callers talk to actors only through the supervisor's methods.
"""

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

import trio

from actors.committer import Committer
from actors.feature_actor import FeatureActor
from actors.messages import Book, Hold, Message
from actors.transactions import BookingRequest
from actors.usage import BookedSampler, Clock, RefusalCounter, seconds
from storage import history, refusals
from storage.errors import NotEnoughLicenses, StorageUnavailable
from storage.facade import Storage
from storage.rows import chunked, now

IDLE_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 10.0
USAGE_RESOLUTION_S = 60
ROLL_UP_CHUNK = 50  # features per roll-up transaction: a short wait for admissions on SQLite

Held = tuple[FeatureActor, int]

log = logging.getLogger("lmrpc.actors")


class Supervisor:
    def __init__(
        self,
        storage: Storage,
        *,
        idle_timeout: float = IDLE_TIMEOUT_S,
        clock: Clock = now,
        usage_resolution: int = USAGE_RESOLUTION_S,
    ) -> None:
        self.storage = storage
        self._idle_timeout = idle_timeout
        self._actors: dict[int, FeatureActor] = {}
        self.clock = clock  # the usage history's time (tests move it by hand)
        self.sampler = BookedSampler(clock, usage_resolution)
        self.refusals = RefusalCounter(clock)
        self.usage_tiers = history.tiers(usage_resolution)
        self._rolled_up_to = 0  # the hour last packed
        self._committer = Committer(storage, self.sampler)
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
                    await self._keep_usage()
                # Shutting down: let actors finish the commits they have started and answer.
                with trio.move_on_after(DRAIN_TIMEOUT_S):
                    while any(actor.running for actor in self._actors.values()):
                        await trio.sleep(0.01)
                    await self._keep_usage()
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self._stopped.set()

    async def close(self) -> None:
        """Stop taking messages, let running actors drain (bounded), then stop."""
        self._closed.set()
        if self._nursery is not None:
            await self._stopped.wait()

    async def _keep_usage(self) -> None:
        """Housekeeping that may fail without harm: it is tried again on the next tick, and
        never takes the actors down with it."""
        try:
            await self.flush_refusals()
            await self.roll_up()
        except StorageUnavailable:
            log.warning("usage housekeeping postponed: storage unavailable")
        except Exception:
            log.exception("usage housekeeping failed; it is tried again on the next tick")

    async def flush_refusals(self) -> None:
        """Write the refusals counted since the last flush, in one transaction."""
        pending = self.refusals.take()
        if not pending:
            return
        try:
            await self.storage.write(lambda conn: refusals.add(conn, pending))
        except BaseException:
            self.refusals.put_back(pending)
            raise

    async def roll_up(self) -> None:
        """Pack the usage history's complete hours (storage/history.py), once per hour, a
        chunk of features per transaction so that admissions never wait long behind it."""
        current = seconds(self.clock())
        hour = current - current % self.usage_tiers[0].block
        if hour <= self._rolled_up_to:
            return
        tiers = self.usage_tiers
        pending = await self.storage.read(lambda conn: history.to_roll_up(conn, tiers, current))
        for chunk in chunked(pending, ROLL_UP_CHUNK):
            await self.storage.write(
                partial(history.roll_up, all_tiers=tiers, now=current, feature_ids=chunk)
            )
        await self.storage.write(lambda conn: history.drop_expired(conn, tiers, current))
        self._rolled_up_to = hour

    def refuse(self, refusal: NotEnoughLicenses, cluster: str) -> None:
        """Count a -32010 answer (metrics and the refused-demand history)."""
        self.refused += 1
        self.refusals.count(refusal, cluster)

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
        except NotEnoughLicenses as refusal:
            actor = self._actors.get(feature_id)
            feature = actor.feature if actor is not None else None
            self.refuse(refusal, feature.cluster_client_id if feature is not None else "")
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
