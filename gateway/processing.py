"""The life of an order around the engine: placed once per Idempotency-Key, completed by the
payment step, cancelled once, and seen only by its buyer and the organizer of its event.

Routes call these functions; they hold every rule, so any other adapter gets the same answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import Engine, EngineRefused
from actors.messages import UserNotice
from gateway.auth import Principal
from gateway.directory import NotOnSale
from gateway.errors import ApiError, invalid
from persistence import catalog, ledger
from persistence.records import CategoryRecord, EventRecord, OrderDraft, OrderRecord, OrderStatus

if TYPE_CHECKING:
    from gateway.system import Runtime

logger = logging.getLogger(__name__)

PaymentStep = Callable[[OrderRecord], Awaitable[bool]]

COMPLETED_MESSAGE = "Your order has been completed successfully!"
CANCELLED_MESSAGE = "Your order has been cancelled"
PAYMENT_FAILED_MESSAGE = "Your order was cancelled: the payment did not go through"
ORDER_NOT_FOUND = "Order not found"
STOP_GRACE_SECONDS = 5.0
EVENT_NOT_FOUND = "Event not found"


async def approve_payment(order: OrderRecord) -> bool:
    """The default payment step: every order is paid."""
    return True


# -- what is on sale -------------------------------------------------------------------------


async def category_on_sale(
    runtime: Runtime, event_id: int, category_id: int
) -> tuple[EventRecord, CategoryRecord]:
    """The event and its category, if that category belongs to it and both are active."""
    try:
        return await runtime.directory.on_sale(event_id, category_id)
    except NotOnSale as refused:
        raise ApiError(refused.status, refused.message) from None


def check_quantity(runtime: Runtime, quantity: int) -> None:
    limit = runtime.settings.max_tickets_per_request
    if quantity > limit:
        raise invalid(f"quantity must be at most {limit} per request")


# -- placing ---------------------------------------------------------------------------------


async def place_order(
    runtime: Runtime,
    caller: Principal,
    *,
    event_id: int,
    category_id: int,
    quantity: int,
    notes: str | None,
    request_key: str | None,
    lock_id: str | None = None,
) -> OrderRecord:
    """Buy (or confirm the caller's hold `lock_id`); a replayed request key returns the first
    order and never writes a second."""
    if request_key is not None:
        existing = await _order_by_request_key(runtime.db, request_key)
        if existing is not None:
            return existing
    check_quantity(runtime, quantity)
    event, category = await category_on_sale(runtime, event_id, category_id)
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
        if lock_id is None:
            placed = await runtime.engine.buy(draft=draft)
        else:
            placed = await runtime.engine.confirm(lock_id=lock_id, draft=draft)
    except EngineRefused:
        # A concurrent replay of the same key may have won the seats: answer its order.
        if request_key is not None:
            existing = await _order_by_request_key(runtime.db, request_key)
            if existing is not None:
                return existing
        raise
    runtime.orders.submit(placed.order)
    return placed.order


async def _order_by_request_key(db: AsyncEngine, request_key: str) -> OrderRecord | None:
    async with db.connect() as conn:
        return await ledger.find_order_by_request_key(conn, request_key)


# -- seeing ----------------------------------------------------------------------------------


async def visible_order(runtime: Runtime, caller: Principal, order_id: int) -> OrderRecord:
    """The order if the caller bought it or organizes its event; otherwise it does not exist."""
    async with runtime.db.connect() as conn:
        order = await ledger.get_order(conn, order_id)
        if order is None:
            raise ApiError(404, ORDER_NOT_FOUND)
        if order.user_id == caller.user_id:
            return order
        event = await catalog.get_event(conn, order.event_id)
    if event is not None and event.created_by == caller.user_id:
        return order
    raise ApiError(404, ORDER_NOT_FOUND)


async def my_orders(
    runtime: Runtime, caller: Principal, *, limit: int | None, offset: int
) -> list[OrderRecord]:
    async with runtime.db.connect() as conn:
        return await ledger.list_orders(conn, user_id=caller.user_id, limit=limit, offset=offset)


async def all_visible_orders(
    runtime: Runtime, caller: Principal, *, limit: int | None, offset: int
) -> list[OrderRecord]:
    """An organizer sees their own orders and those of events they created; others, theirs."""
    if not caller.is_organizer:
        return await my_orders(runtime, caller, limit=limit, offset=offset)
    async with runtime.db.connect() as conn:
        return await ledger.list_orders(conn, visible_to=caller.user_id, limit=limit, offset=offset)


async def event_orders(
    runtime: Runtime, caller: Principal, event_id: int, *, limit: int | None, offset: int
) -> list[OrderRecord]:
    """The event's creator sees all its orders; anyone else only their own."""
    async with runtime.db.connect() as conn:
        event = await catalog.get_event(conn, event_id)
        if event is None:
            raise ApiError(404, EVENT_NOT_FOUND)
        buyer = None if event.created_by == caller.user_id else caller.user_id
        return await ledger.list_orders(
            conn, event_id=event_id, user_id=buyer, limit=limit, offset=offset
        )


# -- cancelling ------------------------------------------------------------------------------


async def cancel_order(runtime: Runtime, caller: Principal, order_id: int) -> OrderRecord:
    """Cancel once: the seats go back exactly once and the buyer's sockets hear of it."""
    order = await visible_order(runtime, caller, order_id)
    if order.status is OrderStatus.CANCELLED:
        raise ApiError(409, "Order is already cancelled")
    cancelled = await runtime.engine.cancel(order=order)
    await runtime.engine.notify_user(
        order.user_id, "order-cancelled", _notice(cancelled.order, CANCELLED_MESSAGE)
    )
    return cancelled.order


def _notice(order: OrderRecord, message: str) -> dict[str, Any]:
    return {
        "orderId": order.id,
        "eventId": order.event_id,
        "categoryId": order.category_id,
        "quantity": order.quantity,
        "message": message,
    }


# -- completing ------------------------------------------------------------------------------


class OrderProcessor:
    """Moves pending orders to completed through the payment step, then tells the buyer.

    `submit` never blocks the request. Orders submitted while a batch is being completed go
    into the next one: one UPDATE and one feed message per batch, not per order, so a flash
    sale costs the gateway no extra transaction per order. `start` picks up orders left
    pending by a restart.
    """

    def __init__(
        self, db: AsyncEngine, engine: Engine, payment: PaymentStep = approve_payment
    ) -> None:
        self._db = db
        self._engine = engine
        self._payment = payment
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: dict[int, OrderRecord] = {}
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        async with self._db.connect() as conn:
            pending = await ledger.pending_orders(conn, limit=10_000)
        for order in pending:
            self._enqueue(order)

    def submit(self, order: OrderRecord) -> None:
        loop = self._loop
        if loop is None or self._stopping:
            return  # picked up by the next start(): it stays pending in the ledger
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._enqueue(order)
        else:
            loop.call_soon_threadsafe(self._enqueue, order)

    async def idle(self) -> None:
        """Wait until every submitted order has been processed (tests, shutdown)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.gather(self._worker, return_exceptions=True)

    async def stop(self) -> None:
        self._stopping = True
        worker = self._worker
        if worker is not None:
            _, late = await asyncio.wait({worker}, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._queue.clear()

    def _enqueue(self, order: OrderRecord) -> None:
        if self._stopping or order.status is not OrderStatus.PENDING:
            return
        self._queue[order.id] = order
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._queue and not self._stopping:
            batch, self._queue = list(self._queue.values()), {}
            try:
                await self._complete(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # They stay pending in the ledger; the next start() retries them.
                logger.exception("%d orders could not be completed", len(batch))

    async def _complete(self, batch: list[OrderRecord]) -> None:
        verdicts = await asyncio.gather(
            *(self._payment(order) for order in batch), return_exceptions=True
        )
        for order, verdict in zip(batch, verdicts, strict=True):
            if isinstance(verdict, BaseException):
                # Undecided: it stays pending in the ledger and the next start() retries it.
                logger.error("payment step failed for order %s: %r", order.id, verdict)
        paid = [order.id for order, ok in zip(batch, verdicts, strict=True) if ok is True]
        async with self._db.begin() as conn:
            completed = await ledger.complete_orders(conn, paid)
        if completed:
            await self._engine.publish(
                *(
                    UserNotice(order.user_id, "order-completed", _notice(order, COMPLETED_MESSAGE))
                    for order in completed
                )
            )
        for order, ok in zip(batch, verdicts, strict=True):
            if ok is False:
                try:
                    await self._refuse(order)
                except EngineRefused as refused:
                    logger.info("order %s not cancelled: %s", order.id, refused.message)

    async def _refuse(self, order: OrderRecord) -> None:
        cancelled = await self._engine.cancel(order=order)
        await self._engine.notify_user(
            order.user_id, "order-cancelled", _notice(cancelled.order, PAYMENT_FAILED_MESSAGE)
        )
