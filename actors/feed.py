"""The change feed: one named actor every category publishes to and every gateway follows.

Gateways long-poll it with a cursor; one that is new or fell too far behind gets the whole
current state first. This is the cross-process fan-out: it works across processes and nodes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

from actors.messages import CategoryChanged, FeedBatch, FeedItem
from actors.mirror import FeedMirror

RETAINED_ITEMS = 20_000


class FeedHub:
    def __init__(self, retained: int = RETAINED_ITEMS) -> None:
        self._items: deque[FeedItem] = deque(maxlen=retained)
        self._last = 0  # cursor of the newest item; items hold cursors last-len+1 .. last
        self._mirror = FeedMirror()
        self._arrived: asyncio.Event | None = None

    async def publish(self, items: list[FeedItem]) -> int:
        for item in items:
            if isinstance(item, CategoryChanged):
                self._mirror.apply(item)
            self._items.append(item)
            self._last += 1
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None
        return self._last

    async def poll(self, cursor: int | None, wait_seconds: float = 1.0) -> FeedBatch:
        """Items after `cursor`, waiting up to `wait_seconds` for one when there is none yet."""
        first = self._last - len(self._items) + 1
        if cursor is None or cursor > self._last or cursor < first - 1:
            return FeedBatch(cursor=self._last, items=(), reset=self._mirror.state())
        if cursor == self._last:
            if self._arrived is None:
                self._arrived = asyncio.Event()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait_seconds)
            except TimeoutError:
                return FeedBatch(cursor=cursor, items=())
            first = self._last - len(self._items) + 1
            if cursor < first - 1:
                return FeedBatch(cursor=self._last, items=(), reset=self._mirror.state())
        start = cursor - first + 1
        items = tuple(itertools.islice(self._items, start, None))
        return FeedBatch(cursor=cursor + len(items), items=items)

    async def ping(self) -> int:
        return self._last
