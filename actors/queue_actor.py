"""The Ray host of one event's waiting room: the only writer of its queue.

A shell around `WaitingRoom` (the pure core). It adds the I/O: joins group-committed to the
ledger before they are answered, the opening draw and each admission tick stored in one
statement before anyone hears of them, admissions published on the change feed, and the
event's free seats read from that same feed.

Free seats come from the change feed (a `FeedMirror`, as every gateway keeps), not from calls
to the category actors or queries of the ledger: the feed already carries every category's
state, so following it costs the category actors nothing and the ledger nothing, and a tick
reads memory. A category that never activated is not on the feed; its seats come from the
ledger once (exact then: no holds live anywhere), as `SeatClient.availability` does.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.config import CALL_TIMEOUT_SECONDS, START_TIMEOUT_SECONDS
from actors.feed import FeedHub
from actors.messages import CategoryChanged, FeedBatch
from actors.mirror import FeedMirror
from actors.queue import (
    EntryState,
    QueueAdmitted,
    QueueClosed,
    QueuePlace,
    RoomSettings,
    WaitingRoom,
)
from actors.refusals import LedgerUnavailable
from actors.remote import HubHandle, Missing, retire_current_actor, wake_current_actor
from persistence import catalog, queue
from persistence.database import create_engine
from persistence.records import EventRecord

log = logging.getLogger(__name__)

NO_WAITING_ROOM = "This event has no waiting room"


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """What a queue actor needs, shipped to it at creation (the pass is signed by gateways:
    the actor never sees the secret)."""

    database_url: str
    namespace: str = "boxoffice"
    pass_seconds: float = 600.0
    tick_seconds: float = 0.1
    # How often the actor re-reads its event (rate, opening, enabled, categories).
    refresh_seconds: float = 2.0
    # A queue nobody waits in (none yet, all admitted, or sold out) and nobody has called for
    # this long retires: everything it knows is in the ledger, and the next call reloads it.
    idle_seconds: float = 60.0
    db_pool_size: int = 2
    call_retries: int = 30
    # Deadlines of a call, its retries included, as a category's: 503 past them.
    call_timeout_seconds: float = CALL_TIMEOUT_SECONDS
    start_timeout_seconds: float = START_TIMEOUT_SECONDS


def room_settings(event: EventRecord, pass_seconds: float) -> RoomSettings | None:
    """The room of `event` as the core takes it; None when the event has none enabled."""
    room = event.waiting_room
    if room is None or not room.enabled:
        return None
    opens = room.opens_at or event.sales_start_at
    return RoomSettings(room.admit_per_second, opens.timestamp() if opens else 0.0, pass_seconds)


class QueueActor:
    def __init__(
        self,
        config: QueueConfig,
        event_id: int,
        retire: Callable[[], None] = retire_current_actor,
        wake: Callable[[], None] = wake_current_actor,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._event_id = event_id
        self._retire = retire
        # The draw's randomness: the system's, unless a test injects a seeded one.
        self._rng = rng or random.SystemRandom()
        self._room: WaitingRoom | None = None
        self._db: AsyncEngine | None = None
        self._loading: asyncio.Lock | None = None
        # Joins, draws and admissions are stored one at a time, in the order they apply.
        self._writing: asyncio.Lock | None = None
        self._joining: dict[int, asyncio.Future[None]] = {}
        self._to_write: list[int] = []
        self._writer: asyncio.Task[None] | None = None
        self._hub = HubHandle(config.namespace, FeedHub)
        self._mirror = FeedMirror(track_holds=False)
        self._ledger_seats: dict[int, tuple[int, int]] = {}  # category -> (total, sold)
        self._categories: tuple[int, ...] = ()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed_announced = False
        self._last_call = time.monotonic()
        wake()

    # -- calls ----------------------------------------------------------------------------

    async def ready(self) -> int:
        """Load (after a restart, at once); answers how many wait."""
        return (await self._loaded()).waiting

    async def close(self) -> None:
        """Stop the actor's own work (ticks, feed, refresh) and its connections."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._db is not None:
            await self._db.dispose()

    async def join(self, user_id: int) -> QueuePlace:
        """Put the user in line, stored before this answers; once per user."""
        room = await self._loaded()
        if not room.knows(user_id):
            future = self._joining.get(user_id)
            if future is None:
                future = asyncio.get_running_loop().create_future()
                self._joining[user_id] = future
                self._to_write.append(user_id)
                if self._writer is None or self._writer.done():
                    self._writer = asyncio.create_task(self._write_joins())
            await asyncio.shield(future)
        place = room.place(user_id)
        assert place is not None
        return place

    async def places(self, user_ids: Sequence[int]) -> list[QueuePlace | None]:
        room = await self._loaded()
        return [room.place(user_id) for user_id in user_ids]

    async def used(self, user_ids: Sequence[int]) -> None:
        """These admitted buyers took seats (reported by gateways, batched)."""
        (await self._loaded()).used(user_ids)

    async def line(self) -> list[int]:
        """The admission order once drawn (for audits and tests)."""
        return (await self._loaded()).line()

    # -- loading ----------------------------------------------------------------------------

    async def _loaded(self) -> WaitingRoom:
        self._last_call = time.monotonic()
        if self._room is not None:
            return self._room
        if self._loading is None:
            self._loading = asyncio.Lock()
            self._writing = asyncio.Lock()
        async with self._loading:
            if self._room is None:
                self._room = await self._load()
                loop = asyncio.get_running_loop()
                for work in (self._tick_forever(), self._follow_feed(), self._refresh_forever()):
                    self._tasks.append(loop.create_task(work))
        return self._room

    async def _load(self) -> WaitingRoom:
        if self._db is None:
            self._db = create_engine(self._config.database_url, pool_size=self._config.db_pool_size)
        async with self._db.connect() as conn:
            event = await catalog.get_event(conn, self._event_id)
            settings = None if event is None else room_settings(event, self._config.pass_seconds)
            if event is None or settings is None:
                raise Missing(NO_WAITING_ROOM)
            rows = await queue.entries(conn, self._event_id)
            admitted = [row.user_id for row in rows if row.admitted_at is not None]
            bought = await queue.buyers(conn, self._event_id, admitted)
        self._categories = tuple(c.id for c in event.categories if c.is_active)
        entries = [
            EntryState(
                row.user_id,
                row.seq,
                row.early,
                row.rank,
                row.admitted_at,
                row.pass_expires_at,
                used=row.user_id in bought,
            )
            for row in rows
        ]
        room, draw_due = WaitingRoom.restore(self._event_id, settings, entries, time.time())
        if draw_due:
            await self._open(room)
        log.info("queue of event %s loaded: %d waiting", self._event_id, room.waiting)
        return room

    # -- joins, group-committed ----------------------------------------------------------------

    async def _write_joins(self) -> None:
        while self._to_write:
            batch, self._to_write = self._to_write, []
            try:
                await self._store_joins(batch)
            except Exception as exc:
                log.warning("queue joins of event %s not stored: %s", self._event_id, exc)
                failure = LedgerUnavailable("The queue could not be saved; try again shortly")
                for user_id in batch:
                    future = self._joining.pop(user_id, None)
                    if future is not None and not future.done():
                        future.set_exception(failure)
            else:
                for user_id in batch:
                    future = self._joining.pop(user_id, None)
                    if future is not None and not future.done():
                        future.set_result(None)

    async def _store_joins(self, users: list[int]) -> None:
        room, db, writing = self._room, self._db, self._writing
        assert room is not None and db is not None and writing is not None
        async with writing:
            if room.due_to_open(time.time()):
                await self._open(room)
            early = not room.opened
            async with db.begin() as conn:
                await queue.add(conn, self._event_id, users, early)
            # In the order they were stored (and answered): arrival order.
            for user_id in users:
                room.join(user_id)

    async def _open(self, room: WaitingRoom) -> None:
        """The draw, stored whole before it applies."""
        order = room.draw(self._rng)
        assert self._db is not None
        async with self._db.begin() as conn:
            await queue.store_draw(conn, self._event_id, order)
        room.open(order)
        log.info("queue of event %s opened: %d drawn", self._event_id, len(order))

    # -- admission ticks ---------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Nothing applied that was not stored: the next tick tries again.
                log.exception("admission tick of event %s failed", self._event_id)
            await asyncio.sleep(self._config.tick_seconds)

    async def _tick(self) -> None:
        room, db, writing = self._room, self._db, self._writing
        assert room is not None and db is not None and writing is not None
        async with writing:
            now = time.time()
            if room.due_to_open(now):
                await self._open(room)
            free, sold_out = self._seats()
            plan = room.plan(now, free, sold_out)
            if plan is not None:
                async with db.begin() as conn:
                    await queue.admit(
                        conn, self._event_id, plan.users, plan.admitted_at, plan.expires_at
                    )
                room.admit(plan)
        if plan is not None:
            item = QueueAdmitted(self._event_id, plan.users, plan.admitted_at, plan.expires_at)
            await self._publish(item)
        if room.closed and not self._closed_announced:
            self._closed_announced = True
            await self._publish(QueueClosed(self._event_id))

    async def _publish(self, item: QueueAdmitted | QueueClosed) -> None:
        # Best effort: gateways read every queued buyer's place each second anyway.
        try:
            await self._hub.publish([item])
        except Exception:
            log.warning("queue of event %s could not publish %s", self._event_id, item)
            self._hub.reconnect()

    def _seats(self) -> tuple[int, bool]:
        """The event's free seats (neither held nor sold), and whether all are sold."""
        free = 0
        sold_out = bool(self._categories)
        for category_id in self._categories:
            live = self._mirror.availability.get(category_id)
            if live is not None:
                total, held, sold = live.total, live.held, live.sold
            elif category_id in self._ledger_seats:
                (total, sold), held = self._ledger_seats[category_id], 0
            else:
                return 0, False  # not known yet: admit nobody rather than guess
            free += max(total - held - sold, 0)
            sold_out = sold_out and sold >= total
        return free, sold_out

    # -- the feed and the catalogue ------------------------------------------------------

    async def _follow_feed(self) -> None:
        cursor: int | None = None
        generation: int | None = None  # of the hub the cursor belongs to
        while True:
            try:
                batch: FeedBatch = await self._hub.poll(cursor, 1.0, generation)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("queue of event %s lost the change feed; reconnecting", self._event_id)
                await asyncio.sleep(0.2)
                self._hub.reconnect()
                cursor = None
                continue
            if batch.reset is not None:
                if generation in (None, batch.generation):
                    self._mirror.reset(batch.reset)
                else:
                    # A restarted hub knows only part until the categories republish: keep
                    # what we know (seats unknown are not seats free).
                    self._mirror.merge(batch.reset)
            generation = batch.generation
            cursor = batch.cursor
            for item in batch.items:
                if isinstance(item, CategoryChanged):
                    self._mirror.apply(item)

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("queue of event %s could not re-read its event", self._event_id)
            await asyncio.sleep(self._config.refresh_seconds)

    async def _refresh(self) -> None:
        assert self._db is not None and self._room is not None
        async with self._db.connect() as conn:
            event = await catalog.get_event(conn, self._event_id)
            settings = None if event is None else room_settings(event, self._config.pass_seconds)
            unknown = [c for c in self._categories if c not in self._mirror.availability]
            totals = await catalog.category_totals(conn, unknown)
        if event is None or settings is None:
            # Deleted, or the organizer turned the room off: nobody needs this actor now.
            log.info("queue of event %s retires: %s", self._event_id, NO_WAITING_ROOM)
            self._retire()
            return
        self._room.reconfigure(settings)
        room = self._room
        idle = time.monotonic() - self._last_call
        if (room.waiting == 0 or room.closed) and idle >= self._config.idle_seconds:
            log.info("queue of event %s retires: nobody waits", self._event_id)
            self._retire()
            return
        self._categories = tuple(c.id for c in event.categories if c.is_active)
        for category_id, (_, total, sold) in totals.items():
            self._ledger_seats[category_id] = (total, sold)
