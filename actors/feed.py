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

log = logging.getLogger(__name__)

RETAINED_ITEMS = 20_000

# Asks every live category actor to republish its whole state; answers how many were asked.
Resync = Callable[[], Awaitable[int]]


class FeedHub:
    def __init__(self, resync: Resync | None = None, retained: int = RETAINED_ITEMS) -> None:
        self.generation = time.time_ns()
        self._items: deque[FeedItem] = deque(maxlen=retained)
        self._last = 0  # cursor of the newest item; items hold cursors last-len+1 .. last
        self._mirror = FeedMirror()
        self._arrived: asyncio.Event | None = None
        self._resync = resync
        self._resyncing: asyncio.Task[int] | None = None

    def _start_resync(self) -> None:
        """On the first call this generation serves: ask every live category for its whole
        state. Not from the constructor: a call an actor sends itself while Ray restarts it
        fails at once ("the actor is restarting"), and the resync was lost that way."""
        if self._resyncing is None:
            self._resyncing = asyncio.ensure_future(self._ask_for_state())

    async def resynced(self) -> int:
        """How many categories this generation asked to republish (once asked)."""
        self._start_resync()
        assert self._resyncing is not None
        return await asyncio.shield(self._resyncing)

    async def _ask_for_state(self) -> int:
        if self._resync is None:
            return 0
        try:
            asked = await self._resync()
        except Exception:
            log.exception("feed hub generation %s could not ask for a resync", self.generation)
            return 0
        log.warning(
            "feed hub generation %s asked %d categories to republish", self.generation, asked
        )
        return asked

    async def publish(self, items: list[FeedItem]) -> int:
        """Append `items`; answers the hub's generation, so a publisher sees a restart."""
        self._start_resync()
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
        self._start_resync()
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
        self._start_resync()
        return self._last
