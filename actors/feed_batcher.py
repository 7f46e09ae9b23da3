"""A category's changes, coalesced for the feed: at most one item per interval, and the
latest state always goes out last. Nothing pending is dropped before the hub took it: a
failed publish keeps its changes for the next, and a hub that restarted gets the whole state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from actors.messages import Availability, CategoryChanged, FeedItem, HoldView

log = logging.getLogger(__name__)

# Sends items to the hub; answers the hub's generation (a new one: the hub restarted).
Publish = Callable[[list[FeedItem]], Awaitable[int]]
RETRY_SECONDS = 0.5


class FeedBatcher:
    def __init__(
        self,
        publish: Publish,
        state: Callable[[], Availability | None],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        holds: Callable[[], Sequence[HoldView]] = tuple,
    ) -> None:
        self._publish = publish
        self._state = state
        self._holds = holds
        self._interval = interval
        self._clock = clock
        self._added: dict[str, HoldView] = {}
        self._removed: set[str] = set()
        self._dirty = False
        # The next item carries every live hold (a mirror replaces the category's holds).
        self._complete = False
        self._generation: int | None = None  # of the hub that took the last item
        self._last_publish = 0.0
        self._publisher: asyncio.Task[None] | None = None
        self._sending = 0  # publishes awaiting the hub's answer

    @property
    def idle(self) -> bool:
        """Nothing pending and nothing on its way: an item in flight may still fail (and be
        kept) or meet a restarted hub (which then needs the whole state)."""
        return not self._dirty and not self._sending

    def mark(self, added: Sequence[HoldView], removed: Sequence[str]) -> None:
        """Something changed: holds added (or shrunk) and lock ids removed, if any."""
        for lock_id in removed:
            self._added.pop(lock_id, None)
            self._removed.add(lock_id)
        for view in added:
            self._removed.discard(view.lock_id)
            self._added[view.lock_id] = view
        self._touch()

    def republish(self) -> None:
        """Send the whole state next (activation, or a hub that lost it)."""
        self._complete = True
        self._touch()

    def _touch(self) -> None:
        self._dirty = True
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_loop())

    async def flush(self) -> bool:
        """Publish what is pending now; False when the hub did not take it (kept for later)."""
        availability = self._state()
        if not self._dirty or availability is None:
            return True
        added, removed, complete = self._added, self._removed, self._complete
        if complete:
            item = CategoryChanged(availability, tuple(self._holds()), (), complete=True)
        else:
            item = CategoryChanged(availability, tuple(added.values()), tuple(removed))
        self._added, self._removed, self._dirty, self._complete = {}, set(), False, False
        self._last_publish = self._clock()
        self._sending += 1
        try:
            generation = await self._publish([item])
        except Exception as error:
            # Retried every RETRY_SECONDS while the hub is away: a line each, no traceback.
            log.warning(
                "publishing category %s failed (%s); kept for the next try",
                availability.category_id,
                type(error).__name__,
            )
            self._restore(added, removed, complete)
            return False
        finally:
            self._sending -= 1
        if self._generation is not None and generation != self._generation and not complete:
            # The hub restarted since our last item and lost the state before it.
            self.republish()
        self._generation = generation
        return True

    async def _publish_loop(self) -> None:
        while self._dirty:
            wait = self._last_publish + self._interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            if not await self.flush():
                await asyncio.sleep(RETRY_SECONDS)

    def _restore(self, added: dict[str, HoldView], removed: set[str], complete: bool) -> None:
        """Put back what a failed publish carried, under anything marked since (newer wins)."""
        for lock_id in removed:
            if lock_id not in self._added:
                self._removed.add(lock_id)
        for lock_id, view in added.items():
            if lock_id not in self._removed and lock_id not in self._added:
                self._added[lock_id] = view
        self._complete = self._complete or complete
        self._dirty = True
