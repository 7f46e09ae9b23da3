"""An event's orders for its organizer's export: pages in id order, each row with its buyer.

Keyset pages (`id > after`), so a page costs the same at the millionth order as at the first
and rows written during an export never shift the pages still to come.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.models import orders, users


@dataclass(frozen=True, slots=True)
class ExportRow:
    order_id: int
    created_at: datetime
    status: str
    buyer_id: int
    buyer: str
    category_id: int
    category_name: str
    quantity: int
    unit_price: Decimal
    total_price: Decimal
    notes: str | None


async def order_rows(
    conn: AsyncConnection, event_id: int, *, after_id: int, limit: int
) -> list[ExportRow]:
    statement = (
        select(
            orders.c.id,
            orders.c.created_at,
            orders.c.status,
            orders.c.user_id,
            users.c.username,
            orders.c.category_id,
            orders.c.category_name,
            orders.c.quantity,
            orders.c.unit_price,
            orders.c.total_price,
            orders.c.notes,
        )
        .join(users, users.c.id == orders.c.user_id)
        .where(orders.c.event_id == event_id, orders.c.id > after_id)
        .order_by(orders.c.id)
        .limit(limit)
    )
    return [
        ExportRow(
            order_id=row.id,
            created_at=row.created_at,
            status=row.status,
            buyer_id=row.user_id,
            buyer=row.username,
            category_id=row.category_id,
            category_name=row.category_name,
            quantity=row.quantity,
            unit_price=row.unit_price,
            total_price=row.total_price,
            notes=row.notes,
        )
        for row in await conn.execute(statement)
    ]


async def completed_per_second(
    conn: AsyncConnection, event_id: int, *, within_seconds: int
) -> list[tuple[int, int]]:
    """(epoch second, orders completed in it) over the last `within_seconds`: what a live
    dashboard starts its orders-per-minute from."""
    second = func.floor(func.extract("epoch", orders.c.updated_at)).label("second")
    statement = (
        select(second, func.count().label("orders"))
        .where(
            orders.c.event_id == event_id,
            orders.c.status == "completed",
            orders.c.updated_at > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, within_seconds),
        )
        .group_by(second)
    )
    return [(int(row.second), int(row.orders)) for row in await conn.execute(statement)]
