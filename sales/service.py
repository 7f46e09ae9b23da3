"""Every seat and order rule, in one place for every adapter: what is on sale, how many
tickets one request may take, holds, releases, orders (with or without a hold, once per
Idempotency-Key), who may see an order, and cancelling once.

It takes the caller's verified identity and plain values, returns domain values and raises
only typed refusals (`actors.refusals`); the REST routes, the hot path and the socket
handlers each shape their own answer from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import SeatClient
from actors.inventory import SaleRules
from actors.lockids import category_of_lock
from actors.messages import Availability, HoldPlaced, HoldsReleased, HoldView
from actors.refusals import (
    AlreadyWaiting,
    BadSalesWindow,
    CategoryNotFound,
    EventNotFound,
    HoldNotFound,
    NoAdmission,
    NotOnSale,
    NotWaiting,
    OrderAlreadyCancelled,
    OrderNotFound,
    Refusal,
    TooManyHolds,
    TooManyTickets,
)
from persistence import catalog, ledger, waitlist
from persistence.records import CategoryRecord, EventRecord, OrderDraft, OrderRecord, OrderStatus
from sales.admission import JOIN_THE_QUEUE, WaitingRooms
from sales.directory import Directory
from sales.fulfilment import CANCELLED_MESSAGE, OrderProcessor, order_notice
from sales.identity import Principal
from sales.tally import PLACED, REPLAYED, SalesTally

EVENT_NOT_FOUND = "Event not found"
ORDER_NOT_FOUND = "Order not found"
CATEGORY_NOT_FOUND = "Ticket category not found"


@dataclass(frozen=True, slots=True)
class WaitlistPlace:
    """Where a buyer stands on a category's waiting list."""

    event_id: int
    category_id: int
    quantity: int
    position: int  # 1 is next in line
    waiting: int  # everyone on the list


def rules_of(event: EventRecord, category: CategoryRecord) -> SaleRules:
    """The category's sales rules as this catalogue has them (the actor keeps the newest)."""
    return SaleRules.stricter(
        (_epoch(event.sales_start_at), _epoch(event.sales_end_at)),
        (_epoch(category.sales_start_at), _epoch(category.sales_end_at)),
        category.max_per_user,
        event.updated_at.timestamp(),
    )


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class Sales:
    def __init__(
        self,
        db: AsyncEngine,
        seats: SeatClient,
        directory: Directory,
        fulfilment: OrderProcessor,
        *,
        max_tickets_per_request: int,
        max_live_holds_per_user: int = 20,
        waiting_rooms: WaitingRooms | None = None,
    ) -> None:
        self._db = db
        self._seats = seats
        self._directory = directory
        self._fulfilment = fulfilment
        self._max_tickets = max_tickets_per_request
        self._max_live_holds = max_live_holds_per_user
        self.tally = SalesTally()
        self._rooms = waiting_rooms

    # -- what is on sale --------------------------------------------------------------------

    async def on_sale(self, event_id: int, category_id: int) -> tuple[EventRecord, CategoryRecord]:
        """The event and its category, if that category belongs to it and both are active."""
        event, category = await self._category_of_event(event_id, category_id)
        if not event.is_active:
            raise NotOnSale("This event is not active")
        if not category.is_active:
            raise NotOnSale("This ticket category is not on sale")
        return event, category

    @staticmethod
    def check_window_change(event: EventRecord, changes: dict[str, Any]) -> None:
        """An edit's sales window, merged with what it leaves unchanged, must be in order."""
        start = changes.get("sales_start_at", event.sales_start_at)
        end = changes.get("sales_end_at", event.sales_end_at)
        if start is not None and end is not None and end <= start:
            raise BadSalesWindow("salesEndAt must be after salesStartAt")

    def check_quantity(self, quantity: int) -> None:
        if quantity > self._max_tickets:
            raise TooManyTickets(f"quantity must be at most {self._max_tickets} per request")

    async def event(self, event_id: int) -> EventRecord | None:
        return await self._directory.event(event_id)

    async def _category_of_event(
        self, event_id: int, category_id: int
    ) -> tuple[EventRecord, CategoryRecord]:
        event = await self._directory.event(event_id)
        if event is None:
            raise EventNotFound(EVENT_NOT_FOUND)
        category = next((c for c in event.categories if c.id == category_id), None)
        if category is None:
            raise CategoryNotFound("Ticket category not found for this event")
        return event, category

    async def _existing_category(self, category_id: int) -> None:
        # Checked before any actor is called: an unknown id must never start an actor process.
        if await self._directory.event_of_category(category_id) is None:
            raise CategoryNotFound(CATEGORY_NOT_FOUND)

    # -- holds ------------------------------------------------------------------------------

    async def hold(
        self,
        caller: Principal,
        *,
        event_id: int,
        category_id: int,
        quantity: int,
        admission_pass: str | None = None,
        request_key: str | None = None,
    ) -> HoldPlaced:
        # Counted here, around the body rather than by a decorator: mutmut skips decorated
        # functions, and these are its most important ones.
        try:
            self.check_quantity(quantity)
            event, category = await self.on_sale(event_id, category_id)
            self._check_admission(caller, event, admission_pass)
            # A replay of a live hold counts nothing new: at the cap it still gets its hold.
            replay = request_key is not None and self._seats.replays_hold(
                caller.user_id, category_id, request_key
            )
            if not replay:
                self._check_live_holds(caller)
            placed = await self._seats.hold(
                user_id=caller.user_id,
                event_id=event_id,
                category_id=category_id,
                quantity=quantity,
                rules=rules_of(event, category),
                request_key=request_key,
            )
        except Refusal as refused:
            self.tally.refused("hold", refused.reason)
            raise
        self.tally.holds.add(PLACED)
        self._note_admitted_buyer(caller, event)
        return placed

    def _check_admission(
        self, caller: Principal, event: EventRecord, admission_pass: str | None
    ) -> None:
        # An attribute of the event already loaded: an event without a waiting room pays
        # nothing more.
        if not event.queued:
            return
        if self._rooms is None:
            raise NoAdmission(JOIN_THE_QUEUE)
        self._rooms.check(caller, event, admission_pass)

    def _note_admitted_buyer(self, caller: Principal, event: EventRecord) -> None:
        """An admitted buyer took seats: their pass no longer covers a free one."""
        if event.queued and self._rooms is not None:
            self._rooms.note_used(event.id, caller.user_id)

    def _check_live_holds(self, caller: Principal) -> None:
        # Best-effort across categories: each actor knows only its own holds, so this reads the
        # feed mirror; racing requests to several categories at once can pass it together.
        # The exact per-category limit (maxPerUser) is the actor's.
        if self._seats.hold_count(caller.user_id) >= self._max_live_holds:
            raise TooManyHolds(
                f"You already have {self._max_live_holds} live holds; buy or release some first"
            )

    async def release_lock(self, caller: Principal, lock_id: str) -> HoldsReleased:
        """Release one of the caller's holds by its lock id (which names its category)."""
        category_id = category_of_lock(lock_id)
        if category_id is None:
            raise HoldNotFound("Lock not found or already released")
        return await self.release(caller, category_id=category_id, lock_id=lock_id)

    async def release(
        self,
        caller: Principal,
        *,
        category_id: int,
        lock_id: str | None = None,
        quantity: int | None = None,
        event_id: int | None = None,
    ) -> HoldsReleased:
        """Release the hold `lock_id`, or else `quantity` seats among the caller's holds of the
        category. Only the caller's own holds: the actor refuses anyone else's."""
        if event_id is not None:
            await self._category_of_event(event_id, category_id)
        else:
            await self._existing_category(category_id)
        if lock_id is None and quantity is None:
            raise HoldNotFound("Name a lockId or a quantity to release")
        return await self._seats.release(
            user_id=caller.user_id,
            category_id=category_id,
            lock_id=lock_id,
            quantity=None if lock_id is not None else quantity,
        )

    def holds_of(self, user_id: int) -> list[HoldView]:
        """The user's live holds, soonest to expire first."""
        return sorted(self._seats.holds_of(user_id), key=lambda hold: hold.expires_at)

    async def availability(self, category_ids: Sequence[int]) -> dict[int, Availability]:
        return await self._seats.availability(category_ids)

    # -- the waiting list -------------------------------------------------------------------

    async def join_waitlist(
        self, caller: Principal, *, event_id: int, category_id: int, quantity: int
    ) -> WaitlistPlace:
        """Durable before it is acknowledged: the row is written first, then the category's
        actor (which alone knows whether anything is on sale) takes the entry or refuses it,
        and a refused entry's row is deleted again."""
        self.check_quantity(quantity)
        event, category = await self.on_sale(event_id, category_id)
        # The actor is live before the row exists. One activated while the row waits for its
        # join (a fresh actor wakes itself) loads it as a place in line, and the feed shows the
        # category's seats set aside, none on sale, until the join is decided: a refused join
        # changed what everyone saw. A live actor loads nothing; one restarted in between
        # still decides the row it loaded when this join arrives (`Inventory.join`).
        await self._seats.current(category_id)
        async with self._db.begin() as conn:
            row = await waitlist.add(conn, category_id, caller.user_id, quantity)
        if row is None:
            raise AlreadyWaiting("You are already on the waiting list of this category")
        try:
            joined = await self._seats.join_waitlist(
                user_id=caller.user_id,
                event_id=event_id,
                category_id=category_id,
                entry_id=row.id,
                quantity=quantity,
                rules=rules_of(event, category),
            )
        except BaseException:
            async with self._db.begin() as conn:
                await waitlist.remove_entries(conn, [row.id])
            raise
        return WaitlistPlace(
            event_id,
            category_id,
            joined.quantity,
            joined.position,
            len(joined.availability.waiting),
        )

    async def leave_waitlist(
        self, caller: Principal, *, event_id: int, category_id: int
    ) -> WaitlistPlace:
        await self._category_of_event(event_id, category_id)
        async with self._db.begin() as conn:
            row = await waitlist.remove(conn, category_id, caller.user_id)
        if row is None:
            raise NotWaiting("You are not on the waiting list of this category")
        try:
            left = await self._seats.leave_waitlist(user_id=caller.user_id, category_id=category_id)
            waiting = len(left.availability.waiting)
        except NotWaiting:
            waiting = 0  # served an offer meanwhile: the offer is theirs to decline
        return WaitlistPlace(event_id, category_id, row.quantity, 0, waiting)

    async def waitlist_place(
        self, caller: Principal, *, event_id: int, category_id: int
    ) -> WaitlistPlace:
        """The caller's place, from the feed when the category is live, else the ledger."""
        await self._category_of_event(event_id, category_id)
        live = self._seats.live_availability(category_id)
        async with self._db.connect() as conn:
            rows = await waitlist.entries(conn, category_id)
        mine = next((row for row in rows if row.user_id == caller.user_id), None)
        if live is not None:
            line = list(live.waiting)
            if caller.user_id not in line:
                raise NotWaiting("You are not on the waiting list of this category")
            quantity = mine.quantity if mine is not None else 0
            position = line.index(caller.user_id) + 1
            return WaitlistPlace(event_id, category_id, quantity, position, len(line))
        if mine is None:
            raise NotWaiting("You are not on the waiting list of this category")
        position = [row.user_id for row in rows].index(caller.user_id) + 1
        return WaitlistPlace(event_id, category_id, mine.quantity, position, len(rows))

    # -- orders -----------------------------------------------------------------------------

    async def place_order(
        self,
        caller: Principal,
        *,
        event_id: int,
        category_id: int,
        quantity: int,
        notes: str | None,
        request_key: str | None,
        lock_id: str | None = None,
        admission_pass: str | None = None,
    ) -> OrderRecord:
        """Buy (or confirm the caller's hold `lock_id`); a replayed request key returns the
        first order and never writes a second."""
        try:
            order = await self._place_order(
                caller,
                event_id=event_id,
                category_id=category_id,
                quantity=quantity,
                notes=notes,
                request_key=request_key,
                lock_id=lock_id,
                admission_pass=admission_pass,
            )
        except Refusal as refused:
            self.tally.refused("order", refused.reason)
            raise
        return order

    async def _place_order(
        self,
        caller: Principal,
        *,
        event_id: int,
        category_id: int,
        quantity: int,
        notes: str | None,
        request_key: str | None,
        lock_id: str | None,
        admission_pass: str | None,
    ) -> OrderRecord:
        if request_key is not None:
            existing = await self._order_by_request_key(request_key)
            if existing is not None:
                self.tally.orders.add(REPLAYED)
                return existing
        self.check_quantity(quantity)
        event, category = await self.on_sale(event_id, category_id)
        self._check_admission(caller, event, admission_pass)
        draft = OrderDraft(
            user_id=caller.user_id,
            event_id=event.id,
            category_id=category.id,
            quantity=quantity,
            unit_price=category.price,
            event_name=event.event_name,
            category_name=category.category_name,
            notes=notes or None,
            request_key=request_key,
        )
        try:
            rules = rules_of(event, category)
            if lock_id is None:
                placed = await self._seats.buy(draft=draft, rules=rules)
            else:
                placed = await self._seats.confirm(lock_id=lock_id, draft=draft, rules=rules)
        except Refusal:
            # A concurrent replay of the same key may have won the seats: answer its order.
            if request_key is not None:
                existing = await self._order_by_request_key(request_key)
                if existing is not None:
                    self.tally.orders.add(REPLAYED)
                    return existing
            raise
        self.tally.orders.add(REPLAYED if placed.replayed else PLACED)
        self._note_admitted_buyer(caller, event)
        self._fulfilment.submit(placed.order)
        return placed.order

    async def _order_by_request_key(self, request_key: str) -> OrderRecord | None:
        async with self._db.connect() as conn:
            return await ledger.find_order_by_request_key(conn, request_key)

    async def visible_order(self, caller: Principal, order_id: int) -> OrderRecord:
        """The order if the caller bought it or organizes its event; otherwise it does not
        exist, as far as the caller can tell."""
        async with self._db.connect() as conn:
            order = await ledger.get_order(conn, order_id)
            if order is None:
                raise OrderNotFound(ORDER_NOT_FOUND)
            if order.user_id == caller.user_id:
                return order
            event = await catalog.get_event(conn, order.event_id)
        if event is not None and event.created_by == caller.user_id:
            return order
        raise OrderNotFound(ORDER_NOT_FOUND)

    async def my_orders(
        self, caller: Principal, *, limit: int | None, offset: int
    ) -> list[OrderRecord]:
        async with self._db.connect() as conn:
            return await ledger.list_orders(
                conn, user_id=caller.user_id, limit=limit, offset=offset
            )

    async def all_visible_orders(
        self, caller: Principal, *, limit: int | None, offset: int
    ) -> list[OrderRecord]:
        """An organizer sees their own orders and those of events they created; others, theirs."""
        if not caller.is_organizer:
            return await self.my_orders(caller, limit=limit, offset=offset)
        async with self._db.connect() as conn:
            return await ledger.list_orders(
                conn, visible_to=caller.user_id, limit=limit, offset=offset
            )

    async def event_orders(
        self, caller: Principal, event_id: int, *, limit: int | None, offset: int
    ) -> list[OrderRecord]:
        """The event's creator sees all its orders; anyone else only their own."""
        async with self._db.connect() as conn:
            event = await catalog.get_event(conn, event_id)
            if event is None:
                raise EventNotFound(EVENT_NOT_FOUND)
            buyer = None if event.created_by == caller.user_id else caller.user_id
            return await ledger.list_orders(
                conn, event_id=event_id, user_id=buyer, limit=limit, offset=offset
            )

    async def cancel_order(self, caller: Principal, order_id: int) -> OrderRecord:
        """Cancel once: the seats go back exactly once and the buyer's sockets hear of it."""
        order = await self.visible_order(caller, order_id)
        if order.status is OrderStatus.CANCELLED:
            raise OrderAlreadyCancelled("Order is already cancelled")
        cancelled = await self._seats.cancel(order=order, by=caller.user_id)
        await self._seats.notify_user(
            order.user_id, "order-cancelled", order_notice(cancelled.order, CANCELLED_MESSAGE)
        )
        return cancelled.order
