"""What a gateway process keeps of the catalogue and the users: read-through, shared by REST
and Socket.IO, so the hot path (reserve, lock, buy) asks the database nothing.

An event edited or deleted through any gateway is dropped from every gateway's cache by a
`CatalogChanged` item on the engine's feed; a short lifetime bounds any race with it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import SeatClient
from actors.messages import CatalogChanged, FeedItem
from persistence import catalog, users
from persistence.records import EventRecord
from sales.identity import user_stamp

EVENT_LIFETIME_SECONDS = 30.0
EVENT_CAPACITY = 10_000
CATEGORY_CAPACITY = 100_000
USER_CAPACITY = 1_000_000


class Directory:
    def __init__(self, db: AsyncEngine, seats: SeatClient) -> None:
        self._db = db
        self._seats = seats
        self._events: OrderedDict[int, tuple[float, EventRecord]] = OrderedDict()
        self._loading: dict[int, asyncio.Future[EventRecord | None]] = {}
        self._generation = 0  # bumped by every change notice
        self._users: dict[int, int] = {}  # user id -> user_stamp; rows are never deleted
        # category id -> event id; a category deleted since is refused by its actor
        self._categories: OrderedDict[int, int] = OrderedDict()
        self._unsubscribe = seats.subscribe(self._on_feed)

    def close(self) -> None:
        self._unsubscribe()

    async def event(self, event_id: int) -> EventRecord | None:
        now = time.monotonic()
        cached = self._events.get(event_id)
        if cached is not None and now - cached[0] < EVENT_LIFETIME_SECONDS:
            return cached[1]
        # One query per event however many requests miss at once (a rush on a cold gateway).
        loading = self._loading.get(event_id)
        if loading is None:
            loading = asyncio.ensure_future(self._fetch(event_id))
            self._loading[event_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(event_id, None))
        return await asyncio.shield(loading)

    async def _fetch(self, event_id: int) -> EventRecord | None:
        now = time.monotonic()
        generation = self._generation
        async with self._db.connect() as conn:
            record = await catalog.get_event(conn, event_id)
        if record is None:
            self._events.pop(event_id, None)
            return None
        if generation != self._generation:
            return record  # an event changed while we read: this copy may predate it
        self._events[event_id] = (now, record)
        self._events.move_to_end(event_id)
        if len(self._events) > EVENT_CAPACITY:
            self._events.popitem(last=False)
        return record

    async def event_of_category(self, category_id: int) -> int | None:
        """The event a category belongs to, or None when there is no such category."""
        known = self._categories.get(category_id)
        if known is not None:
            return known
        async with self._db.connect() as conn:
            category = await catalog.get_category(conn, category_id)
        if category is None:
            return None
        self._categories[category_id] = category.event_id
        if len(self._categories) > CATEGORY_CAPACITY:
            self._categories.popitem(last=False)
        return category.event_id

    async def user_since(self, user_id: int) -> int | None:
        """The user row's `user_stamp`, or None: a verified token can outlive its user (a wiped
        database, a reused secret), and its id can come back as somebody else."""
        known = self._users.get(user_id)
        if known is not None:
            return known
        async with self._db.connect() as conn:
            user = await users.get_user(conn, user_id)
        if user is None:
            return None
        stamp = self._users[user_id] = user_stamp(user.created_at)
        if len(self._users) > USER_CAPACITY:
            self._users.pop(next(iter(self._users)))
        return stamp

    async def event_changed(self, event_id: int) -> None:
        """Call after an event's row changed: every gateway forgets it."""
        self._forget(event_id)
        await self._seats.publish(CatalogChanged(event_id))

    def _on_feed(self, item: FeedItem) -> None:
        if isinstance(item, CatalogChanged):
            self._forget(item.event_id)

    def _forget(self, event_id: int) -> None:
        self._generation += 1
        self._events.pop(event_id, None)
        self._loading.pop(event_id, None)
        # A deleted event's categories must not stay "known": each call naming one would start
        # an actor process only to find its category missing. Events change rarely; the scan
        # is over a bounded map.
        for category_id in [c for c, e in self._categories.items() if e == event_id]:
            del self._categories[category_id]
