"""The catalogue: events and their ticket categories, as organisers create and edit them.

Also the facts a category actor loads at activation (totals, sold counter, active flags).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from psycopg.errors import ForeignKeyViolation
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence import waitlist
from persistence.arrays import among
from persistence.errors import EventHasOrders
from persistence.models import events, hold_journal, orders, ticket_categories
from persistence.records import (
    CategoryFacts,
    CategoryRecord,
    EventDraft,
    EventRecord,
    WaitingRoomConfig,
)

EDITABLE_EVENT_FIELDS = frozenset(
    {
        "event_name",
        "event_category",
        "description",
        "event_date",
        "location",
        "is_active",
        "sales_start_at",
        "sales_end_at",
        "waiting_room_enabled",
        "waiting_room_admit_per_second",
        "waiting_room_opens_at",
    }
)


def _category(row: Any) -> CategoryRecord:
    return CategoryRecord(
        id=row.id,
        event_id=row.event_id,
        category_name=row.category_name,
        price=row.price,
        total_seats=row.total_seats,
        description=row.description,
        is_active=row.is_active,
        sales_start_at=row.sales_start_at,
        sales_end_at=row.sales_end_at,
        max_per_user=row.max_per_user,
    )


def _event(row: Any, categories: Iterable[CategoryRecord]) -> EventRecord:
    return EventRecord(
        id=row.id,
        event_name=row.event_name,
        event_category=row.event_category,
        description=row.description,
        event_date=row.event_date,
        location=row.location,
        is_active=row.is_active,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        categories=tuple(categories),
        sales_start_at=row.sales_start_at,
        sales_end_at=row.sales_end_at,
        waiting_room=_waiting_room(row),
    )


def _waiting_room(row: Any) -> WaitingRoomConfig | None:
    if row.waiting_room_admit_per_second is None:
        return None  # never set: the event has no waiting room
    return WaitingRoomConfig(
        enabled=row.waiting_room_enabled,
        admit_per_second=row.waiting_room_admit_per_second,
        opens_at=row.waiting_room_opens_at,
    )


def waiting_room_columns(room: WaitingRoomConfig | None) -> dict[str, Any]:
    """The events columns that store `room` (all cleared for None)."""
    return {
        "waiting_room_enabled": room is not None and room.enabled,
        "waiting_room_admit_per_second": None if room is None else room.admit_per_second,
        "waiting_room_opens_at": None if room is None else room.opens_at,
    }


async def _with_categories(conn: AsyncConnection, rows: list[Any]) -> list[EventRecord]:
    if not rows:
        return []
    statement = (
        select(ticket_categories)
        .where(ticket_categories.c.event_id.in_([row.id for row in rows]))
        .order_by(ticket_categories.c.id)
    )
    by_event: dict[int, list[CategoryRecord]] = {row.id: [] for row in rows}
    for category_row in await conn.execute(statement):
        by_event[category_row.event_id].append(_category(category_row))
    return [_event(row, by_event[row.id]) for row in rows]


async def create_event(conn: AsyncConnection, draft: EventDraft, created_by: int) -> EventRecord:
    event_row = (
        await conn.execute(
            events.insert()
            .values(
                event_name=draft.event_name,
                event_category=draft.event_category,
                description=draft.description,
                event_date=draft.event_date,
                location=draft.location,
                created_by=created_by,
                sales_start_at=draft.sales_start_at,
                sales_end_at=draft.sales_end_at,
                **waiting_room_columns(draft.waiting_room),
            )
            .returning(*events.c)
        )
    ).one()
    categories: list[CategoryRecord] = []
    if draft.categories:
        result = await conn.execute(
            ticket_categories.insert()
            .values(
                [
                    {
                        "event_id": event_row.id,
                        "category_name": category.category_name,
                        "price": category.price,
                        "total_seats": category.total_seats,
                        "description": category.description,
                        "sales_start_at": category.sales_start_at,
                        "sales_end_at": category.sales_end_at,
                        "max_per_user": category.max_per_user,
                    }
                    for category in draft.categories
                ]
            )
            .returning(*ticket_categories.c)
        )
        categories = sorted((_category(row) for row in result), key=lambda c: c.id)
    return _event(event_row, categories)


async def get_event(conn: AsyncConnection, event_id: int) -> EventRecord | None:
    row = (await conn.execute(select(events).where(events.c.id == event_id))).first()
    if row is None:
        return None
    return (await _with_categories(conn, [row]))[0]


async def list_events(
    conn: AsyncConnection,
    *,
    upcoming_after: datetime | None = None,
    event_category: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[EventRecord]:
    statement = select(events).order_by(events.c.event_date, events.c.id).offset(offset)
    if upcoming_after is not None:
        statement = statement.where(events.c.event_date > upcoming_after)
    if event_category is not None:
        statement = statement.where(events.c.event_category == event_category)
    if limit is not None:
        statement = statement.limit(limit)
    rows = list(await conn.execute(statement))
    return await _with_categories(conn, rows)


async def update_event(
    conn: AsyncConnection, event_id: int, changes: Mapping[str, Any]
) -> EventRecord | None:
    """Apply the given field changes and bump updated_at; None when the event does not exist."""
    unknown = set(changes) - EDITABLE_EVENT_FIELDS
    if unknown:
        raise ValueError(f"not editable event fields: {sorted(unknown)}")
    statement = (
        update(events)
        .where(events.c.id == event_id)
        # clock_timestamp, not now(): an edit in the creating transaction still moves it.
        .values(**changes, updated_at=func.clock_timestamp())
        .returning(*events.c)
    )
    row = (await conn.execute(statement)).first()
    if row is None:
        return None
    return (await _with_categories(conn, [row]))[0]


async def delete_event(conn: AsyncConnection, event_id: int) -> bool:
    """Delete the event; its categories and their snapshots go with it (ON DELETE CASCADE),
    and their hold journal. False when there is no such event; `EventHasOrders` when an order
    names one of its categories, even one committed a moment ago: the orders' foreign key
    refuses the cascade, so no order is ever orphaned."""
    categories = select(ticket_categories.c.id).where(ticket_categories.c.event_id == event_id)
    try:
        async with conn.begin_nested():
            # First: once the categories are gone, nothing names the journal's rows.
            await conn.execute(
                delete(hold_journal).where(hold_journal.c.category_id.in_(categories))
            )
            result = await conn.execute(
                delete(events).where(events.c.id == event_id).returning(events.c.id)
            )
            deleted = result.first() is not None
    except IntegrityError as error:
        if isinstance(error.orig, ForeignKeyViolation):
            raise EventHasOrders(event_id) from error
        raise
    return deleted


async def event_has_orders(conn: AsyncConnection, event_id: int) -> bool:
    statement = select(exists().where(orders.c.event_id == event_id))
    return bool((await conn.execute(statement)).scalar())


async def get_category(conn: AsyncConnection, category_id: int) -> CategoryRecord | None:
    statement = select(ticket_categories).where(ticket_categories.c.id == category_id)
    row = (await conn.execute(statement)).first()
    return None if row is None else _category(row)


async def load_category_facts(conn: AsyncConnection, category_id: int) -> CategoryFacts | None:
    """What a category actor needs at activation; active only if event and category both are.

    With it, the sales rules (both windows, the limit), each buyer's seats in non-cancelled
    orders (the limit counts them) and the waiting list in order.
    """
    statement = (
        select(
            ticket_categories.c.id,
            ticket_categories.c.event_id,
            ticket_categories.c.total_seats,
            (ticket_categories.c.is_active & events.c.is_active).label("is_active"),
            events.c.sales_start_at.label("event_start"),
            events.c.sales_end_at.label("event_end"),
            ticket_categories.c.sales_start_at.label("category_start"),
            ticket_categories.c.sales_end_at.label("category_end"),
            ticket_categories.c.max_per_user,
            events.c.updated_at,
        )
        .join(events, events.c.id == ticket_categories.c.event_id)
        .where(ticket_categories.c.id == category_id)
    )
    row = (await conn.execute(statement)).first()
    if row is None:
        return None
    bought = await conn.execute(
        select(orders.c.user_id, func.sum(orders.c.quantity).label("seats"))
        .where(orders.c.category_id == category_id, orders.c.status != "cancelled")
        .group_by(orders.c.user_id)
    )
    waiting = await waitlist.entries(conn, category_id)
    return CategoryFacts(
        category_id=row.id,
        event_id=row.event_id,
        total_seats=row.total_seats,
        is_active=bool(row.is_active),
        event_window=(_epoch(row.event_start), _epoch(row.event_end)),
        category_window=(_epoch(row.category_start), _epoch(row.category_end)),
        max_per_user=row.max_per_user,
        stamp=row.updated_at.timestamp(),
        bought=tuple((int(r.user_id), int(r.seats)) for r in bought),
        waiting=tuple((entry.id, entry.user_id, entry.quantity) for entry in waiting),
    )


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


async def category_totals(
    conn: AsyncConnection, category_ids: Iterable[int]
) -> dict[int, tuple[int, int, int]]:
    """category id → (event_id, total_seats, sold_seats) for those that exist."""
    ids = list(category_ids)
    if not ids:
        return {}
    statement = select(
        ticket_categories.c.id,
        ticket_categories.c.event_id,
        ticket_categories.c.total_seats,
        ticket_categories.c.sold_seats,
    ).where(among(ticket_categories.c.id, ids))
    return {
        row.id: (row.event_id, row.total_seats, row.sold_seats)
        for row in await conn.execute(statement)
    }
