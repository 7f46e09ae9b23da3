"""The order processor: pending orders complete in batches; a declined payment cancels the
order and returns its seats; an order left pending by a crash completes at the next start."""

from __future__ import annotations

from collections.abc import Callable

from actors.messages import FeedItem, UserNotice
from persistence import audit, ledger
from persistence.audit import AuditAction, AuditEntry
from persistence.records import OrderRecord, OrderStatus
from sales.fulfilment import OrderProcessor
from sales.identity import Role
from tests.fixtures.orders import order_draft
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, poll


async def _status(live: LiveSystem, order_id: int) -> OrderStatus | None:
    async def read() -> OrderStatus | None:
        async with live.runtime.db.connect() as conn:
            order = await ledger.get_order(conn, order_id)
        return None if order is None else order.status

    return await live.call(read())


async def test_declined_payment_cancels_and_returns_the_seats(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(6,))
    runtime = live_system.runtime
    notices: list[UserNotice] = []

    async def decline(order: OrderRecord) -> bool:
        return order.quantity < 3  # small orders pass, big ones are declined

    def listen(item: FeedItem) -> None:
        if isinstance(item, UserNotice) and item.user_id == buyer.id:
            notices.append(item)

    async def subscribe() -> Callable[[], None]:
        return runtime.seats.subscribe(listen)  # on the system's loop, where the feed runs

    async def scenario() -> tuple[OrderRecord, OrderRecord]:
        processor = OrderProcessor(runtime.db, runtime.seats, payment=decline)
        await processor.start()
        small = await runtime.seats.buy(draft=order_draft(event, buyer.id, 2))
        big = await runtime.seats.buy(draft=order_draft(event, buyer.id, 4))
        processor.submit(small.order)
        processor.submit(big.order)
        await processor.idle()
        await processor.stop()
        return small.order, big.order

    unsubscribe = await live_system.call(subscribe())
    try:
        small, big = await live_system.call(scenario())
        expected = {("order-completed", small.id), ("order-cancelled", big.id)}

        async def delivered() -> bool:
            return {(n.event, n.payload["orderId"]) for n in notices} >= expected

        await poll(delivered)  # the feed delivers the notices after the processor is idle
    finally:
        live_system.loop.call_soon_threadsafe(unsubscribe)
    assert await _status(live_system, small.id) is OrderStatus.COMPLETED
    assert await _status(live_system, big.id) is OrderStatus.CANCELLED
    seats = await live_system.call(runtime.seats.availability([event.categories[0].id]))
    assert seats[event.categories[0].id].available == 4
    assert {(n.event, n.payload["orderId"]) for n in notices} == expected

    # The audit trail has the cancel, made by nobody: the system did it.
    async def trail() -> list[AuditEntry]:
        async with runtime.db.connect() as conn:
            return await audit.trail(conn, event.id, limit=10)

    [entry] = await live_system.call(trail())
    assert (entry.action, entry.actor_id) == (AuditAction.ORDER_CANCELLED, None)
    assert entry.details["orderId"] == big.id


async def test_orders_left_pending_complete_at_the_next_start(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(5,))
    runtime = live_system.runtime
    # Placed but never submitted: as if the gateway died right after the ledger write.
    placed = await live_system.call(runtime.seats.buy(draft=order_draft(event, buyer.id, 1)))
    assert await _status(live_system, placed.order.id) is OrderStatus.PENDING

    async def restart_processor() -> None:
        processor = OrderProcessor(runtime.db, runtime.seats)
        await processor.start()
        await processor.idle()
        await processor.stop()

    await live_system.call(restart_processor())

    async def completed() -> bool:
        return await _status(live_system, placed.order.id) is OrderStatus.COMPLETED

    await poll(completed)
