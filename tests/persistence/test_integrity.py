"""The ledger refuses what would orphan or misplace an order: an order for a category that no
longer exists, and the delete of an event whose categories have orders, even one committed
between the route's check and its DELETE; the hold journal is written and read in order."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence import catalog, hold_journal, ledger
from persistence.errors import EventHasOrders
from persistence.hold_journal import JournalEntry, dropped
from tests.fixtures.orders import order_draft
from tests.persistence.conftest import MakeEvent, MakeUser


async def test_an_order_for_a_deleted_category_is_refused(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(3)
    buyer = await make_user()
    async with db.begin() as conn:
        assert await catalog.delete_event(conn, event.id)
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await ledger.insert_orders(conn, [(order_draft(event, buyer.id, 1), "lock-gone")])
    async with db.connect() as conn:
        assert await ledger.find_order_by_lock_id(conn, "lock-gone") is None


async def test_an_order_committed_after_the_check_stops_the_delete(
    db: AsyncEngine, make_event: MakeEvent, make_user: MakeUser
) -> None:
    event = await make_event(3)
    buyer = await make_user()
    async with db.connect() as deleting:
        await deleting.begin()
        assert not await catalog.event_has_orders(deleting, event.id)
        # Meanwhile another gateway sells a seat and commits.
        async with db.begin() as selling:
            await ledger.insert_orders(selling, [(order_draft(event, buyer.id, 1), None)])
        with pytest.raises(EventHasOrders):
            await catalog.delete_event(deleting, event.id)
        await deleting.rollback()
    async with db.connect() as conn:
        kept = await catalog.get_event(conn, event.id)
        orders = await ledger.list_orders(conn, event_id=event.id)
    assert kept is not None and len(orders) == 1


async def test_the_journal_reads_back_in_order_and_truncates(
    db: AsyncEngine, make_event: MakeEvent
) -> None:
    category = (await make_event(5)).categories[0]
    first = [JournalEntry("a", 1, 2, 100.0), JournalEntry("b", 2, 1, 101.0)]
    async with db.begin() as conn:
        seq = await hold_journal.append(conn, category.id, first)
        later = await hold_journal.append(conn, category.id, [dropped("a")])
    assert seq is not None and later is not None and later > seq
    async with db.connect() as conn:
        entries, last = await hold_journal.entries_after(conn, category.id, 0)
        after_first, _ = await hold_journal.entries_after(conn, category.id, seq)
    assert entries == [*first, dropped("a")] and last == later
    assert after_first == [dropped("a")]
    async with db.begin() as conn:
        await hold_journal.truncate(conn, category.id, seq)
        assert await hold_journal.length(conn, category.id) == 1
