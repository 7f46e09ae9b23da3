"""Nothing a category actor answered is undone by a kill -9 of its process (invariant 4):
holds and releases through the hold journal, orders through the ledger, with real Ray and
PostgreSQL. Each test kills at the moment that used to lose something."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import ray
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import SeatClient
from actors.messages import OrderPlaced
from actors.refusals import Refusal, RefusalReason
from persistence import hold_journal, snapshots
from persistence.models import events
from persistence.records import EventRecord
from tests.actors.conftest import EngineFactory
from tests.actors.test_category import actor_of, eventually, ledger_sold
from tests.fixtures.orders import order_draft

MakeCategory = Callable[..., Awaitable[EventRecord]]


def kill_9(engine: SeatClient, category_id: int) -> None:
    """SIGKILL the actor's process; Ray restarts it (max_restarts=-1), empty."""
    ray.kill(actor_of(engine, category_id), no_restart=False)


async def saved_lock_ids(db: AsyncEngine, category_id: int) -> set[str]:
    async with db.connect() as conn:
        saved = snapshots.decode_snapshot(await snapshots.load_snapshot(conn, category_id))
    return {hold.lock_id for hold in saved.holds}


async def test_a_release_answered_just_before_a_kill_stays_released(
    start_engine: EngineFactory, make_category: MakeCategory, db: AsyncEngine
) -> None:
    # A long snapshot interval: the release below is in no snapshot when the actor dies.
    engine = await start_engine(snapshot_interval_seconds=1.0)
    event = await make_category(seats=5)
    category = event.categories[0]
    placed = await engine.hold(user_id=11, event_id=event.id, category_id=category.id, quantity=3)
    lock_id = placed.hold.lock_id

    async def in_snapshot() -> bool:
        return lock_id in await saved_lock_ids(db, category.id)

    await eventually(in_snapshot)
    released = await engine.release(user_id=11, category_id=category.id, lock_id=lock_id)
    kill_9(engine, category.id)
    # The last snapshot still lists the hold: only the journal knows it was released.
    assert lock_id in await saved_lock_ids(db, category.id)
    assert released.availability.held == 0

    state = await engine.current(category.id)
    assert (state.held, state.sold, state.available) == (0, 0, 5)
    with pytest.raises(Refusal) as refused:
        await engine.confirm(lock_id=lock_id, draft=order_draft(event, 11, 3))
    assert refused.value.reason is RefusalReason.HOLD_NOT_FOUND


async def test_a_hold_answered_just_before_a_kill_survives_it(
    start_engine: EngineFactory,
    make_category: MakeCategory,
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    engine = await start_engine(snapshot_interval_seconds=60.0)
    event = await make_category(seats=6)
    category = event.categories[0]
    buyer = await make_buyer()
    await engine.current(category.id)  # activated (and its first snapshot taken) before the hold
    kept = await engine.hold(user_id=buyer, event_id=event.id, category_id=category.id, quantity=2)
    shrunk = await engine.hold(
        user_id=buyer, event_id=event.id, category_id=category.id, quantity=3
    )
    # Release 3 seats by quantity: the oldest-expiring hold goes, the other one shrinks to 2.
    await engine.release(user_id=buyer, category_id=category.id, quantity=3)
    kill_9(engine, category.id)
    assert await saved_lock_ids(db, category.id) == set()

    state = await engine.current(category.id)
    assert (state.held, state.sold, state.available) == (2, 0, 4)
    with pytest.raises(Refusal) as gone:
        await engine.confirm(lock_id=kept.hold.lock_id, draft=order_draft(event, buyer, 2))
    assert gone.value.reason is RefusalReason.HOLD_NOT_FOUND
    order = await engine.confirm(lock_id=shrunk.hold.lock_id, draft=order_draft(event, buyer, 2))
    assert isinstance(order, OrderPlaced)
    assert await ledger_sold(db, category.id) == 2


async def test_three_kills_in_a_row_undo_nothing_answered(
    start_engine: EngineFactory,
    make_category: MakeCategory,
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    engine = await start_engine(snapshot_interval_seconds=0.3)
    event = await make_category(seats=30)
    category = event.categories[0]
    buyers = [await make_buyer() for _ in range(9)]
    held: dict[str, int] = {}  # lock id -> seats, every hold answered and not released
    released: set[str] = set()
    for round_ in range(3):
        for buyer in buyers[round_ * 3 : round_ * 3 + 3]:
            for _ in range(2):
                placed = await engine.hold(
                    user_id=buyer, event_id=event.id, category_id=category.id, quantity=1
                )
                held[placed.hold.lock_id] = buyer
        # Release one hold of each buyer of the round, then kill at once.
        for lock_id in [lock for lock, owner in held.items() if lock not in released][::2]:
            await engine.release(user_id=held[lock_id], category_id=category.id, lock_id=lock_id)
            released.add(lock_id)
        kill_9(engine, category.id)
        state = await engine.current(category.id)
        assert state.held == len(held) - len(released), f"after kill {round_ + 1}"
    for lock_id, owner in held.items():
        if lock_id in released:
            with pytest.raises(Refusal):
                await engine.confirm(lock_id=lock_id, draft=order_draft(event, owner, 1))
        else:
            await engine.confirm(lock_id=lock_id, draft=order_draft(event, owner, 1))
    assert await ledger_sold(db, category.id) == len(held) - len(released)
    state = await engine.current(category.id)
    assert (state.held, state.sold) == (0, len(held) - len(released))


async def test_the_journal_is_truncated_by_snapshots(
    start_engine: EngineFactory, make_category: MakeCategory, db: AsyncEngine
) -> None:
    engine = await start_engine(snapshot_interval_seconds=0.2)
    event = await make_category(seats=50)
    category = event.categories[0]
    for owner in range(1, 41):
        placed = await engine.hold(
            user_id=owner, event_id=event.id, category_id=category.id, quantity=1
        )
        if owner % 2:
            await engine.release(
                user_id=owner, category_id=category.id, lock_id=placed.hold.lock_id
            )

    async def journal_rows() -> int:
        async with db.connect() as conn:
            return await hold_journal.length(conn, category.id)

    # 60 entries were written (40 holds, 20 releases). A snapshot is due once the journal
    # since the last one has as many entries as the snapshot would have holds: the rows left
    # after compaction are fewer than the 20 live holds.
    await eventually(lambda: _at_most(journal_rows(), 19))
    # Compaction lost nothing: a restart from the snapshot and what is left has the 20 holds.
    kill_9(engine, category.id)
    state = await engine.current(category.id)
    assert (state.held, state.available) == (20, 30)

    # The last releases leave no hold: a snapshot of none outweighs any journal, and the
    # journal is emptied.
    for owner in range(2, 41, 2):
        await engine.release(user_id=owner, category_id=category.id, quantity=1)
    await eventually(lambda: _at_most(journal_rows(), 0))
    kill_9(engine, category.id)
    state = await engine.current(category.id)
    assert (state.held, state.available) == (0, 50)


async def _at_most(count: Awaitable[int], limit: int) -> bool:
    return await count <= limit


async def test_a_retried_buy_of_the_last_seats_is_its_order_not_a_refusal(
    start_engine: EngineFactory,
    make_category: MakeCategory,
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    engine = await start_engine()
    event = await make_category(seats=2)
    category = event.categories[0]
    buyer = await make_buyer()
    draft = order_draft(event, buyer, 2, request_key=f"{buyer}:last-seats")
    first = await engine.buy(draft=draft)
    # The same Buy again, as `CategoryHandles.call` resends it after a lost reply, to the same
    # activation and to a fresh one: the seats it took are the ones it is now refused for.
    again = await engine.buy(draft=draft)
    kill_9(engine, category.id)
    after_kill = await engine.buy(draft=draft)
    for replay in (again, after_kill):
        assert replay.replayed and replay.order.id == first.order.id
    assert await ledger_sold(db, category.id) == 2
    # Someone else is still refused: the replay check does not open a way past capacity.
    other = await make_buyer()
    with pytest.raises(Refusal) as refused:
        await engine.buy(draft=order_draft(event, other, 1, request_key=f"{other}:late"))
    assert refused.value.reason is RefusalReason.NOT_ENOUGH_SEATS


async def test_holds_expire_after_a_ray_restart_with_nobody_calling(
    start_engine: EngineFactory, make_category: MakeCategory
) -> None:
    engine = await start_engine(lock_ttl_seconds=2.0)
    event = await make_category(seats=4)
    category = event.categories[0]
    placed = await engine.hold(user_id=5, event_id=event.id, category_id=category.id, quantity=4)
    assert placed.availability.available == 0
    kill_9(engine, category.id)

    async def expired() -> bool:
        seats = (await engine.availability([category.id]))[category.id]
        return seats.held == 0 and seats.available == 4

    # Only the restarted actor itself can publish this: nobody calls it.
    await eventually(expired)


async def test_a_deactivated_event_stops_selling_in_the_actor(
    start_engine: EngineFactory, make_category: MakeCategory, db: AsyncEngine
) -> None:
    engine = await start_engine(catalogue_refresh_seconds=0.1)
    event = await make_category(seats=4)
    category = event.categories[0]
    placed = await engine.hold(user_id=8, event_id=event.id, category_id=category.id, quantity=1)
    async with db.begin() as conn:
        await conn.execute(update(events).where(events.c.id == event.id).values(is_active=False))

    async def refused() -> bool:
        try:
            await engine.hold(user_id=8, event_id=event.id, category_id=category.id, quantity=1)
        except Refusal as refusal:
            return refusal.reason is RefusalReason.NOT_ON_SALE
        return False

    await eventually(refused)
    for attempt in (
        engine.buy(draft=order_draft(event, 8, 1)),
        engine.confirm(lock_id=placed.hold.lock_id, draft=order_draft(event, 8, 1)),
    ):
        with pytest.raises(Refusal) as stopped:
            await attempt
        assert stopped.value.reason is RefusalReason.NOT_ON_SALE
    assert await ledger_sold(db, category.id) == 0
    # Releasing is still allowed: it gives seats back.
    await engine.release(user_id=8, category_id=category.id, lock_id=placed.hold.lock_id)
