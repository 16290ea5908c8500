"""One feature's actor: the one queue in the process for bookings of the feature.

It takes its messages one group at a time: the bookings waiting are decided together, in
order, and persisted in one transaction (group commit), and every caller is answered after
the commit. It keeps no counters: the transaction decides on the feature's row read under
lock, so nothing written elsewhere (another process, an update, a deleted job) can make an
actor admit or refuse wrongly.

An actor runs a Trio task only while its mailbox has messages; idle, it is a small object
(its mailbox and a few fields), so 100k features stay cheap.
"""

import logging
from collections.abc import Callable

import trio

from actors.committer import Committer
from actors.messages import Book
from actors.transactions import FeatureGroup
from storage.errors import NotFound, StorageUnavailable

log = logging.getLogger("lmrpc.actors")

MAILBOX = 4096
MAX_GROUP = 512


class FeatureActor:
    __slots__ = (
        "_committer",
        "_mailbox",
        "_on_failure",
        "_space",
        "feature_id",
        "idle_since",
        "running",
    )

    def __init__(
        self,
        feature_id: int,
        committer: Committer,
        on_failure: Callable[["FeatureActor"], None],
    ) -> None:
        self.feature_id = feature_id
        self._committer = committer
        self._on_failure = on_failure  # the supervisor forgets a failed actor
        self._mailbox: list[Book] = []
        self._space: trio.Event | None = None  # set when a full mailbox drains
        self.running = False
        self.idle_since = trio.current_time()

    async def deliver(self, message: Book, nursery: trio.Nursery) -> None:
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
        group: list[Book] = []
        try:
            while self._mailbox:
                group, self._mailbox = self._mailbox[:MAX_GROUP], self._mailbox[MAX_GROUP:]
                if self._space is not None:
                    self._space.set()
                    self._space = None
                await self._commit(group)
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

    def _fail_all(self, group: list[Book], error: BaseException) -> None:
        self._on_failure(self)
        for message in group + self._mailbox:
            message.reply.fail(error)
        self._mailbox = []

    async def _commit(self, books: list[Book]) -> None:
        """Commit the books and answer each; a failed transaction fails them all at once."""
        group = FeatureGroup(self.feature_id, [r for book in books for r in book.requests])
        try:
            result = await self._committer.commit(group)
        except StorageUnavailable as error:
            for book in books:
                book.reply.fail(error)
            return
        if isinstance(result, NotFound):
            for book in books:
                book.reply.fail(result)
            raise result
        assert isinstance(result, list)
        outcomes, start = result, 0
        for book in books:
            end = start + len(book.requests)
            book.reply.succeed(outcomes[start:end])
            start = end

    @property
    def retirable(self) -> bool:
        return not self.running and not self._mailbox
