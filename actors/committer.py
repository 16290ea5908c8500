"""Group commit across features: one storage transaction for the groups of many actors.

Each feature actor decides its own feature's bookings in order, but a transaction per
actor would make every booking pay a commit when load is spread over many features. The
committer takes every group waiting at that moment, runs them in one transaction
(``book_groups``), and hands each actor its result. While a transaction runs, the next
groups gather, so the batch grows with the load.
"""

from collections.abc import Sequence

import trio

from actors.messages import Reply
from actors.transactions import FeatureGroup, GroupResult, book_groups
from actors.usage import BookedSampler
from storage.facade import Storage

MAX_GROUPS = 256
QUEUE = 4096


class Committer:
    def __init__(self, storage: Storage, sampler: BookedSampler) -> None:
        self._storage = storage
        self._sampler = sampler
        self._send, self._receive = trio.open_memory_channel[tuple[FeatureGroup, Reply]](QUEUE)

    async def commit(self, group: FeatureGroup) -> GroupResult:
        """The group's outcomes and fresh feature row, or NotFound for a deleted feature;
        raises StorageUnavailable when the transaction failed."""
        reply = Reply()
        await self._send.send((group, reply))
        result: GroupResult = await reply.wait()
        return result

    async def run(self) -> None:
        async with self._receive:
            async for first in self._receive:
                waiting = [first]
                while len(waiting) < MAX_GROUPS:
                    try:
                        waiting.append(self._receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._commit(waiting)

    async def _commit(self, waiting: Sequence[tuple[FeatureGroup, Reply]]) -> None:
        groups = [group for group, _ in waiting]
        slot = self._sampler.due(group.feature_id for group in groups)
        try:
            results = await self._storage.write(lambda conn: book_groups(conn, groups, slot))
        except Exception as error:  # the transaction rolled back: nothing was booked
            for _, reply in waiting:
                reply.fail(error)
            return
        for (_, reply), result in zip(waiting, results, strict=True):
            reply.succeed(result)
