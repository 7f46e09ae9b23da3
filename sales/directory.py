"""What a gateway process keeps of the catalogue and the users: read-through, shared by REST
and Socket.IO, so the hot path (reserve, lock, buy) asks the database nothing.

An event created, edited or deleted through any gateway is dropped from every gateway's cache
by a `CatalogChanged` item on the engine's feed; a short lifetime bounds any race with it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import SeatClient
from actors.messages import CatalogChanged, FeedItem
from persistence import catalog, users
from persistence.records import EventRecord
from sales.identity import user_stamp

EVENT_LIFETIME_SECONDS = 30.0
EVENT_CAPACITY = 10_000
# A page of the event list: short-lived, because "upcoming" moves with the clock. A browsing
# crowd asks for the same few pages; the bench's browse scenario spent more of the gateway's
# CPU on one list in ten requests than on the nine ticket reads beside it.
LISTING_LIFETIME_SECONDS = 1.0
LISTING_CAPACITY = 1_000
CATEGORY_CAPACITY = 100_000
USER_CAPACITY = 1_000_000
# A crowd of new buyers misses the user cache once each: their look-ups share one query per
# batch instead of one connection and query each (11% of a gateway's samples in a 30,000-buyer
# flash sale went to looking up users one by one).
USER_BATCH = 500
MAX_USER_ID = 2**31 - 1  # users.id is a 32-bit integer


K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Listing:
    """A page of the event list, as its routes ask for it."""

    limit: int
    offset: int = 0
    upcoming: bool = False  # only events still to come
    event_category: str | None = None


class Directory:
    def __init__(self, db: AsyncEngine, seats: SeatClient) -> None:
        self._db = db
        self._seats = seats
        self._events: OrderedDict[int, tuple[float, EventRecord]] = OrderedDict()
        self._loading: dict[int, asyncio.Future[EventRecord | None]] = {}
        self.listing_lifetime = LISTING_LIFETIME_SECONDS
        self.listing_capacity = LISTING_CAPACITY
        self._listings: OrderedDict[Listing, tuple[float, list[EventRecord]]] = OrderedDict()
        self._listing_loads: dict[Listing, asyncio.Future[list[EventRecord]]] = {}
        self._generation = 0  # bumped by every change notice
        self._users: dict[int, int] = {}  # user id -> user_stamp; rows are never deleted
        self._user_loads = _Batches(self._fetch_users, USER_BATCH)
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
        return await _once(self._loading, event_id, self._fetch)

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

    async def events(self, listing: Listing) -> list[EventRecord]:
        """A page of the event list, by date; at most `listing_lifetime` seconds old, and never
        older than a change to the catalogue this process has heard of."""
        cached = self._listings.get(listing)
        if cached is not None and time.monotonic() - cached[0] < self.listing_lifetime:
            return cached[1]
        return await _once(self._listing_loads, listing, self._fetch_listing)

    async def _fetch_listing(self, listing: Listing) -> list[EventRecord]:
        now = time.monotonic()
        generation = self._generation
        async with self._db.connect() as conn:
            records = await catalog.list_events(
                conn,
                upcoming_after=datetime.now(UTC) if listing.upcoming else None,
                event_category=listing.event_category,
                limit=listing.limit,
                offset=listing.offset,
            )
        if generation == self._generation:
            self._listings[listing] = (now, records)
            self._listings.move_to_end(listing)
            while len(self._listings) > self.listing_capacity:
                self._listings.popitem(last=False)
        return records

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
        if user_id > MAX_USER_ID:
            return None  # no such row can exist, and it must not fail the batch it would join
        return await self._user_loads.load(user_id)

    async def _fetch_users(self, user_ids: list[int]) -> dict[int, int | None]:
        async with self._db.connect() as conn:
            created = await users.creation_times(conn, user_ids)
        stamps: dict[int, int | None] = dict.fromkeys(user_ids)
        for user_id, created_at in created.items():
            stamps[user_id] = self._users[user_id] = user_stamp(created_at)
        while len(self._users) > USER_CAPACITY:
            self._users.pop(next(iter(self._users)))
        return stamps

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
        self._listings.clear()  # any page may hold the event, or move because of it
        self._listing_loads.clear()
        # A deleted event's categories must not stay "known": each call naming one would start
        # an actor process only to find its category missing. Events change rarely; the scan
        # is over a bounded map.
        for category_id in [c for c, e in self._categories.items() if e == event_id]:
            del self._categories[category_id]


class _Batches(Generic[K, V]):
    """Loads keys in batches, one batch at a time: the keys asked for while a batch is out go
    together in the next one, so the batches grow with the load and the queries do not. A key
    asked for again before its answer shares the load already under way."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]], size: int) -> None:
        self._fetch = fetch
        self._size = size
        self._waiting: dict[K, asyncio.Future[V]] = {}  # asked for, not yet sent
        self._sent: dict[K, asyncio.Future[V]] = {}
        self._loader: asyncio.Task[None] | None = None

    async def load(self, key: K) -> V:
        answer = self._sent.get(key) or self._waiting.get(key)
        if answer is None:
            answer = self._waiting[key] = asyncio.get_running_loop().create_future()
            answer.add_done_callback(_retrieve)
            if self._loader is None:
                self._loader = asyncio.ensure_future(self._run())
        # A caller that gives up does not cancel the answer others wait for.
        return await asyncio.shield(answer)

    async def _run(self) -> None:
        try:
            while self._waiting:
                keys = list(itertools.islice(self._waiting, self._size))
                batch = {key: self._waiting.pop(key) for key in keys}
                self._sent.update(batch)
                try:
                    found = await self._fetch(keys)
                except Exception as exc:  # every caller of this batch gets the failure
                    for answer in batch.values():
                        answer.set_exception(exc)
                except BaseException:
                    for answer in batch.values():
                        answer.cancel()
                    raise
                else:
                    for key, answer in batch.items():
                        answer.set_result(found[key])
                finally:
                    for key in keys:
                        del self._sent[key]
        finally:
            self._loader = None
            for answer in self._waiting.values():  # only on cancellation: at shutdown
                answer.cancel()
            self._waiting.clear()


def _retrieve(answer: asyncio.Future[Any]) -> None:
    """Mark a failure seen: every caller of a batch may have given up before it came."""
    if not answer.cancelled():
        answer.exception()


async def _once(loads: dict[K, asyncio.Future[V]], key: K, load: Callable[[K], Awaitable[V]]) -> V:
    """`load(key)`, run once however many callers miss at once (a rush on a cold gateway);
    a caller that gives up does not cancel the load the others wait for."""
    loading = loads.get(key)
    if loading is None:
        loading = asyncio.ensure_future(load(key))
        loads[key] = loading
        loading.add_done_callback(lambda done: _drop_load(loads, key, done))
    return await asyncio.shield(loading)


def _drop_load(loads: dict[K, asyncio.Future[V]], key: K, done: asyncio.Future[V]) -> None:
    if loads.get(key) is done:  # a forget may have replaced it with a newer load already
        del loads[key]
