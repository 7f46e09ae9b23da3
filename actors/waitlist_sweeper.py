"""Deleting the ledger rows of waiting-list entries the category served, behind the desk.

An entry leaves the list in memory the moment it is offered seats; its row goes soon after.
A crash in between only brings the entry back at activation (an offer made twice, never a
buyer lost), so this need not hold up the batch that made the offer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from actors.inventory import WaitEntry

log = logging.getLogger(__name__)

Delete = Callable[[list[int]], Awaitable[None]]
RETRY_SECONDS = 0.5


class WaitlistSweeper:
    def __init__(self, delete: Delete) -> None:
        self._delete = delete
        self._pending: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        return not self._pending and (self._task is None or self._task.done())

    def consumed(self, entries: Sequence[WaitEntry]) -> None:
        self._pending.update(entry.entry_id for entry in entries)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sweep())

    async def settled(self) -> None:
        """Until every row handed over so far is deleted."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def flush(self) -> None:
        while self._pending:
            batch = sorted(self._pending)
            try:
                await self._delete(batch)
            except Exception:
                log.exception("deleting %d served waiting-list rows failed", len(batch))
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._pending.difference_update(batch)

    async def _sweep(self) -> None:
        await self.flush()
