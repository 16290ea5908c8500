"""The supervisor: creates feature actors on demand, retires idle ones, replaces failed ones.

All actor tasks run in the supervisor's nursery (structured concurrency: shutdown follows
the tree). Callers talk to actors only through the supervisor's methods.
"""

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import trio

from actors.committer import Committer
from actors.feature_actor import FeatureActor
from actors.messages import Book
from actors.transactions import BookingRequest, JobRequest
from actors.usage import BookedSampler, Clock, RefusalCounter, seconds
from storage import history, refusals
from storage.errors import DomainError, NotEnoughLicenses, StorageUnavailable
from storage.facade import Storage
from storage.rows import chunked, now

IDLE_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 10.0
USAGE_RESOLUTION_S = 60
ROLL_UP_CHUNK = 50  # features per roll-up transaction: a short wait for admissions on SQLite

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
        """Own the actors' nursery until ``close``; retire idle actors meanwhile.

        The actors' tasks have a nursery of their own inside the committer's, so shutting
        down waits for exactly them to finish their commits and answer (bounded), while
        the committer still serves those commits."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._committer.run)
                with trio.CancelScope() as drain:
                    async with trio.open_nursery() as actors:
                        self._nursery = actors
                        task_status.started()
                        while not self._closed.is_set():
                            with trio.move_on_after(self._idle_timeout / 4):
                                await self._closed.wait()
                            self._retire_idle()
                            await self._keep_usage()
                        drain.deadline = trio.current_time() + DRAIN_TIMEOUT_S
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

    def refuse(self, refusal: NotEnoughLicenses) -> None:
        """Count a -32010 answer (metrics and the refused-demand history)."""
        self.refused += 1
        self.refusals.count(refusal)

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

    def _open(self) -> trio.Nursery:
        if self._nursery is None or self._closed.is_set():
            raise StorageUnavailable("the service is shutting down")
        return self._nursery

    async def book(self, feature_id: int, request: BookingRequest) -> dict[str, Any]:
        """Admit one booking (or raise NotEnoughLicenses, NotFound, …)."""
        [outcome] = await self.book_many([(feature_id, request)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def book_many(
        self, bookings: Sequence[tuple[int, BookingRequest]]
    ) -> list[dict[str, Any] | Exception]:
        """Admit (feature_id, request) bookings, each on its own: their outcomes in order, a
        booking or the error refusing it. The bookings of one feature go to its actor as
        one message, so a batch of calls costs a message per feature, not per call."""
        nursery = self._open()
        by_feature: dict[int, list[int]] = {}
        for index, (feature_id, _) in enumerate(bookings):
            by_feature.setdefault(feature_id, []).append(index)
        messages = []
        for feature_id, indexes in by_feature.items():
            actor = self._actors.get(feature_id)
            if actor is None:
                actor = FeatureActor(feature_id, self._committer, self._forget)
                self._actors[feature_id] = actor
            message = Book([bookings[i][1] for i in indexes])
            await actor.deliver(message, nursery)
            messages.append((indexes, message))
        outcomes: dict[int, dict[str, Any] | Exception] = {}
        for indexes, message in messages:
            try:
                answers = await message.reply.wait()
            except Exception as error:  # the whole group failed (storage, a deleted feature)
                answers = [error] * len(indexes)
            for index, answer in zip(indexes, answers, strict=True):
                outcomes[index] = answer
        for outcome in outcomes.values():
            if isinstance(outcome, NotEnoughLicenses):
                self.refuse(outcome)
        self.admitted += sum(isinstance(o, dict) for o in outcomes.values())
        return [outcomes[index] for index in range(len(bookings))]

    async def create_job(self, job: JobRequest) -> dict[str, Any]:
        """Create a job with its bookings, all or nothing, in the committer's next
        transaction beside other bookings (or raise NotEnoughLicenses, Conflict, …).

        The job goes straight to the committer, not through its features' actors: its
        transaction checks every feature under lock, so nothing needs holding meanwhile,
        and a job start costs one commit shared with others, as a booking does.
        """
        self._open()
        result = await self._committer.commit(job)
        if isinstance(result, NotEnoughLicenses):
            self.refuse(result)
        if isinstance(result, DomainError):
            raise result
        assert isinstance(result, dict)
        self.admitted += len(result["bookings"])
        return result
