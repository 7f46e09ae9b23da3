"""The change feed: one named actor every category publishes to and every gateway follows.

Gateways long-poll it with a cursor; one that is new or fell too far behind gets the whole
current state first. This is the cross-process fan-out: it works across processes and nodes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any

import ray

from actors.messages import (
    Availability,
    CategoryChanged,
    FeedBatch,
    FeedItem,
    FeedState,
    HoldView,
)

HUB_NAME = "feed-hub"
RETAINED_ITEMS = 20_000


class FeedHub:
    def __init__(self, retained: int = RETAINED_ITEMS) -> None:
        self._items: deque[FeedItem] = deque(maxlen=retained)
        self._last = 0  # cursor of the newest item; items hold cursors last-len+1 .. last
        self._availability: dict[int, Availability] = {}
        self._holds: dict[str, HoldView] = {}
        self._arrived: asyncio.Event | None = None

    async def publish(self, items: list[FeedItem]) -> int:
        for item in items:
            if isinstance(item, CategoryChanged):
                self._apply(item)
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
            return FeedBatch(cursor=self._last, items=(), reset=self._state())
        if cursor == self._last:
            if self._arrived is None:
                self._arrived = asyncio.Event()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait_seconds)
            except TimeoutError:
                return FeedBatch(cursor=cursor, items=())
            first = self._last - len(self._items) + 1
            if cursor < first - 1:
                return FeedBatch(cursor=self._last, items=(), reset=self._state())
        start = cursor - first + 1
        items = tuple(itertools.islice(self._items, start, None))
        return FeedBatch(cursor=cursor + len(items), items=items)

    async def ping(self) -> int:
        return self._last

    def _apply(self, change: CategoryChanged) -> None:
        current = self._availability.get(change.availability.category_id)
        if current is not None and current.stamp > change.availability.stamp:
            return
        self._availability[change.availability.category_id] = change.availability
        for lock_id in change.holds_removed:
            self._holds.pop(lock_id, None)
        for hold in change.holds_added:
            self._holds[hold.lock_id] = hold

    def _state(self) -> FeedState:
        return FeedState(
            availability=tuple(self._availability.values()), holds=tuple(self._holds.values())
        )


def hub_handle(namespace: str) -> Any:
    """The namespace's hub, created by whoever asks first; it outlives any one gateway."""
    return (
        ray.remote(FeedHub)
        .options(
            name=HUB_NAME,
            namespace=namespace,
            get_if_exists=True,
            lifetime="detached",
            num_cpus=0,
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=10_000,
        )
        .remote()
    )
