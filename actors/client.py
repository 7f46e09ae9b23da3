"""The engine as a gateway process sees it: seat operations in, typed outcomes out.

It finds each category's actor by name, coalesces concurrent commands for one category into
one actor call, retries a call that met a dead actor with the same request ids, and mirrors
the change feed so reads of availability and of a user's holds never call an actor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ray
from ray.exceptions import RayActorError, RayTaskError
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.category import (
    ActorRetired,
    CategoryMissing,
    actor_name,
    category_actor_class,
)
from actors.config import EngineConfig
from actors.feed import hub_handle
from actors.inventory import RefusalReason
from actors.lockids import category_of_lock, new_request_id, request_id_from_key
from actors.messages import (
    Availability,
    Buy,
    CancelOrder,
    CategoryChanged,
    Command,
    ConfirmHold,
    FeedBatch,
    FeedItem,
    HoldPlaced,
    HoldsReleased,
    HoldView,
    OrderCancelled,
    OrderPlaced,
    Outcome,
    PlaceHold,
    Refused,
    ReleaseHold,
    UserNotice,
)
from persistence import catalog
from persistence.records import OrderDraft, OrderRecord

log = logging.getLogger(__name__)

Listener = Callable[[FeedItem], None]
T = TypeVar("T")


class EngineRefused(Exception):
    """The category said no; nothing changed."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class EngineUnavailable(Exception):
    """The actor could not be reached after every retry."""


class _Channel:
    """Commands for one category waiting for the next actor call."""

    __slots__ = ("busy", "queue", "sender")

    def __init__(self) -> None:
        self.queue: list[tuple[Command, asyncio.Future[Outcome]]] = []
        self.busy = False
        self.sender: asyncio.Task[None] | None = None


class Engine:
    def __init__(self, config: EngineConfig, db: AsyncEngine) -> None:
        self._config = config
        self._db = db
        self._actor_class = category_actor_class()
        self._handles: dict[int, Any] = {}
        self._channels: dict[int, _Channel] = {}
        self._hub: Any = None
        self._cursor: int | None = None
        self._availability: dict[int, Availability] = {}
        self._holds: dict[str, HoldView] = {}
        self._listeners: list[Listener] = []
        self._follower: asyncio.Task[None] | None = None
        self._followed = asyncio.Event()

    @classmethod
    async def start(cls, config: EngineConfig, db: AsyncEngine) -> Engine:
        engine = cls(config, db)
        engine._hub = hub_handle(config.namespace)
        engine._follower = asyncio.create_task(engine._follow())
        await asyncio.wait_for(engine._followed.wait(), timeout=60)
        return engine

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
            self._follower = None

    # -- seat operations -------------------------------------------------------------------

    async def hold(
        self, *, user_id: int, event_id: int, category_id: int, quantity: int
    ) -> HoldPlaced:
        outcome = await self._submit(category_id, PlaceHold(new_request_id(), user_id, quantity))
        placed = _expect(outcome, HoldPlaced)
        if placed.hold.event_id != event_id:
            # Ids come from the client; the category's own facts decide. Undo and refuse.
            await self._submit(
                category_id, ReleaseHold(new_request_id(), user_id, lock_id=placed.hold.lock_id)
            )
            raise EngineRefused(
                RefusalReason.CATEGORY_UNAVAILABLE, "This category does not belong to that event"
            )
        return placed

    async def release(
        self,
        *,
        user_id: int,
        category_id: int,
        lock_id: str | None = None,
        quantity: int | None = None,
    ) -> HoldsReleased:
        command = ReleaseHold(new_request_id(), user_id, lock_id=lock_id, quantity=quantity)
        return _expect(await self._submit(category_id, command), HoldsReleased)

    async def confirm(self, *, lock_id: str, draft: OrderDraft) -> OrderPlaced:
        if category_of_lock(lock_id) != draft.category_id:
            raise EngineRefused(RefusalReason.HOLD_NOT_FOUND, "Lock not found for this category")
        request_id = _request_id(draft)
        command = ConfirmHold(request_id, draft.user_id, lock_id, draft)
        return _expect(await self._submit(draft.category_id, command), OrderPlaced)

    async def buy(self, *, draft: OrderDraft) -> OrderPlaced:
        command = Buy(_request_id(draft), draft.user_id, draft)
        return _expect(await self._submit(draft.category_id, command), OrderPlaced)

    async def cancel(self, *, order: OrderRecord) -> OrderCancelled:
        command = CancelOrder(new_request_id(), order.id)
        return _expect(await self._submit(order.category_id, command), OrderCancelled)

    async def activate(self, category_ids: Sequence[int], at_once: int = 8) -> None:
        """Bring categories back to life (after a restart, holds live only in actors).

        Several at a time: each activation starts a worker process, about a second.
        """
        slots = asyncio.Semaphore(at_once)

        async def one(category_id: int) -> None:
            async with slots:
                try:
                    await self.current(category_id)
                except EngineRefused:
                    log.warning("category %s no longer exists", category_id)
                except Exception:
                    # Start-up must not hang on one category: its next call activates it.
                    log.exception("category %s could not be activated", category_id)

        await asyncio.gather(*(one(category_id) for category_id in category_ids))

    async def current(self, category_id: int) -> Availability:
        """The category's state as its actor holds it, activating the actor if needed."""
        availability: Availability = await self._call(category_id, "ready")
        self._note_availability(availability)
        return availability

    # -- reads, served from the feed mirror ---------------------------------------------------

    async def availability(self, category_ids: Sequence[int]) -> dict[int, Availability]:
        known = {cid: self._availability[cid] for cid in category_ids if cid in self._availability}
        unknown = [cid for cid in category_ids if cid not in known]
        if unknown:
            # Never activated since the feed began: no holds live anywhere, the ledger is exact.
            async with self._db.connect() as conn:
                totals = await catalog.category_totals(conn, unknown)
            now = time.time()
            for cid, (event_id, total, sold) in totals.items():
                # Kept: only an actor changes a category, and its first feed item (stamped
                # later than this zero stamp) replaces the entry the moment it activates.
                fallback = Availability(event_id, cid, total, 0, sold, 0, now, 0)
                known[cid] = self._availability.setdefault(cid, fallback)
        return known

    def holds_of(self, user_id: int) -> list[HoldView]:
        now = time.time()
        return [h for h in self._holds.values() if h.owner == user_id and h.expires_at > now]

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def notify_user(self, user_id: int, event: str, payload: dict[str, Any]) -> None:
        await self.publish(UserNotice(user_id, event, payload))

    async def publish(self, *items: FeedItem) -> None:
        """Send items to every gateway following the feed, this one included."""
        await self._hub.publish.remote(list(items))

    async def healthy(self) -> bool:
        try:
            await asyncio.wait_for(self._hub.ping.remote(), timeout=2)
        except Exception:
            return False
        return self._follower is not None and not self._follower.done()

    # -- coalescing: one actor call per category carries every command that waited ---------

    async def _submit(self, category_id: int, command: Command) -> Outcome:
        channel = self._channels.get(category_id)
        if channel is None:
            channel = self._channels[category_id] = _Channel()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        channel.queue.append((command, future))
        if not channel.busy:
            channel.busy = True
            channel.sender = asyncio.create_task(self._drain(category_id, channel))
        outcome = await future
        self._learn(outcome)
        return outcome

    async def _drain(self, category_id: int, channel: _Channel) -> None:
        try:
            while channel.queue:
                batch, channel.queue = channel.queue, []
                try:
                    outcomes = await self._call(category_id, "execute", [c for c, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            channel.busy = False
            if not channel.queue:
                self._channels.pop(category_id, None)

    async def _call(self, category_id: int, method: str, *args: Any) -> Any:
        """Call the category's actor, activating it if needed; retry on a dead actor.

        A retried call carries the same request ids, so it cannot hold or sell twice.
        """
        delay = 0.02
        for _ in range(self._config.call_retries):
            handle = self._handle(category_id)
            try:
                return await getattr(handle, method).remote(*args)
            except RayTaskError as exc:
                cause = exc.as_instanceof_cause()  # type: ignore[no-untyped-call]
                if isinstance(cause, CategoryMissing):
                    self._forget(category_id, kill=True)
                    raise EngineRefused(
                        RefusalReason.CATEGORY_UNAVAILABLE, "Ticket category not found"
                    ) from None
                if not isinstance(cause, ActorRetired):
                    raise
            except RayActorError:
                pass
            self._forget(category_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise EngineUnavailable(f"category {category_id} did not answer")

    def _handle(self, category_id: int) -> Any:
        handle = self._handles.get(category_id)
        if handle is None:
            handle = self._actor_class.options(
                name=actor_name(category_id),
                namespace=self._config.namespace,
                get_if_exists=True,
                lifetime="detached",
            ).remote(self._config, category_id)
            self._handles[category_id] = handle
        return handle

    def _forget(self, category_id: int, kill: bool = False) -> None:
        handle = self._handles.pop(category_id, None)
        if kill and handle is not None:
            ray.kill(handle, no_restart=True)

    # -- the feed mirror ------------------------------------------------------------------

    def _learn(self, outcome: Outcome) -> None:
        """Our own outcomes are known before the feed brings them: read your writes."""
        if isinstance(outcome, Refused):
            return
        self._note_availability(outcome.availability)
        if isinstance(outcome, HoldPlaced):
            self._holds[outcome.hold.lock_id] = outcome.hold
        elif isinstance(outcome, HoldsReleased):
            for hold in outcome.holds:
                self._holds.pop(hold.lock_id, None)
        elif isinstance(outcome, OrderPlaced) and outcome.order.lock_id:
            self._holds.pop(outcome.order.lock_id, None)

    def _note_availability(self, availability: Availability) -> bool:
        current = self._availability.get(availability.category_id)
        if current is not None and current.stamp >= availability.stamp:
            return False
        self._availability[availability.category_id] = availability
        return True

    async def _follow(self) -> None:
        while True:
            try:
                batch: FeedBatch = await self._hub.poll.remote(self._cursor, 1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the change feed is unreachable; reconnecting")
                await asyncio.sleep(0.2)
                self._hub = hub_handle(self._config.namespace)
                self._cursor = None
                continue
            self._apply(batch)
            self._followed.set()

    def _apply(self, batch: FeedBatch) -> None:
        if batch.reset is not None:
            self._holds = {hold.lock_id: hold for hold in batch.reset.holds}
            for availability in batch.reset.availability:
                self._note_availability(availability)
        self._cursor = batch.cursor
        for item in batch.items:
            if isinstance(item, CategoryChanged):
                for lock_id in item.holds_removed:
                    self._holds.pop(lock_id, None)
                for hold in item.holds_added:
                    self._holds[hold.lock_id] = hold
                self._note_availability(item.availability)
            for listener in list(self._listeners):
                try:
                    listener(item)
                except Exception:
                    log.exception("a feed listener failed")


def _request_id(draft: OrderDraft) -> str:
    return request_id_from_key(draft.request_key) if draft.request_key else new_request_id()


def _expect(outcome: Outcome, kind: type[T]) -> T:
    if isinstance(outcome, Refused):
        raise EngineRefused(outcome.reason, outcome.message)
    if not isinstance(outcome, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(outcome).__name__}")
    return outcome
