"""Each event's waiting room as the ledger keeps it: one row per buyer in line, written before
the buyer hears they joined; the opening draw and each tick's admissions, one statement each.

The queue actor is the only writer of its event's rows, and reloads them when it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.arrays import among
from persistence.models import orders, queue_entries


@dataclass(frozen=True, slots=True)
class QueueRow:
    user_id: int
    seq: int
    early: bool
    rank: int | None
    admitted_at: float | None
    pass_expires_at: float | None


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


async def add(
    conn: AsyncConnection, event_id: int, user_ids: Sequence[int], early: bool
) -> list[tuple[int, int]]:
    """Put the users in line in the given order (one statement); answers (user_id, seq) of
    those newly in line, in arrival order. A user already in line is left where they are."""
    if not user_ids:
        return []
    statement = (
        insert(queue_entries)
        .values([{"event_id": event_id, "user_id": user, "early": early} for user in user_ids])
        .on_conflict_do_nothing(index_elements=["event_id", "user_id"])
        .returning(queue_entries.c.user_id, queue_entries.c.seq)
    )
    rows = [(int(row.user_id), int(row.seq)) for row in await conn.execute(statement)]
    return sorted(rows, key=lambda row: row[1])


async def store_draw(conn: AsyncConnection, event_id: int, order: Sequence[int]) -> None:
    """The opening draw, whole, in one statement: user `order[i]` gets rank i."""
    if not order:
        return
    # Two array parameters, not a VALUES list: 22,000 buyers were 44,000 placeholders, and the
    # opening waited 2.0 s for SQLAlchemy and psycopg to build and split that query (the
    # waiting-room bench lost those seconds of admissions); this takes 0.15 s.
    await conn.execute(
        _STORE_DRAW, {"event_id": event_id, "users": list(order), "ranks": list(range(len(order)))}
    )


_STORE_DRAW = text(
    "UPDATE queue_entries SET rank = drawn.rank"
    " FROM unnest(CAST(:users AS integer[]), CAST(:ranks AS integer[])) AS drawn(user_id, rank)"
    " WHERE queue_entries.event_id = :event_id AND queue_entries.user_id = drawn.user_id"
)


async def admit(
    conn: AsyncConnection,
    event_id: int,
    user_ids: Sequence[int],
    admitted_at: float,
    expires_at: float,
) -> None:
    """One tick's admissions in one statement."""
    if not user_ids:
        return
    await conn.execute(
        update(queue_entries)
        .where(queue_entries.c.event_id == event_id, among(queue_entries.c.user_id, user_ids))
        .values(admitted_at=_moment(admitted_at), pass_expires_at=_moment(expires_at))
    )


async def entries(conn: AsyncConnection, event_id: int) -> list[QueueRow]:
    statement = (
        select(queue_entries)
        .where(queue_entries.c.event_id == event_id)
        .order_by(queue_entries.c.seq)
    )
    return [
        QueueRow(
            user_id=row.user_id,
            seq=row.seq,
            early=row.early,
            rank=row.rank,
            admitted_at=_epoch(row.admitted_at),
            pass_expires_at=_epoch(row.pass_expires_at),
        )
        for row in await conn.execute(statement)
    ]


async def count(conn: AsyncConnection, event_id: int) -> int:
    statement = select(func.count()).where(queue_entries.c.event_id == event_id)
    return int((await conn.execute(statement)).scalar_one())


async def buyers(conn: AsyncConnection, event_id: int, user_ids: Sequence[int]) -> set[int]:
    """Which of these users have a live order in the event (their pass was used)."""
    if not user_ids:
        return set()
    statement = (
        select(orders.c.user_id)
        .where(
            orders.c.event_id == event_id,
            orders.c.status != "cancelled",
            among(orders.c.user_id, user_ids),
        )
        .distinct()
    )
    return {int(row.user_id) for row in await conn.execute(statement)}
