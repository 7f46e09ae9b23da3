"""The hold journal of one category actor: the hold changes of every batch, made durable
before the batch is answered, many batches to a transaction (invariant 4).

A journal write per command would cap a hot category at PostgreSQL's commit rate; as with
`GroupCommit`, every batch that waits while one transaction runs goes into the next one, so
a flash sale pays one commit per round of batches. Snapshots are the compaction points.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from actors.inventory import Hold
from actors.messages import HoldView
from persistence.hold_journal import JournalEntry, dropped

log = logging.getLogger(__name__)

# Writes entries in one transaction; answers the highest seq written.
Append = Callable[[list[JournalEntry]], Awaitable[int | None]]


class HoldJournal:
    """`note` what changed (synchronously, as the desk decides); `flush` makes every change
    noted so far durable, sharing a transaction with whoever else flushes meanwhile."""

    def __init__(self, append: Append) -> None:
        self._append = append
        self._noted: list[JournalEntry] = []
        self._queue: list[tuple[list[JournalEntry], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._last: asyncio.Future[None] | None = None  # of the latest changes sent
        # The highest seq known durable, in the order entries were noted: a snapshot taken now
        # includes every entry up to it.
        self.durable_seq = 0
        # Entries ever noted: how much the journal grew (snapshots compact it when it outweighs
        # one, see Snapshotter).
        self.noted = 0

    def note(self, added: Iterable[HoldView | Hold], removed: Iterable[str]) -> None:
        before = len(self._noted)
        self._noted.extend(
            JournalEntry(h.lock_id, h.owner, h.quantity, h.expires_at) for h in added
        )
        self._noted.extend(dropped(lock_id) for lock_id in removed)
        self.noted += len(self._noted) - before

    @property
    def idle(self) -> bool:
        return not self._noted and not self._queue and (self._writer is None or self._writer.done())

    async def flush(self) -> None:
        """Return once every change noted before this call is durable; raise if it is not."""
        if not self._noted:
            if self._last is not None and not self._last.done():
                # Nothing new, but earlier changes this batch's answers rest on are in flight.
                await asyncio.shield(self._last)
            return
        entries, self._noted = self._noted, []
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((entries, future))
        self._last = future
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        await asyncio.shield(future)

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            entries = [entry for group, _ in batch for entry in group]
            try:
                seq = await self._append(entries)
            except Exception as exc:
                log.exception("the hold journal refused %d changes", len(entries))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # the actor retires; its callers retry elsewhere
                continue
            if seq is not None:
                self.durable_seq = max(self.durable_seq, seq)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


def replay(holds: Sequence[Hold], entries: Sequence[JournalEntry]) -> list[Hold]:
    """A snapshot's holds with the journal after it applied in order: the latest word wins."""
    current = {hold.lock_id: hold for hold in holds}
    for entry in entries:
        if entry.dropped:
            current.pop(entry.lock_id, None)
        else:
            current[entry.lock_id] = Hold(
                entry.lock_id, entry.owner, entry.quantity, entry.expires_at
            )
    return list(current.values())
