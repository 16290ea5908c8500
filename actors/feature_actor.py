"""One feature's actor: the only code in the process that admits bookings of the feature.

It takes its messages one group at a time: consecutive bookings are decided together and
persisted in one transaction (group commit), and every caller is answered after the
commit. Its counters are a cache of the database, which stays the truth.

An actor runs a Trio task only while its mailbox has messages; idle, it is a small object
holding its cached counters (a few hundred bytes), so 100k features stay cheap.
"""

import logging
from collections.abc import Callable

import trio

from actors.committer import Committer
from actors.messages import Book, Hold, Message
from actors.rule import Counters
from actors.transactions import FeatureGroup, counters_of
from storage import admission as primitives
from storage.errors import DomainError, NotEnoughLicenses, NotFound, StorageUnavailable
from storage.facade import Storage

log = logging.getLogger("lmrpc.actors")

MAILBOX = 4096
MAX_GROUP = 512


class FeatureActor:
    __slots__ = (
        "_committer",
        "_mailbox",
        "_on_failure",
        "_space",
        "_storage",
        "feature",
        "feature_id",
        "held",
        "idle_since",
        "running",
        "stale",
    )

    def __init__(
        self,
        feature_id: int,
        storage: Storage,
        committer: Committer,
        on_failure: Callable[["FeatureActor"], None],
    ) -> None:
        self.feature_id = feature_id
        self._storage = storage
        self._committer = committer
        self._on_failure = on_failure  # the supervisor forgets a failed actor
        self._mailbox: list[Message] = []
        self._space: trio.Event | None = None  # set when a full mailbox drains
        self.feature: primitives.FeatureRow | None = None
        self.held = 0
        self.stale = True
        self.running = False
        self.idle_since = trio.current_time()

    @property
    def counters(self) -> Counters | None:
        return counters_of(self.feature) if self.feature else None

    async def deliver(self, message: Message, nursery: trio.Nursery) -> None:
        """Queue ``message``, waiting while the mailbox is full; start the task if idle."""
        while len(self._mailbox) >= MAILBOX:
            if self._space is None:
                self._space = trio.Event()
            await self._space.wait()
        self._mailbox.append(message)
        if not self.running:
            self.running = True
            nursery.start_soon(self._run, name=f"feature-actor-{self.feature_id}")

    async def _run(self) -> None:
        """Serve messages until the mailbox is empty; on a failure answer every waiting
        caller with an error and leave, so the next message starts a fresh actor."""
        group: list[Message] = []
        try:
            while self._mailbox:
                group, self._mailbox = self._mailbox[:MAX_GROUP], self._mailbox[MAX_GROUP:]
                if self._space is not None:
                    self._space.set()
                    self._space = None
                await self._handle(group)
                group = []
        except NotFound as gone:  # the feature was deleted: answer and go
            self._fail_all(group, gone)
        except Exception as error:
            log.exception("feature actor %s failed; it will be restarted", self.feature_id)
            self._fail_all(group, error)
        except BaseException:
            self._fail_all(group, StorageUnavailable("shutting down"))
            raise
        finally:
            self.running = False
            self.idle_since = trio.current_time()

    def _fail_all(self, group: list[Message], error: BaseException) -> None:
        self._on_failure(self)
        for message in group + self._mailbox:
            message.reply.fail(error)
        self._mailbox = []

    async def _handle(self, group: list[Message]) -> None:
        """Serve a group in order. When storage fails, the rest of the group fails with the
        same error at once: it has waited that long already, and trying each message in
        turn against a stuck database would make the last caller wait once per message."""
        books: list[Book] = []
        for index, message in enumerate(group):
            if isinstance(message, Book):
                books.append(message)
                continue
            failed = await self._commit(books) if books else None
            books = []
            if failed is None:
                failed = await self._hold(message)
            if failed is not None:
                for rest in group[index:]:
                    rest.reply.fail(failed)
                return
        if books:
            await self._commit(books)

    async def _commit(self, books: list[Book]) -> StorageUnavailable | None:
        """Commit the books and answer them; returns the storage error that failed them."""
        group = FeatureGroup(self.feature_id, [book.request for book in books], self.held)
        try:
            result = await self._committer.commit(group)
        except StorageUnavailable as error:
            self.stale = True
            for book in books:
                book.reply.fail(error)
            return error
        if isinstance(result, NotFound):
            for book in books:
                book.reply.fail(result)
            raise result
        outcomes, self.feature = result
        self.stale = False
        for book, outcome in zip(books, outcomes, strict=True):
            if isinstance(outcome, DomainError):
                book.reply.fail(outcome)
            else:
                book.reply.succeed(outcome)
        return None

    async def _hold(self, hold: Hold) -> StorageUnavailable | None:
        """Grant from the cached counters when they allow it; a refusal is checked against
        a fresh read first, so a stale cache never refuses wrongly."""
        if self.stale or not self._fits(hold.quantity):
            try:
                await self.refresh()
            except StorageUnavailable as error:
                hold.reply.fail(error)
                return error
        if self._fits(hold.quantity):
            self.held += hold.quantity
            hold.reply.succeed(None)
            return None
        assert self.feature is not None and self.counters is not None
        hold.reply.fail(
            NotEnoughLicenses(
                self.feature_id,
                self.feature.product_feature,
                hold.quantity,
                max(self.counters.available(self.held), 0),
            )
        )
        return None

    def _fits(self, quantity: int) -> bool:
        counters = self.counters
        return counters is not None and quantity <= counters.available(self.held)

    async def refresh(self) -> None:
        self.feature = await self._storage.priority_read(
            lambda conn: primitives.read_feature(conn, self.feature_id, lock=False)
        )
        self.stale = False

    def settle(self, quantity: int, booked: bool) -> None:
        """A held quantity was booked by its job (``booked``) or given back."""
        self.held = max(self.held - quantity, 0)
        if booked:
            self.stale = True

    @property
    def retirable(self) -> bool:
        return not self.running and not self._mailbox and self.held == 0
