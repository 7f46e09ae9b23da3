"""The waiting lists: one row per buyer waiting for a category, in the order they joined.

A row is written before a join is acknowledged and deleted when the buyer leaves or the
category's actor offered them seats; the category actor reloads the list at activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.models import waitlist_entries
from persistence.records import WaitlistRow


def _row(row: Any) -> WaitlistRow:
    return WaitlistRow(
        id=row.id,
        category_id=row.category_id,
        user_id=row.user_id,
        quantity=row.quantity,
        created_at=row.created_at,
    )


async def add(
    conn: AsyncConnection, category_id: int, user_id: int, quantity: int
) -> WaitlistRow | None:
    """The new entry, or None when the user already waits for this category."""
    statement = (
        insert(waitlist_entries)
        .values(category_id=category_id, user_id=user_id, quantity=quantity)
        .on_conflict_do_nothing(index_elements=["category_id", "user_id"])
        .returning(*waitlist_entries.c)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else _row(row)


async def remove(conn: AsyncConnection, category_id: int, user_id: int) -> WaitlistRow | None:
    statement = (
        delete(waitlist_entries)
        .where(
            waitlist_entries.c.category_id == category_id,
            waitlist_entries.c.user_id == user_id,
        )
        .returning(*waitlist_entries.c)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else _row(row)


async def remove_entries(conn: AsyncConnection, entry_ids: Sequence[int]) -> None:
    if entry_ids:
        await conn.execute(delete(waitlist_entries).where(waitlist_entries.c.id.in_(entry_ids)))


async def entries(conn: AsyncConnection, category_id: int) -> list[WaitlistRow]:
    """The category's list, first in line first."""
    statement = (
        select(waitlist_entries)
        .where(waitlist_entries.c.category_id == category_id)
        .order_by(waitlist_entries.c.id)
    )
    return [_row(row) for row in await conn.execute(statement)]
