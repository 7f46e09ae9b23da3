"""The orders ledger: group insert with replays, the database's own oversell refusal,
cancel-once, completion, visibility and the sold counter agreeing with the rows.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.catalog import category_totals
from persistence.errors import OversellRefused
from persistence.ledger import (
    cancel_order,
    claim_orders,
    complete_order,
    complete_orders,
    confirmed_lock_ids,
    find_order_by_request_key,
    get_order,
    insert_orders,
    list_orders,
    orders_by_lock_ids,
    pending_orders,
    sold_seats,
)
from persistence.records import CategoryRecord, EventRecord, OrderDraft, OrderStatus
from persistence.users import creation_times
from tests.fixtures.orders import order_draft
from tests.persistence.conftest import MakeEvent, MakeUser, unique

NOTES = "front row please"


def draft(
    event: EventRecord,
    user_id: int,
    quantity: int = 1,
    *,
    category: CategoryRecord | None = None,
    request_key: str | None = None,
) -> OrderDraft:
    return order_draft(
        event, user_id, quantity, category=category, request_key=request_key, notes=NOTES
    )


async def counters(db: AsyncEngine, category_id: int) -> tuple[int, int]:
    """(sold_seats counter, sum of non-cancelled order quantities)."""
    async with db.connect() as conn:
        totals = await category_totals(conn, [category_id])
        return totals[category_id][2], await sold_seats(conn, category_id)


async def test_insert_orders_writes_a_batch_in_input_order(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(50, 50)
    buyer = await make_user()
    first, second = event.categories
    items = [
        (draft(event, buyer.id, 2, request_key=unique("rk")), unique("lock")),
        (draft(event, buyer.id, 3, category=second), None),
        (draft(event, buyer.id, 4), unique("lock")),
        (draft(event, buyer.id, 1), None),
    ]
    async with db.begin() as conn:
        placed = await insert_orders(conn, items)
    assert [p.replayed for p in placed] == [False] * 4
    assert [p.record.quantity for p in placed] == [2, 3, 4, 1]
    assert [p.record.lock_id for p in placed] == [lock for _, lock in items]
    record = placed[0].record
    assert record.status is OrderStatus.PENDING
    assert record.unit_price == Decimal("12.50") and record.total_price == Decimal("25.00")
    assert record.notes == NOTES and record.created_at.tzinfo is not None
    assert record.request_key == items[0][0].request_key
    assert await counters(db, first.id) == (7, 7)
    assert await counters(db, second.id) == (3, 3)
    async with db.connect() as conn:
        assert await get_order(conn, record.id) == record
        assert await get_order(conn, -1) is None
        assert await find_order_by_request_key(conn, record.request_key or "") == record
        assert await find_order_by_request_key(conn, unique("absent")) is None
    async with db.begin() as conn:
        assert await insert_orders(conn, []) == []


async def test_replays_by_lock_id_request_key_and_within_one_batch(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(20)
    category_id = event.categories[0].id
    buyer = await make_user()
    lock, key = unique("lock"), unique("rk")
    async with db.begin() as conn:
        (original,) = await insert_orders(conn, [(draft(event, buyer.id, 2), lock)])
        (keyed,) = await insert_orders(conn, [(draft(event, buyer.id, 3, request_key=key), None)])

    in_batch_key = unique("rk")
    in_batch_lock = unique("lock")
    async with db.begin() as conn:
        placed = await insert_orders(
            conn,
            [
                (draft(event, buyer.id, 2), lock),  # replay of an earlier batch by lock id
                (draft(event, buyer.id, 3, request_key=key), None),  # replay by request key
                (draft(event, buyer.id, 1, request_key=in_batch_key), None),
                (draft(event, buyer.id, 1, request_key=in_batch_key), None),  # same batch
                (draft(event, buyer.id, 4), in_batch_lock),
                (draft(event, buyer.id, 4), in_batch_lock),  # same batch, by lock id
                (draft(event, buyer.id, 5), None),
            ],
        )
    assert [p.replayed for p in placed] == [True, True, False, True, False, True, False]
    assert placed[0].record == original.record
    assert placed[1].record == keyed.record
    assert placed[3].record == placed[2].record
    assert placed[5].record == placed[4].record
    # Only the fresh rows sold seats: 2 + 3 before, then 1 + 4 + 5.
    assert await counters(db, category_id) == (15, 15)
    async with db.connect() as conn:
        assert await confirmed_lock_ids(conn, category_id, [lock, in_batch_lock, "nope"]) == {
            lock,
            in_batch_lock,
        }
        assert await confirmed_lock_ids(conn, category_id + 1, [lock]) == set()
        assert await confirmed_lock_ids(conn, category_id, []) == set()


async def test_concurrent_replays_of_one_request_key_sell_once(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(30)
    buyer = await make_user()
    key = unique("rk")

    async def place() -> bool:
        async with db.begin() as conn:
            (placed,) = await insert_orders(
                conn, [(draft(event, buyer.id, 2, request_key=key), None)]
            )
            return placed.replayed

    outcomes = await asyncio.gather(*(place() for _ in range(5)))
    assert sorted(outcomes) == [False, True, True, True, True]
    assert await counters(db, event.categories[0].id) == (2, 2)


async def test_the_database_refuses_an_oversell(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(5)
    category_id = event.categories[0].id
    buyer = await make_user()
    async with db.begin() as conn:
        await insert_orders(conn, [(draft(event, buyer.id, 3), None)])
    with pytest.raises(OversellRefused) as refused:
        async with db.begin() as conn:
            await insert_orders(
                conn, [(draft(event, buyer.id, 2), None), (draft(event, buyer.id, 1), None)]
            )
    assert refused.value.category_ids == (category_id,)
    # The whole batch rolled back with the transaction: no row, no counter change.
    assert await counters(db, category_id) == (3, 3)
    async with db.begin() as conn:
        await insert_orders(conn, [(draft(event, buyer.id, 2), None)])
    assert await counters(db, category_id) == (5, 5)


async def test_cancel_happens_once(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(10)
    category_id = event.categories[0].id
    buyer = await make_user()
    async with db.begin() as conn:
        kept, cancelled = await insert_orders(
            conn, [(draft(event, buyer.id, 2), None), (draft(event, buyer.id, 3), None)]
        )
    async with db.begin() as conn:
        outcome = await cancel_order(conn, cancelled.record.id)
    assert outcome is not None
    record, changed = outcome
    assert changed and record.status is OrderStatus.CANCELLED
    assert record.updated_at > cancelled.record.updated_at

    async def cancel_again() -> bool:
        async with db.begin() as conn:
            again = await cancel_order(conn, cancelled.record.id)
        assert again is not None and again[0].status is OrderStatus.CANCELLED
        return again[1]

    assert await asyncio.gather(*(cancel_again() for _ in range(3))) == [False] * 3
    assert await counters(db, category_id) == (2, 2)
    async with db.begin() as conn:
        assert await cancel_order(conn, -1) is None
    assert kept.record.status is OrderStatus.PENDING


async def test_concurrent_cancels_decrement_once(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(10)
    buyer = await make_user()
    async with db.begin() as conn:
        (placed,) = await insert_orders(conn, [(draft(event, buyer.id, 4), None)])

    async def cancel() -> bool:
        async with db.begin() as conn:
            outcome = await cancel_order(conn, placed.record.id)
        assert outcome is not None
        return outcome[1]

    assert sorted(await asyncio.gather(*(cancel() for _ in range(4)))) == [False] * 3 + [True]
    assert await counters(db, event.categories[0].id) == (0, 0)


async def test_complete_only_pending_orders(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(10)
    buyer = await make_user()
    async with db.begin() as conn:
        pending, to_cancel = await insert_orders(
            conn, [(draft(event, buyer.id), None), (draft(event, buyer.id), None)]
        )
    async with db.connect() as conn:
        waiting = {order.id for order in await pending_orders(conn, limit=100_000)}
    assert {pending.record.id, to_cancel.record.id} <= waiting
    async with db.begin() as conn:
        completed = await complete_order(conn, pending.record.id)
        assert completed is not None and completed.status is OrderStatus.COMPLETED
        assert await complete_order(conn, pending.record.id) is None
        await cancel_order(conn, to_cancel.record.id)
        assert await complete_order(conn, to_cancel.record.id) is None
        assert await complete_order(conn, -1) is None
    async with db.connect() as conn:
        waiting = {order.id for order in await pending_orders(conn, limit=100_000)}
    assert not {pending.record.id, to_cancel.record.id} & waiting
    # A completed order still counts as sold; the cancelled one does not.
    assert await counters(db, event.categories[0].id) == (1, 1)


async def test_list_orders_filters_and_visibility(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    organizer, other_organizer = await make_user("organizer"), await make_user("organizer")
    alice, bob = await make_user(), await make_user()
    own_event = await make_event(10, created_by=organizer.id)
    other_event = await make_event(10, created_by=other_organizer.id)
    async with db.begin() as conn:
        (a1,) = await insert_orders(conn, [(draft(own_event, alice.id), None)])
    async with db.begin() as conn:
        (b1,) = await insert_orders(conn, [(draft(other_event, bob.id), None)])
    async with db.begin() as conn:
        (a2,) = await insert_orders(conn, [(draft(other_event, alice.id), None)])
    async with db.begin() as conn:
        (o1,) = await insert_orders(conn, [(draft(other_event, organizer.id), None)])

    async with db.connect() as conn:
        alices = await list_orders(conn, user_id=alice.id)
        by_event = await list_orders(conn, event_id=other_event.id)
        organizer_sees = await list_orders(conn, visible_to=organizer.id)
        bob_sees = await list_orders(conn, visible_to=bob.id)
        paged = await list_orders(conn, user_id=alice.id, limit=1, offset=1)
        everyone = await list_orders(conn)
    assert [o.id for o in alices] == [a2.record.id, a1.record.id]  # newest first
    assert [o.id for o in by_event] == [o1.record.id, a2.record.id, b1.record.id]
    assert [o.id for o in organizer_sees] == [o1.record.id, a1.record.id]
    assert [o.id for o in bob_sees] == [b1.record.id]
    assert [o.id for o in paged] == [a1.record.id]
    # Unfiltered: every user's orders, newest first (others' orders, of a reused database or a
    # concurrent run, may come between ours).
    ours = [o1.record.id, a2.record.id, b1.record.id, a1.record.id]
    assert [o.id for o in everyone if o.id in ours] == ours


async def test_lists_longer_than_a_query_has_parameters(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    """PostgreSQL takes 65,535 parameters: a list of ids is one array parameter instead."""
    event = await make_event(5)
    buyer = await make_user()
    lock = unique("lock")
    async with db.begin() as conn:
        (placed,) = await insert_orders(conn, [(draft(event, buyer.id, 1), lock)])
    order_id, category_id = placed.record.id, placed.record.category_id
    absent = range(-70_000, 0)
    locks = [f"absent-{n}" for n in absent]
    async with db.connect() as conn:
        assert await confirmed_lock_ids(conn, category_id, [*locks, lock]) == {lock}
        assert list(await orders_by_lock_ids(conn, [*locks, lock])) == [lock]
        assert await creation_times(conn, [*absent, buyer.id]) == {buyer.id: buyer.created_at}
    async with db.begin() as conn:
        claimed = await claim_orders(conn, [*absent, order_id], lease_seconds=15.0)
        completed = await complete_orders(conn, [*absent, order_id])
    assert [o.id for o in claimed] == [order_id] == [o.id for o in completed]
