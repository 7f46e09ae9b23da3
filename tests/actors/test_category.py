"""The category actor with real Ray and PostgreSQL: capacity, expiry, crashes, passivation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import ray
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import SeatClient
from actors.messages import HoldPlaced, OrderPlaced
from actors.refusals import Refusal, RefusalReason
from actors.remote import HUB_NAME, category_actor_name
from persistence import catalog, ledger, snapshots
from persistence.models import ticket_categories
from persistence.records import EventRecord
from tests.actors.conftest import EngineFactory
from tests.fixtures.orders import order_draft


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def ledger_sold(db: AsyncEngine, category_id: int) -> int:
    async with db.connect() as conn:
        return await ledger.sold_seats(conn, category_id)


def actor_of(engine: SeatClient, category_id: int) -> Any:
    return ray.get_actor(category_actor_name(category_id), namespace=engine._config.namespace)


def passivated(engine: SeatClient, category_id: int) -> Callable[[], Awaitable[bool]]:
    """A check for `eventually`: the category's actor has left (its name is gone)."""

    async def gone() -> bool:
        try:
            actor_of(engine, category_id)
        except ValueError:
            return True
        return False

    return gone


async def test_concurrent_holds_never_exceed_capacity(
    engine: SeatClient, make_category: Callable[..., Awaitable[EventRecord]]
) -> None:
    event = await make_category(seats=7)
    category = event.categories[0]

    async def attempt(owner: int) -> HoldPlaced | RefusalReason:
        try:
            return await engine.hold(
                user_id=owner, event_id=event.id, category_id=category.id, quantity=1
            )
        except Refusal as refused:
            return refused.reason

    results = await asyncio.gather(*(attempt(owner) for owner in range(1, 61)))
    placed = [r for r in results if isinstance(r, HoldPlaced)]
    assert len(placed) == 7
    assert set(results) - set(placed) == {RefusalReason.NOT_ENOUGH_SEATS}
    assert len({p.hold.lock_id for p in placed}) == 7
    availability = (await engine.availability([category.id]))[category.id]
    assert (availability.held, availability.sold, availability.available) == (7, 0, 0)


async def test_holds_expire_without_any_caller(
    start_engine: EngineFactory, make_category: Callable[..., Awaitable[EventRecord]]
) -> None:
    # Long enough that reading the hold right after it was answered cannot race its expiry.
    engine = await start_engine(lock_ttl_seconds=3.0)
    event = await make_category(seats=5)
    category = event.categories[0]
    placed = await engine.hold(user_id=1, event_id=event.id, category_id=category.id, quantity=3)
    assert placed.availability.available == 2
    assert [h.lock_id for h in engine.holds_of(1)] == [placed.hold.lock_id]

    async def freed() -> bool:
        current = (await engine.availability([category.id]))[category.id]
        return current.held == 0 and current.available == 5

    await eventually(freed)
    assert engine.holds_of(1) == []
    with pytest.raises(Refusal) as refused:
        await engine.confirm(lock_id=placed.hold.lock_id, draft=order_draft(event, 1, 3))
    assert refused.value.reason is RefusalReason.HOLD_NOT_FOUND


async def test_lock_is_confirmed_once_by_its_owner_only(
    engine: SeatClient,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    event = await make_category(seats=5)
    category = event.categories[0]
    owner, thief = await make_buyer(), await make_buyer()
    placed = await engine.hold(
        user_id=owner, event_id=event.id, category_id=category.id, quantity=2
    )
    lock_id = placed.hold.lock_id

    with pytest.raises(Refusal) as stolen:
        await engine.confirm(lock_id=lock_id, draft=order_draft(event, thief, 2))
    assert stolen.value.reason is RefusalReason.NOT_YOUR_HOLD
    with pytest.raises(Refusal) as wrong_size:
        await engine.confirm(lock_id=lock_id, draft=order_draft(event, owner, 3))
    assert wrong_size.value.reason is RefusalReason.HOLD_MISMATCH

    async def confirm() -> OrderPlaced | RefusalReason:
        try:
            return await engine.confirm(lock_id=lock_id, draft=order_draft(event, owner, 2))
        except Refusal as refused:
            return refused.reason

    results = await asyncio.gather(confirm(), confirm())
    orders = [r for r in results if isinstance(r, OrderPlaced)]
    # The second either replays the same order or is told the lock is used: never a new
    # order, and never any other answer (a 503 would be a failure here).
    assert orders and {o.order.id for o in orders} == {orders[0].order.id}
    assert [r for r in results if not isinstance(r, OrderPlaced)] in (
        [],
        [RefusalReason.HOLD_NOT_FOUND],
    )
    assert await ledger_sold(db, category.id) == 2
    availability = (await engine.availability([category.id]))[category.id]
    assert (availability.held, availability.sold) == (0, 2)


async def test_buy_with_the_same_key_creates_one_order(
    engine: SeatClient,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    event = await make_category(seats=10)
    buyer = await make_buyer()
    draft = order_draft(event, buyer, 2, request_key=f"{buyer}:abc")
    results = await asyncio.gather(*(engine.buy(draft=draft) for _ in range(5)))
    assert len({r.order.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    later = await engine.buy(draft=draft)
    assert later.replayed and later.order.id == results[0].order.id
    assert await ledger_sold(db, event.categories[0].id) == 2
    availability = (await engine.availability([event.categories[0].id]))[event.categories[0].id]
    assert (availability.held, availability.sold) == (0, 2)


async def test_cancel_returns_seats_exactly_once(
    engine: SeatClient,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    event = await make_category(seats=4)
    buyer = await make_buyer()
    placed = await engine.buy(draft=order_draft(event, buyer, 3))
    results = await asyncio.gather(
        *(engine.cancel(order=placed.order) for _ in range(3)), return_exceptions=True
    )
    cancelled = [r for r in results if not isinstance(r, BaseException)]
    refusals = [r.reason for r in results if isinstance(r, Refusal)]
    assert len(cancelled) == 1
    assert refusals == [RefusalReason.ORDER_ALREADY_CANCELLED] * 2
    assert await ledger_sold(db, event.categories[0].id) == 0
    availability = (await engine.availability([event.categories[0].id]))[event.categories[0].id]
    assert (availability.sold, availability.available) == (0, 4)


async def commit_waiting_on_lock(db: AsyncEngine) -> bool:
    """Is some backend's UPDATE of a category's sold counter waiting for a row lock?"""
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query ILIKE 'UPDATE ticket_categories%'"
            )
        )
        return bool(rows.scalar_one())


async def test_killed_actor_loses_no_confirmed_order_and_sells_nothing_twice(
    engine: SeatClient,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    seats = 40
    event = await make_category(seats=seats)
    category = event.categories[0]
    buyers = [await make_buyer() for _ in range(seats + 20)]
    holds = []
    for buyer in buyers[:seats]:
        holds.append(
            await engine.hold(user_id=buyer, event_id=event.id, category_id=category.id, quantity=1)
        )

    async def confirm(placed: HoldPlaced) -> OrderPlaced | RefusalReason:
        draft = order_draft(event, placed.hold.owner, 1)
        try:
            return await engine.confirm(lock_id=placed.hold.lock_id, draft=draft)
        except Refusal as refused:
            return refused.reason

    async def buy(buyer: int) -> OrderPlaced | RefusalReason:
        try:
            return await engine.buy(draft=order_draft(event, buyer, 1))
        except Refusal as refused:
            return refused.reason

    # Hold the category's counter row (NO KEY: the orders' foreign key may still read it): the
    # actor's group commit inserts its orders, then waits on the row. The kill lands there,
    # mid-commit, every time.
    async with db.connect() as blocker:
        await blocker.begin()
        await blocker.execute(
            select(ticket_categories.c.id)
            .where(ticket_categories.c.id == category.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
        )
        sale = asyncio.gather(*(confirm(p) for p in holds), *(buy(b) for b in buyers[seats:]))
        await eventually(lambda: commit_waiting_on_lock(db))
        retried_before = engine._handles.retried
        ray.kill(actor_of(engine, category.id), no_restart=False)

        async def resent() -> bool:
            return engine._handles.retried > retried_before

        # The row stays locked until the batch in flight has met the dead actor and been resent
        # to the restarted one: the kill lands inside the commit however long Ray takes to
        # deliver it (released at once, the commit could finish before the process died).
        await eventually(resent)
        await blocker.rollback()
    answers = await sale

    orders = [r for r in answers if isinstance(r, OrderPlaced)]
    # Every hold was answered (journaled) before the kill, so every confirm succeeds in the end;
    # the buyers without a hold find no seat.
    assert len(orders) == seats
    assert [r for r in answers if not isinstance(r, OrderPlaced)] == (
        [RefusalReason.NOT_ENOUGH_SEATS] * 20
    )
    sold_by_answers = sum(o.order.quantity for o in {o.order.id: o for o in orders}.values())
    sold_in_ledger = await ledger_sold(db, category.id)
    # Every order a caller was told about is in the ledger, exactly once.
    assert sold_by_answers == sold_in_ledger == seats
    async with db.connect() as conn:
        rows = await ledger.list_orders(conn, event_id=event.id)
    assert len({row.id for row in rows}) == len(rows) == sold_in_ledger
    assert len({row.lock_id for row in rows}) == len(rows)

    state = await engine.current(category.id)
    assert (state.held, state.sold, state.available) == (0, seats, 0)


async def test_an_order_confirmed_after_the_snapshot_is_no_hold_after_a_crash(
    start_engine: EngineFactory,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    # No snapshot after the hold: the hold is in the journal, its order only in the ledger.
    engine = await start_engine(snapshot_interval_seconds=60.0)
    event = await make_category(seats=5)
    category = event.categories[0]
    buyer = await make_buyer()
    await engine.current(category.id)
    placed = await engine.hold(
        user_id=buyer, event_id=event.id, category_id=category.id, quantity=2
    )
    await engine.confirm(lock_id=placed.hold.lock_id, draft=order_draft(event, buyer, 2))
    ray.kill(actor_of(engine, category.id), no_restart=False)
    state = await engine.current(category.id)
    # Activation drops holds whose lock id is in the ledger: no phantom hold of 2 seats.
    assert (state.held, state.sold, state.available) == (0, 2, 3)
    assert await ledger_sold(db, category.id) == 2


async def test_passivation_and_reactivation_keep_the_numbers(
    start_engine: EngineFactory,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
) -> None:
    engine = await start_engine(actor_idle_seconds=0.5)
    event = await make_category(seats=9)
    category = event.categories[0]
    buyer = await make_buyer()
    await engine.buy(draft=order_draft(event, buyer, 4))
    placed = await engine.hold(
        user_id=buyer, event_id=event.id, category_id=category.id, quantity=2
    )
    await engine.release(user_id=buyer, category_id=category.id, lock_id=placed.hold.lock_id)

    await eventually(passivated(engine, category.id))
    again = await engine.hold(user_id=buyer, event_id=event.id, category_id=category.id, quantity=5)
    assert (again.availability.sold, again.availability.held, again.availability.available) == (
        4,
        5,
        0,
    )
    # A live hold keeps the actor alive past its idle time: an idle one activated after it
    # (same idle time, no hold) passivates, and this one is still there.
    idle = (await make_category(seats=1)).categories[0]
    await engine.current(idle.id)

    await eventually(passivated(engine, idle.id))
    actor_of(engine, category.id)


async def test_a_hub_ended_for_good_is_replaced_and_hears_the_live_categories(
    start_engine: EngineFactory,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
) -> None:
    """`ray kill` of the hub (no restart): a category actor must publish to its successor,
    not retry the dead handle forever, so a gateway that learns only through the feed sees
    the release made afterwards, and the actor, its last state sent, can passivate."""
    engine = await start_engine(actor_idle_seconds=0.5)
    watcher = await start_engine(namespace=engine._config.namespace)
    category = (await make_category(seats=4)).categories[0]
    buyer = await make_buyer()
    placed = await engine.hold(
        user_id=buyer, event_id=category.event_id, category_id=category.id, quantity=2
    )

    def watched(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(watcher.holds_of(buyer)) == count

        return check

    await eventually(watched(1))
    ray.kill(ray.get_actor(HUB_NAME, namespace=engine._config.namespace), no_restart=True)
    await engine.release(user_id=buyer, category_id=category.id, lock_id=placed.hold.lock_id)

    await eventually(watched(0), within=60)

    await eventually(passivated(engine, category.id), within=30)


async def test_unknown_category_is_refused(engine: SeatClient) -> None:
    with pytest.raises(Refusal) as refused:
        await engine.hold(user_id=1, event_id=1, category_id=987_654_321, quantity=1)
    assert refused.value.reason is RefusalReason.CATEGORY_UNAVAILABLE


async def test_a_malformed_snapshot_does_not_keep_a_category_down(
    engine: SeatClient, make_category: Callable[..., Awaitable[EventRecord]], db: AsyncEngine
) -> None:
    event = await make_category(seats=5)
    category = event.categories[0]
    future = time.time() + 300
    payload = {
        "version": "not a number",
        "holds": [
            {"lockId": "lock_x", "quantity": 2},
            {"lockId": "lock_ok", "owner": 7, "quantity": 2, "expiresAt": future},
        ],
    }
    async with db.begin() as conn:
        await snapshots.save_snapshot(conn, category.id, payload)
    await engine.activate([category.id])
    state = await engine.current(category.id)
    assert (state.held, state.available) == (2, 3)

    async def mirrored() -> bool:
        return [h.lock_id for h in engine.holds_of(7)] == ["lock_ok"]

    await eventually(mirrored)


async def test_a_category_with_more_live_holds_than_a_query_has_parameters_activates(
    engine: SeatClient, make_category: Callable[..., Awaitable[EventRecord]], db: AsyncEngine
) -> None:
    # Activation asks the ledger which saved holds became orders. As `IN (...)` that was a
    # parameter per hold, and PostgreSQL takes 65,535: a hot category (the cluster bench
    # holds 5,000 a second for 30 s) could not be loaded again.
    live = 70_000
    event = await make_category(seats=live + 10)
    category = event.categories[0]
    future = time.time() + 300
    # Owned by ids no user has: every system started on this database wakes the categories
    # with saved holds, and its gateways would count these against real buyers' limits.
    holds = [
        {"lockId": f"lock_{n}", "owner": GHOST_OWNERS + n % 500, "quantity": 1, "expiresAt": future}
        for n in range(live)
    ]
    try:
        async with db.begin() as conn:
            await snapshots.save_snapshot(conn, category.id, {"version": 3, "holds": holds})
        await engine.activate([category.id])
        state = await engine.current(category.id)
        assert (state.held, state.sold, state.available) == (live, 0, 10)
    finally:
        async with db.begin() as conn:  # its snapshot goes with it: no later start wakes it
            assert await catalog.delete_event(conn, event.id)


GHOST_OWNERS = 2_000_000_000


async def test_a_ledger_failure_refuses_only_its_orders_and_changes_nothing(
    engine: SeatClient,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    event = await make_category(seats=6)
    category = event.categories[0]
    buyer = await make_buyer()
    ghost = 2_000_000_000  # no such user: the ledger's foreign key refuses the order

    async def outcome(work: Awaitable[Any]) -> Any:
        try:
            return await work
        except Refusal as refused:
            return refused.reason

    results = await asyncio.gather(
        outcome(engine.buy(draft=order_draft(event, ghost, 2))),
        outcome(engine.hold(user_id=buyer, event_id=event.id, category_id=category.id, quantity=1)),
        outcome(engine.buy(draft=order_draft(event, ghost, 1))),
    )
    assert results[0] is RefusalReason.LEDGER_UNAVAILABLE
    assert results[2] is RefusalReason.LEDGER_UNAVAILABLE
    assert isinstance(results[1], HoldPlaced)
    state = await engine.current(category.id)
    assert (state.held, state.sold, state.available) == (1, 0, 5)
    assert await ledger_sold(db, category.id) == 0
    good = await engine.buy(draft=order_draft(event, buyer, 5))
    assert good.availability.available == 0
