"""Category snapshots: the write-behind copy of an actor's holds and counters, as JSONB.

An actor that restarts loads its last snapshot; a deleted category takes its snapshot with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, literal, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.models import category_snapshots, ticket_categories

_HAS_HOLDS = text(
    "category_snapshots.payload -> 'holds' IS NOT NULL"
    " AND category_snapshots.payload -> 'holds' NOT IN ('[]'::jsonb, '{}'::jsonb, 'null'::jsonb)"
)


async def save_snapshot(conn: AsyncConnection, category_id: int, payload: dict[str, Any]) -> None:
    """Upsert the snapshot; a category deleted meanwhile is skipped, not an error."""
    source = select(
        literal(category_id).label("category_id"),
        literal(payload, JSONB).label("payload"),
    ).where(exists().where(ticket_categories.c.id == category_id))
    statement = insert(category_snapshots).from_select(["category_id", "payload"], source)
    statement = statement.on_conflict_do_update(
        index_elements=[category_snapshots.c.category_id],
        set_={"payload": statement.excluded.payload, "saved_at": func.now()},
    )
    await conn.execute(statement)


async def load_snapshot(conn: AsyncConnection, category_id: int) -> dict[str, Any] | None:
    statement = select(category_snapshots.c.payload).where(
        category_snapshots.c.category_id == category_id
    )
    payload = (await conn.execute(statement)).scalar_one_or_none()
    return None if payload is None else dict(payload)


async def categories_with_holds(conn: AsyncConnection) -> list[int]:
    """Categories whose last snapshot still lists holds: actors to wake so holds can expire."""
    statement = (
        select(category_snapshots.c.category_id)
        .where(_HAS_HOLDS)
        .order_by(category_snapshots.c.category_id)
    )
    return list((await conn.execute(statement)).scalars())
