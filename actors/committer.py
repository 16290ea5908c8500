"""Group commit across features: one storage transaction for the groups of many actors
and for the jobs being created.

Each feature actor gathers its own feature's bookings in order, but a transaction per
actor, or per job, would make every booking and every job start pay a commit when load is
spread over many features. The committer takes every item waiting at that moment, runs
them in one transaction (``commit_items``), and hands each its result. While a transaction
runs, the next items gather, so the batch grows with the load.
"""

from collections.abc import Sequence

import trio

from actors.messages import Reply
from actors.transactions import Item, ItemResult, commit_items
from actors.usage import BookedSampler
from storage.facade import Storage

MAX_ITEMS = 256
QUEUE = 4096


class Committer:
    def __init__(self, storage: Storage, sampler: BookedSampler) -> None:
        self._storage = storage
        self._sampler = sampler
        self._send, self._receive = trio.open_memory_channel[tuple[Item, Reply]](QUEUE)

    async def commit(self, item: Item) -> ItemResult:
        """The item's result (``commit_items``); raises StorageUnavailable when the
        transaction failed."""
        reply = Reply()
        await self._send.send((item, reply))
        result: ItemResult = await reply.wait()
        return result

    async def run(self) -> None:
        async with self._receive:
            async for first in self._receive:
                waiting = [first]
                while len(waiting) < MAX_ITEMS:
                    try:
                        waiting.append(self._receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._commit(waiting)

    async def _commit(self, waiting: Sequence[tuple[Item, Reply]]) -> None:
        items = [item for item, _ in waiting]
        try:
            results = await self._storage.write(
                lambda conn: commit_items(conn, items, self._sampler.due)
            )
        except Exception as error:  # the transaction rolled back: nothing was booked
            for _, reply in waiting:
                reply.fail(error)
            return
        for (_, reply), result in zip(waiting, results, strict=True):
            reply.succeed(result)
