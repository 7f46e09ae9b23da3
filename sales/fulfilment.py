"""Fulfilment: pending orders move to completed through the payment step, and the buyer's
sockets hear of it; a declined payment cancels the order and returns its seats.

Every gateway runs one: each claims an order (a lease in the ledger) before its payment step,
so two live gateways never pay for the same order, and a periodic sweep picks up orders that
nobody is processing (their gateway died, or it stopped before getting to them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import SeatClient
from actors.messages import UserNotice
from actors.refusals import Refusal
from persistence import ledger
from persistence.records import OrderRecord, OrderStatus
from sales.outage import outage_of

logger = logging.getLogger(__name__)

PaymentStep = Callable[[OrderRecord], Awaitable[bool]]

COMPLETED_MESSAGE = "Your order has been completed successfully!"
CANCELLED_MESSAGE = "Your order has been cancelled"
PAYMENT_FAILED_MESSAGE = "Your order was cancelled: the payment did not go through"
STOP_GRACE_SECONDS = 5.0
SWEEP_INTERVAL_SECONDS = 2.0
# Unclaimed for this long after it was written: its gateway is not going to process it.
SWEEP_GRACE_SECONDS = 5.0
# A claim lapses after this long (a gateway that died mid-payment), and the sweep retries it.
CLAIM_LEASE_SECONDS = 15.0


async def approve_payment(order: OrderRecord) -> bool:
    """The default payment step: every order is paid."""
    return True


def order_notice(order: OrderRecord, message: str) -> dict[str, Any]:
    """The payload of `order-completed` and `order-cancelled`."""
    return {
        "orderId": order.id,
        "eventId": order.event_id,
        "categoryId": order.category_id,
        "quantity": order.quantity,
        "message": message,
    }


class OrderProcessor:
    """Moves pending orders to completed through the payment step, then tells the buyer.

    `submit` never blocks the request. Orders submitted while a batch is being completed go
    into the next one: one UPDATE and one feed message per batch, not per order, so a flash
    sale costs the gateway one claim and one completion per batch, not per order. The sweep
    (started by `start`) picks up orders left pending by a crash or by another gateway.
    """

    def __init__(
        self,
        db: AsyncEngine,
        seats: SeatClient,
        payment: PaymentStep = approve_payment,
        *,
        sweep_interval: float = SWEEP_INTERVAL_SECONDS,
        sweep_grace: float = SWEEP_GRACE_SECONDS,
        lease: float = CLAIM_LEASE_SECONDS,
    ) -> None:
        self._db = db
        self._seats = seats
        self._payment = payment
        self._sweep_interval = sweep_interval
        self._sweep_grace = sweep_grace
        self._lease = lease
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: dict[int, OrderRecord] = {}
        self._worker: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        # Orders a crashed run left pending, however young: a claim keeps this safe even if
        # a live gateway is about to process one of them itself.
        await self.sweep(grace=0.0)
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def sweep(self, grace: float | None = None) -> int:
        """Claim and process a page of orders nobody is processing; how many were claimed."""
        async with self._db.begin() as conn:
            stuck = await ledger.claim_stuck_orders(
                conn,
                older_than=self._sweep_grace if grace is None else grace,
                lease_seconds=self._lease,
            )
        if stuck:
            await self._pay(stuck)
        return len(stuck)

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            try:
                while await self.sweep() and not self._stopping:
                    pass  # a full page: there may be more
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The next sweep tries again; an outage is one line, anything else a bug.
                if outage_of(error) is None:
                    logger.exception("the pending-order sweep failed")
                else:
                    logger.warning("pending-order sweep: %s unavailable", outage_of(error))
            await asyncio.sleep(self._sweep_interval)

    def submit(self, order: OrderRecord) -> None:
        loop = self._loop
        if loop is None or self._stopping:
            return  # it stays pending in the ledger: a sweep picks it up
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
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
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
            except Exception as error:
                # They stay pending in the ledger; the sweep retries them.
                if outage_of(error) is None:
                    logger.exception("%d orders could not be completed", len(batch))
                else:
                    logger.warning(
                        "%d orders not completed yet: %s unavailable", len(batch), outage_of(error)
                    )

    async def _complete(self, batch: list[OrderRecord]) -> None:
        if self._payment is approve_payment:
            # Nothing to wait for, so no claim to hold across it: one statement claims and
            # completes (an order another gateway is paying for is left to it). In a flash sale
            # the separate claim was half of this processor's share of the gateway's CPU.
            async with self._db.begin() as conn:
                moved = await ledger.complete_unclaimed_orders(
                    conn, [order.id for order in batch], self._lease
                )
            await self._announce([order for order in batch if order.id in moved])
            return
        # Claimed first: an order another gateway is paying for (or has paid) is left to it.
        async with self._db.begin() as conn:
            claimed = await ledger.claim_orders(conn, [o.id for o in batch], self._lease)
        await self._pay(claimed)

    async def _pay(self, batch: list[OrderRecord]) -> None:
        if not batch:
            return
        verdicts = await asyncio.gather(
            *(self._payment(order) for order in batch), return_exceptions=True
        )
        for order, verdict in zip(batch, verdicts, strict=True):
            if isinstance(verdict, BaseException):
                # Undecided: it stays pending, and the sweep retries it once its claim lapses.
                logger.error("payment step failed for order %s: %r", order.id, verdict)
        paid = [order.id for order, ok in zip(batch, verdicts, strict=True) if ok is True]
        async with self._db.begin() as conn:
            completed = await ledger.complete_orders(conn, paid)
        await self._announce(completed)
        for order, ok in zip(batch, verdicts, strict=True):
            if ok is False:
                try:
                    await self._refuse(order)
                except Refusal as refused:
                    logger.info("order %s not cancelled: %s", order.id, refused.message)

    async def _announce(self, completed: list[OrderRecord]) -> None:
        if completed:
            await self._seats.publish(
                *(
                    UserNotice(
                        order.user_id, "order-completed", order_notice(order, COMPLETED_MESSAGE)
                    )
                    for order in completed
                )
            )

    async def _refuse(self, order: OrderRecord) -> None:
        cancelled = await self._seats.cancel(order=order, only_pending=True)
        await self._seats.notify_user(
            order.user_id, "order-cancelled", order_notice(cancelled.order, PAYMENT_FAILED_MESSAGE)
        )
