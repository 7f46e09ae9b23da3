"""Write-behind snapshots of a category's holds: saved when the inventory changed, for a
fast restore and as the hold journal's compaction point. Not for durability (the ledger and
the journal are that): a failed save is retried next time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from actors.inventory import Hold, Inventory
from persistence.snapshots import CategorySnapshot

log = logging.getLogger(__name__)

Save = Callable[[CategorySnapshot], Awaitable[None]]
# A snapshot's cost grows with the live holds (a hot category: 100,000 and more, megabytes of
# JSON), and the housekeeper wakes at every expiry: saves are spaced so that they take at
# most about this share of the actor's time. The hold journal keeps what happens meanwhile.
MAX_SHARE = 0.1


class Snapshotter:
    """`covered` names the last hold-journal entry the inventory includes when it is read: the
    snapshot records it, so activation replays only what came after (and the rest is truncated).

    With `journaled` (how many journal entries were ever noted), a snapshot is also a
    compaction: it is due only once the journal since the last one has as many entries as the
    snapshot would have holds. Before that, replaying the journal costs an activation no more
    than reading a snapshot, and writing one would cost more than the changes it compacts.
    Each save then pays for at least as many changes as it writes holds, so a category spends
    O(1) per change on snapshots, whatever its size: with a 30 s hold lifetime, one with
    10,000 live holds saved all of them every second before, and now about every 15 s.
    """

    def __init__(
        self,
        save: Save,
        covered: Callable[[], int] = lambda: 0,
        interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        journaled: Callable[[], int] | None = None,
    ) -> None:
        self._save = save
        self._covered = covered
        self._interval = interval
        self._clock = clock
        self._journaled = journaled
        self._journaled_at_save = 0
        self._saved_version = -1
        self._due = -float("inf")  # no save before this (clock time)

    async def save_if_changed(self, inventory: Inventory) -> None:
        """Save if the inventory changed since the last save and a save is due: at most once
        per `interval`, never more than MAX_SHARE of the time, and (with `journaled`) once
        the journal since the last save outweighs a snapshot."""
        if inventory.version == self._saved_version or self._clock() < self._due:
            return
        if self._journaled is not None:
            grown = self._journaled() - self._journaled_at_save
            if grown < max(inventory.hold_count, 1):
                return
        await self.save(inventory)

    async def save(self, inventory: Inventory) -> None:
        started = self._clock()
        state = inventory.snapshot()
        covered = self._covered()
        journaled = self._journaled() if self._journaled is not None else 0
        snapshot = CategorySnapshot(
            version=state.version,
            sold=state.sold,
            total=state.total,
            holds=state.holds,
            journal_seq=covered,
        )
        try:
            await self._save(snapshot)
        except Exception:
            log.exception("a snapshot failed; retried at the next tick")
            return
        self._saved_version = state.version
        self._journaled_at_save = journaled
        took = self._clock() - started
        self._due = started + max(self._interval, took / MAX_SHARE)


def holds_of(snapshot: CategorySnapshot) -> list[Hold]:
    return [Hold(h.lock_id, h.owner, h.quantity, h.expires_at) for h in snapshot.holds]
