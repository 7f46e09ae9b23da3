"""The change feed: one named actor every category publishes to and every gateway follows.

Gateways long-poll it with a cursor; one that is new or fell too far behind gets the whole
current state first. This is the cross-process fan-out: it works across processes and nodes.
The hub keeps nothing durable: a restarted hub is a new generation, asks every live category
to republish its whole state, and its followers merge rather than start over (FeedMirror).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from actors.messages import CategoryChanged, FeedBatch, FeedItem
from actors.mirror import FeedMirror
from actors.remote import wake_current_actor

log = logging.getLogger(__name__)

RETAINED_ITEMS = 20_000

# Asks every live category actor to republish its whole state; answers how many were asked.
Resync = Callable[[], Awaitable[int]]


class FeedHub:
    def __init__(
        self,
        resync: Resync | None = None,
        retained: int = RETAINED_ITEMS,
        wake: Callable[[], None] = wake_current_actor,
    ) -> None:
        self.generation = time.time_ns()
        self._items: deque[FeedItem] = deque(maxlen=retained)
        self._last = 0  # cursor of the newest item; items hold cursors last-len+1 .. last
        self._mirror = FeedMirror()
        self._arrived: asyncio.Event | None = None
        self._resync = resync
        if resync is not None:
            wake()  # a (re)started hub asks at once for the state it does not have

    async def ready(self) -> int:
        """Ask every live category for its whole state (called by the hub itself at start)."""
        if self._resync is None:
            return 0
        try:
            asked = await self._resync()
        except Exception:
            log.exception("feed hub generation %s could not ask for a resync", self.generation)
            return 0
        log.info("feed hub generation %s asked %d categories to republish", self.generation, asked)
        return asked

    async def publish(self, items: list[FeedItem]) -> int:
        """Append `items`; answers the hub's generation, so a publisher sees a restart."""
        for item in items:
            if isinstance(item, CategoryChanged):
                self._mirror.apply(item)
            self._items.append(item)
            self._last += 1
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None
        return self.generation

    async def poll(
        self, cursor: int | None, wait_seconds: float = 1.0, generation: int | None = None
    ) -> FeedBatch:
        """Items after `cursor` (a cursor of this `generation`), waiting up to `wait_seconds`
        for one when there is none yet; the whole state when the cursor means nothing here."""
        first = self._last - len(self._items) + 1
        if (
            cursor is None
            or generation != self.generation
            or cursor > self._last
            or cursor < first - 1
        ):
            return self._reset()
        if cursor == self._last:
            if self._arrived is None:
                self._arrived = asyncio.Event()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait_seconds)
            except TimeoutError:
                return FeedBatch(cursor=cursor, items=(), generation=self.generation)
            first = self._last - len(self._items) + 1
            if cursor < first - 1:
                return self._reset()
        start = cursor - first + 1
        items = tuple(itertools.islice(self._items, start, None))
        return FeedBatch(cursor=cursor + len(items), items=items, generation=self.generation)

    def _reset(self) -> FeedBatch:
        return FeedBatch(
            cursor=self._last, items=(), reset=self._mirror.state(), generation=self.generation
        )

    async def ping(self) -> int:
        return self._last
