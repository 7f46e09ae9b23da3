"""Catalogue: events with categories, listing filters, edits, deletion and actor facts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.catalog import (
    category_totals,
    delete_event,
    event_has_orders,
    get_category,
    get_event,
    list_events,
    load_category_facts,
    update_event,
)
from persistence.ledger import insert_orders
from persistence.records import CategoryFacts, OrderDraft
from persistence.snapshots import load_snapshot, save_snapshot
from tests.persistence.conftest import MakeEvent, unique


async def test_create_and_get_an_event_with_categories(
    db: AsyncEngine, make_event: MakeEvent
) -> None:
    event = await make_event(100, 500)
    assert [c.total_seats for c in event.categories] == [100, 500]
    assert [c.category_name for c in event.categories] == ["C0", "C1"]
    assert all(c.price == Decimal("12.50") and c.event_id == event.id for c in event.categories)
    assert event.is_active and event.event_date.tzinfo is not None
    async with db.connect() as conn:
        assert await get_event(conn, event.id) == event
        assert await get_event(conn, -1) is None
        assert await get_category(conn, event.categories[1].id) == event.categories[1]
        assert await get_category(conn, -1) is None


async def test_list_events_filters_and_orders_by_date(
    db: AsyncEngine, make_event: MakeEvent
) -> None:
    genre = unique("genre")
    later = await make_event(5, event_category=genre, days_ahead=20)
    sooner = await make_event(5, event_category=genre, days_ahead=10)
    past = await make_event(5, event_category=genre, days_ahead=-10)
    async with db.connect() as conn:
        listed = await list_events(conn, event_category=genre)
        upcoming = await list_events(conn, event_category=genre, upcoming_after=datetime.now(UTC))
        paged = await list_events(conn, event_category=genre, limit=1, offset=1)
        everything = await list_events(conn)
    assert [e.id for e in listed] == [past.id, sooner.id, later.id]
    assert [e.id for e in upcoming] == [sooner.id, later.id]
    assert [e.id for e in paged] == [sooner.id]
    assert listed[1].categories == sooner.categories
    assert {past.id, sooner.id, later.id} <= {e.id for e in everything}


async def test_update_event_changes_fields_and_bumps_updated_at(
    db: AsyncEngine, make_event: MakeEvent
) -> None:
    event = await make_event(5)
    async with db.begin() as conn:
        updated = await update_event(conn, event.id, {"event_name": "Renamed", "is_active": False})
    assert updated is not None
    assert updated.event_name == "Renamed" and not updated.is_active
    assert updated.updated_at > event.updated_at
    assert updated.created_at == event.created_at
    assert updated.categories == event.categories
    async with db.begin() as conn:
        assert await update_event(conn, -1, {"location": "x"}) is None
        with pytest.raises(ValueError, match="created_by"):
            await update_event(conn, event.id, {"created_by": 1})


async def test_delete_event_takes_categories_and_snapshots(
    db: AsyncEngine, make_event: MakeEvent
) -> None:
    event = await make_event(5, 6)
    category_id = event.categories[0].id
    async with db.begin() as conn:
        await save_snapshot(conn, category_id, {"holds": [], "version": 1})
    async with db.begin() as conn:
        assert await delete_event(conn, event.id)
        assert not await delete_event(conn, event.id)
    async with db.connect() as conn:
        assert await get_event(conn, event.id) is None
        assert await get_category(conn, category_id) is None
        assert await load_snapshot(conn, category_id) is None


async def test_event_has_orders(db: AsyncEngine, make_event: MakeEvent) -> None:
    event = await make_event(5)
    category = event.categories[0]
    async with db.connect() as conn:
        assert not await event_has_orders(conn, event.id)
    draft = OrderDraft(
        user_id=event.created_by,
        event_id=event.id,
        category_id=category.id,
        quantity=1,
        unit_price=category.price,
        event_name=event.event_name,
        category_name=category.category_name,
    )
    async with db.begin() as conn:
        await insert_orders(conn, [(draft, None)])
    async with db.connect() as conn:
        assert await event_has_orders(conn, event.id)


async def test_category_facts_need_event_and_category_active(
    db: AsyncEngine, make_event: MakeEvent
) -> None:
    event = await make_event(7, 8)
    first, second = event.categories
    async with db.connect() as conn:
        assert await load_category_facts(conn, first.id) == CategoryFacts(
            category_id=first.id,
            event_id=event.id,
            total_seats=7,
            is_active=True,
            stamp=event.updated_at.timestamp(),
        )
        assert await load_category_facts(conn, -1) is None
        assert await category_totals(conn, [first.id, second.id, -1]) == {
            first.id: (event.id, 7, 0),
            second.id: (event.id, 8, 0),
        }
        assert await category_totals(conn, []) == {}
    async with db.begin() as conn:
        await update_event(conn, event.id, {"is_active": False})
    async with db.connect() as conn:
        facts = await load_category_facts(conn, first.id)
    assert facts is not None and not facts.is_active
