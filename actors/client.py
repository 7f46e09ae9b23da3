"""The category actors as a gateway process sees them: seat commands in, typed outcomes out.

`SeatClient` composes three parts: a `CommandBatcher` (one actor call per category carries
every command that waited), `CategoryHandles` (find, call and retry the named actors; the
only Ray in it is in `actors.remote`) and a `FeedMirror` that follows the change feed, so
reads of availability and of a user's holds never call an actor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.category import CategoryActor
from actors.coalescing import CommandBatcher
from actors.config import ActorConfig
from actors.feed import FeedHub
from actors.inventory import SaleRules
from actors.lockids import category_of_lock, hold_lock_id, new_request_id, request_id_from_key
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
    JoinWaitlist,
    LeaveWaitlist,
    OrderCancelled,
    OrderPlaced,
    Outcome,
    PlaceHold,
    Refused,
    ReleaseHold,
    UserNotice,
    WaitlistJoined,
    WaitlistLeft,
)
from actors.mirror import FeedMirror
from actors.refusals import HoldNotFound, Refusal, RefusalReason
from actors.remote import (
    CategoryHandles,
    HubHandle,
    Missing,
    Unavailable,
    engine_answers,
    in_control_thread,
)
from actors.trace import REQUEST_ID
from persistence import catalog
from persistence.pickling import pack, unpack
from persistence.records import OrderDraft, OrderRecord

log = logging.getLogger(__name__)

Listener = Callable[[FeedItem], None]
T = TypeVar("T")


CLOSE_SECONDS = 5.0


class SeatClient:
    def __init__(self, config: ActorConfig, db: AsyncEngine) -> None:
        self._config = config
        self._db = db
        self._handles = CategoryHandles(config, CategoryActor)
        self._batcher = CommandBatcher(self._execute)
        self._hub = HubHandle(config.namespace, FeedHub, config.call_timeout_seconds)
        self._mirror = FeedMirror()
        self._cursor: int | None = None
        self._generation: int | None = None  # of the hub our cursor belongs to
        self._closed = False
        self._probe: asyncio.Future[bool] | None = None
        self._listeners: list[Listener] = []
        self._follower: asyncio.Task[None] | None = None
        self._followed = asyncio.Event()

    @classmethod
    async def start(cls, config: ActorConfig, db: AsyncEngine) -> SeatClient:
        client = cls(config, db)
        client._follower = asyncio.create_task(client._follow())
        await asyncio.wait_for(client._followed.wait(), timeout=60)
        return client

    async def close(self) -> None:
        if self._follower is not None:
            follower, self._follower = self._follower, None
            self._closed = True  # a cancellation swallowed by a library still ends the loop
            follower.cancel()
            # Bounded: a poll of a hub Ray no longer answers has been seen to outlive its
            # cancellation, and a shutdown must not wait on it.
            done, _ = await asyncio.wait({follower}, timeout=CLOSE_SECONDS)
            if not done:
                log.warning("the change feed's follower did not stop; leaving it")

    # -- seat commands -----------------------------------------------------------------------

    async def hold(
        self,
        *,
        user_id: int,
        event_id: int,
        category_id: int,
        quantity: int,
        rules: SaleRules | None = None,
        request_key: str | None = None,
    ) -> HoldPlaced:
        """With `request_key` (the caller's Idempotency-Key), a replay makes no second hold:
        its lock id is the first one's, and the actor answers it with that hold."""
        command = PlaceHold(
            _hold_request_id(request_key),
            user_id,
            event_id,
            quantity,
            rules,
            trace=REQUEST_ID.get(),
        )
        return _expect(await self._submit(category_id, command), HoldPlaced)

    def replays_hold(self, user_id: int, category_id: int, request_key: str) -> bool:
        """Is a hold made with `request_key` live (so asking again places nothing new)?"""
        lock_id = hold_lock_id(category_id, user_id, _hold_request_id(request_key))
        return any(hold.lock_id == lock_id for hold in self.holds_of(user_id))

    async def join_waitlist(
        self,
        *,
        user_id: int,
        event_id: int,
        category_id: int,
        entry_id: int,
        quantity: int,
        rules: SaleRules | None = None,
    ) -> WaitlistJoined:
        command = JoinWaitlist(
            new_request_id(),
            user_id,
            event_id,
            entry_id,
            quantity,
            rules,
            trace=REQUEST_ID.get(),
        )
        return _expect(await self._submit(category_id, command), WaitlistJoined)

    async def leave_waitlist(self, *, user_id: int, category_id: int) -> WaitlistLeft:
        command = LeaveWaitlist(new_request_id(), user_id, trace=REQUEST_ID.get())
        return _expect(await self._submit(category_id, command), WaitlistLeft)

    async def release(
        self,
        *,
        user_id: int,
        category_id: int,
        lock_id: str | None = None,
        quantity: int | None = None,
    ) -> HoldsReleased:
        command = ReleaseHold(
            new_request_id(), user_id, lock_id=lock_id, quantity=quantity, trace=REQUEST_ID.get()
        )
        return _expect(await self._submit(category_id, command), HoldsReleased)

    async def confirm(
        self, *, lock_id: str, draft: OrderDraft, rules: SaleRules | None = None
    ) -> OrderPlaced:
        # The lock id names its category: one of another category is not in this actor.
        if category_of_lock(lock_id) != draft.category_id:
            raise HoldNotFound("Lock not found for this category")
        command = ConfirmHold(
            _request_id(draft), draft.user_id, lock_id, draft, rules, trace=REQUEST_ID.get()
        )
        return _expect(await self._submit(draft.category_id, command), OrderPlaced)

    async def buy(self, *, draft: OrderDraft, rules: SaleRules | None = None) -> OrderPlaced:
        command = Buy(_request_id(draft), draft.user_id, draft, rules, trace=REQUEST_ID.get())
        return _expect(await self._submit(draft.category_id, command), OrderPlaced)

    async def cancel(
        self, *, order: OrderRecord, only_pending: bool = False, by: int | None = None
    ) -> OrderCancelled:
        command = CancelOrder(new_request_id(), order.id, only_pending, by, trace=REQUEST_ID.get())
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
                except Refusal:
                    log.warning("category %s no longer exists", category_id)
                except Exception:
                    # Start-up must not hang on one category: its next call activates it.
                    log.exception("category %s could not be activated", category_id)

        await asyncio.gather(*(one(category_id) for category_id in category_ids))

    async def current(self, category_id: int) -> Availability:
        """The category's state as its actor holds it, activating the actor if needed."""
        availability: Availability = await self._call(category_id, "ready")
        self._mirror.note(availability)
        return availability

    # -- reads, served from the feed mirror -----------------------------------------------------

    async def availability(self, category_ids: Sequence[int]) -> dict[int, Availability]:
        mirror = self._mirror.availability
        known = {cid: mirror[cid] for cid in category_ids if cid in mirror}
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
                known[cid] = mirror.setdefault(cid, fallback)
        return known

    def live_availability(self, category_id: int) -> Availability | None:
        """The state an active actor last published, or None if none has since the feed began."""
        known = self._mirror.availability.get(category_id)
        return known if known is not None and known.epoch != 0 else None

    def holds_of(self, user_id: int) -> list[HoldView]:
        return self._mirror.holds_of(user_id, time.time())

    def hold_count(self, user_id: int) -> int:
        return self._mirror.hold_count(user_id)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def notify_user(self, user_id: int, event: str, payload: dict[str, Any]) -> None:
        await self.publish(UserNotice(user_id, event, payload))

    async def publish(self, *items: FeedItem) -> None:
        """Send items to every gateway following the feed, this one included. Best effort:
        what they announce (an order completed or cancelled) is already in the ledger, and a
        request that changed it must not fail because the hub is restarting; a notice the
        hub could not take is logged and not delivered."""
        try:
            await self._hub.publish(list(items))
        except Exception as error:
            log.warning("the change feed did not take %d notices (%r)", len(items), error)

    async def selling(self) -> bool:
        """Can this process reach the category actors? Asks Ray's control store, not any one
        actor or node: a lost node stops its own categories (which answer 503 until they
        restart elsewhere), not the gateway. One probe at a time, shared by every caller:
        a control store that hangs must not pile up blocked threads."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(in_control_thread(engine_answers))
        return await asyncio.shield(self._probe)

    async def realtime(self) -> bool:
        """Is the change feed flowing: the hub answers and this process follows it."""
        try:
            await self._hub.ping()
        except Exception:
            return False
        return self._follower is not None and not self._follower.done()

    # -- calls ------------------------------------------------------------------------------------

    async def _submit(self, category_id: int, command: Command) -> Outcome:
        deadline = self._handles.deadline(category_id)
        try:
            outcome = await self._batcher.submit(category_id, command, deadline)
        except TimeoutError:
            raise Unavailable(
                f"category {category_id} did not answer within {deadline:g} s"
            ) from None
        self._learn(outcome)
        return outcome

    async def _execute(self, category_id: int, commands: list[Command]) -> list[Outcome]:
        outcomes: list[Outcome] = unpack(await self._call(category_id, "execute", pack(commands)))
        return outcomes

    async def _call(self, category_id: int, method: str, *args: Any) -> Any:
        try:
            return await self._handles.call(category_id, method, *args)
        except Missing:
            raise Refusal("Ticket category not found", RefusalReason.CATEGORY_UNAVAILABLE) from None

    # -- the feed mirror ------------------------------------------------------------------------

    def _learn(self, outcome: Outcome) -> None:
        """Our own outcomes are known before the feed brings them: read your writes."""
        if isinstance(outcome, Refused):
            return
        self._mirror.note(outcome.availability)
        if isinstance(outcome, HoldPlaced):
            self._mirror.add_holds([outcome.hold])
        elif isinstance(outcome, HoldsReleased):
            self._mirror.drop_holds(hold.lock_id for hold in outcome.holds)
        elif isinstance(outcome, OrderPlaced) and outcome.order.lock_id:
            self._mirror.drop_holds([outcome.order.lock_id])

    async def _follow(self) -> None:
        while not self._closed:
            try:
                batch: FeedBatch = await self._hub.poll(self._cursor, 1.0, self._generation)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # One line per attempt while the hub is away (it restarts by itself).
                log.warning("the change feed is unreachable (%s); reconnecting", repr(error))
                await asyncio.sleep(0.2)
                self._hub.reconnect()
                self._cursor = None
                continue
            self._apply(batch)
            self._followed.set()

    def _apply(self, batch: FeedBatch) -> None:
        if batch.reset is not None:
            if self._generation in (None, batch.generation):
                self._mirror.reset(batch.reset)
            else:
                # A restarted hub: what it knows is partial until every live category has
                # republished, so nothing we know is forgotten ("unknown", not "empty").
                log.info("the change feed restarted; re-syncing from its categories")
                self._mirror.merge(batch.reset)
        self._generation = batch.generation
        self._cursor = batch.cursor
        for item in batch.items:
            if isinstance(item, CategoryChanged):
                self._mirror.apply(item)
            for listener in list(self._listeners):
                try:
                    listener(item)
                except Exception:
                    log.exception("a feed listener failed")


def _request_id(draft: OrderDraft) -> str:
    return request_id_from_key(draft.request_key) if draft.request_key else new_request_id()


def _hold_request_id(request_key: str | None) -> str:
    # Apart from orders' ids: one key sent to reserve and then to buy names two requests.
    return request_id_from_key("hold:" + request_key) if request_key else new_request_id()


def _expect(outcome: Outcome, kind: type[T]) -> T:
    if isinstance(outcome, Refused):
        raise Refusal(outcome.message, outcome.reason)
    if not isinstance(outcome, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(outcome).__name__}")
    return outcome
