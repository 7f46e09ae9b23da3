"""Group commit: every order queued while one ledger transaction runs goes into the next one.

With a transaction per order a hot category confirms at PostgreSQL's commit rate; grouped,
one commit carries a whole batch (benchmarks/engine_costs.py: 5.9x the confirms per second).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from persistence.records import OrderDraft, PlacedOrder

log = logging.getLogger(__name__)

OrderItem = tuple[OrderDraft, str]  # the order, and the lock id it confirms
Write = Callable[[list[OrderItem]], Awaitable[list[PlacedOrder]]]


class _Pending:
    """One order waiting for the group commit: what to write and who waits for it."""

    __slots__ = ("item", "result")

    def __init__(self, item: OrderItem, result: asyncio.Future[PlacedOrder]) -> None:
        self.item = item
        self.result = result


class GroupCommit:
    """`commit` answers once the orders are durable; `write` is one transaction of many."""

    def __init__(self, write: Write, *, grouped: bool = True) -> None:
        self._write = write
        self._grouped = grouped
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        return not self._queue and (self._writer is None or self._writer.done())

    async def commit(self, items: Sequence[OrderItem]) -> list[PlacedOrder]:
        if not self._grouped:
            # One transaction per order, as a naive host would: only for measuring the gain.
            singles = await asyncio.gather(*(self._write([item]) for item in items))
            return [placed[0] for placed in singles]
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, loop.create_future()) for item in items]
        self._queue.extend(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        return list(await asyncio.gather(*(p.result for p in pending)))

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                placed = await self._write([p.item for p in batch])
            except Exception as exc:
                log.exception("group commit of %d orders failed", len(batch))
                for p in batch:
                    if not p.result.done():
                        p.result.set_exception(exc)
                continue
            for p, result in zip(batch, placed, strict=True):
                if not p.result.done():
                    p.result.set_result(result)
