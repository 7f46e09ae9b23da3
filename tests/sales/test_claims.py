"""Pending orders under several gateways: each order's payment step runs once, a sweep picks
up what nobody processes, and a declined payment never cancels an order already completed."""

from __future__ import annotations

import asyncio
from collections import Counter

from persistence import ledger
from persistence.records import OrderRecord, OrderStatus
from sales.fulfilment import OrderProcessor
from sales.identity import Role
from tests.fixtures.orders import order_draft
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, poll


async def _statuses(live: LiveSystem, ids: list[int]) -> list[OrderStatus]:
    async def read() -> list[OrderStatus]:
        async with live.runtime.db.connect() as conn:
            found = [await ledger.get_order(conn, order_id) for order_id in ids]
        return [order.status for order in found if order is not None]

    return await live.call(read())


async def test_two_gateways_pay_for_each_pending_order_once(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(30,))
    runtime = live_system.runtime
    paid: Counter[int] = Counter()

    async def slow_payment(order: OrderRecord) -> bool:
        paid[order.id] += 1
        await asyncio.sleep(0.05)  # a payment provider's round trip: both sweeps overlap it
        return True

    async def scenario() -> list[int]:
        # Written but never submitted: as if their gateway died right after the ledger write.
        placed = [await runtime.seats.buy(draft=order_draft(event, buyer.id, 1)) for _ in range(20)]
        first, second = (
            OrderProcessor(runtime.db, runtime.seats, payment=slow_payment, sweep_interval=0.05)
            for _ in range(2)
        )
        await asyncio.gather(first.start(), second.start())
        # Each also submits every order, as a gateway that placed it would.
        for order in placed:
            first.submit(order.order)
            second.submit(order.order)

        async def done() -> bool:
            statuses = await _statuses(live_system, [p.order.id for p in placed])
            return set(statuses) == {OrderStatus.COMPLETED}

        await poll(done)
        await asyncio.gather(first.idle(), second.idle())
        await asyncio.gather(first.stop(), second.stop())
        return [p.order.id for p in placed]

    ids = await live_system.call(scenario())
    # The live system's own processor may have paid some (approving without counting); none
    # was paid twice by ours, whichever got it.
    assert all(paid[order_id] <= 1 for order_id in ids)
    assert sum(paid.values()) >= 1


async def test_a_late_decline_never_cancels_an_order_another_gateway_completed(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(5,))
    runtime = live_system.runtime
    lease = 0.2
    claimed_by_slow = asyncio.Event()
    completed_elsewhere = asyncio.Event()

    async def slow_decline(order: OrderRecord) -> bool:
        claimed_by_slow.set()
        await completed_elsewhere.wait()  # outlives its lease: another gateway takes over
        return False

    async def approve(order: OrderRecord) -> bool:
        return True

    async def scenario() -> tuple[OrderRecord, int]:
        placed = await runtime.seats.buy(draft=order_draft(event, buyer.id, 2))
        slow = OrderProcessor(runtime.db, runtime.seats, payment=slow_decline, lease=lease)
        other = OrderProcessor(runtime.db, runtime.seats, payment=approve, lease=lease)
        slow._loop = asyncio.get_running_loop()  # submit() without start(): no sweeper of its own
        slow.submit(placed.order)
        await claimed_by_slow.wait()

        async def taken_over() -> bool:
            return await other.sweep(grace=0.0) > 0

        await poll(taken_over)
        completed_elsewhere.set()
        await slow.idle()
        seats = await runtime.seats.availability([event.categories[0].id])
        return placed.order, seats[event.categories[0].id].sold

    order, sold = await live_system.call(scenario())
    assert await _statuses(live_system, [order.id]) == [OrderStatus.COMPLETED]
    assert sold == 2


async def test_an_order_nobody_submits_is_completed_by_the_sweep(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(5,))
    runtime = live_system.runtime
    # The running system's processor is never told about it: only its sweep can find it.
    placed = await live_system.call(runtime.seats.buy(draft=order_draft(event, buyer.id, 1)))

    async def completed() -> bool:
        return await _statuses(live_system, [placed.order.id]) == [OrderStatus.COMPLETED]

    await poll(completed, within=30)


async def test_the_default_step_leaves_an_order_to_a_live_claim_and_takes_a_lapsed_one(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(5,))
    runtime = live_system.runtime
    lease = 0.5
    claimed: list[int] = []
    answer = asyncio.Event()

    async def slow_payment(order: OrderRecord) -> bool:
        claimed.append(order.id)
        await answer.wait()  # a provider that takes its time
        return True

    async def status(order_id: int) -> OrderStatus:
        async with runtime.db.connect() as conn:
            order = await ledger.get_order(conn, order_id)
        assert order is not None
        return order.status

    async def scenario() -> list[OrderStatus]:
        live, lapsed = [
            (await runtime.seats.buy(draft=order_draft(event, buyer.id, 1))).order for _ in "ab"
        ]
        slow = OrderProcessor(runtime.db, runtime.seats, payment=slow_payment, lease=lease)
        default = OrderProcessor(runtime.db, runtime.seats, lease=lease)  # approves at once
        for processor in (slow, default):
            processor._loop = asyncio.get_running_loop()  # submit() without a sweeper
        slow.submit(live)
        slow.submit(lapsed)
        await poll(lambda: _true(len(claimed) == 2))
        default.submit(live)  # claimed a moment ago: left to the slow gateway
        await default.idle()
        seen = [await status(live.id)]
        await asyncio.sleep(lease + 0.1)
        default.submit(lapsed)  # its claim has lapsed: the default step completes it
        await default.idle()
        seen.append(await status(lapsed.id))
        answer.set()
        await slow.idle()  # completes `live`; `lapsed` is completed already and stays so
        seen += [await status(live.id), await status(lapsed.id)]
        return seen

    statuses = await live_system.call(scenario())
    assert statuses == [OrderStatus.PENDING] + [OrderStatus.COMPLETED] * 3


async def _true(value: bool) -> bool:
    return value
