"""Write-behind snapshots of a category's holds: saved when the inventory changed, for a
fast restore and as the hold journal's compaction point. Not for durability (the ledger and
the journal are that): a failed save is retried next time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from actors.inventory import Hold, Inventory
from persistence.snapshots import CategorySnapshot

log = logging.getLogger(__name__)

Save = Callable[[CategorySnapshot], Awaitable[None]]


class Snapshotter:
    """`covered` names the last hold-journal entry the inventory includes when it is read: the
    snapshot records it, so activation replays only what came after (and the rest is truncated).
    """

    def __init__(self, save: Save, covered: Callable[[], int] = lambda: 0) -> None:
        self._save = save
        self._covered = covered
        self._saved_version = -1

    async def save_if_changed(self, inventory: Inventory) -> None:
        if inventory.version != self._saved_version:
            await self.save(inventory)

    async def save(self, inventory: Inventory) -> None:
        state = inventory.snapshot()
        covered = self._covered()
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


def holds_of(snapshot: CategorySnapshot) -> list[Hold]:
    return [Hold(h.lock_id, h.owner, h.quantity, h.expires_at) for h in snapshot.holds]
