"""The hold journal: every hold a category actor placed or dropped since its last snapshot.

Appended with each batch before the batch is answered, read after the snapshot at activation,
truncated up to what a newer snapshot covers. `seq` orders the entries of one category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.models import hold_journal


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A hold as it now is; `quantity` 0 means it is gone (released, confirmed, expired)."""

    lock_id: str
    owner: int
    quantity: int
    expires_at: float

    @property
    def dropped(self) -> bool:
        return self.quantity == 0


def dropped(lock_id: str) -> JournalEntry:
    return JournalEntry(lock_id, 0, 0, 0.0)


# One statement of fixed text whatever the batch size: psycopg prepares it once, and Python
# builds four arrays instead of compiling a VALUES list per batch (the VALUES form cost the
# hot hold path about half its rate in benchmarks/journal_cost.py).
_APPEND = text(
    "WITH written AS ("
    " INSERT INTO hold_journal (category_id, lock_id, owner, quantity, expires_at)"
    " SELECT :category_id, e.lock_id, e.owner, e.quantity, e.expires_at"
    " FROM unnest(CAST(:lock_ids AS text[]), CAST(:owners AS integer[]),"
    " CAST(:quantities AS integer[]), CAST(:expiries AS double precision[]))"
    " WITH ORDINALITY AS e(lock_id, owner, quantity, expires_at, position)"
    " ORDER BY e.position"
    " RETURNING seq"
    ") SELECT max(seq) FROM written"
)


async def append(
    conn: AsyncConnection, category_id: int, entries: Sequence[JournalEntry]
) -> int | None:
    """Write entries in order (one statement: atomic even in autocommit); the highest `seq`."""
    if not entries:
        return None
    result = await conn.execute(
        _APPEND,
        {
            "category_id": category_id,
            "lock_ids": [e.lock_id for e in entries],
            "owners": [e.owner for e in entries],
            "quantities": [e.quantity for e in entries],
            "expiries": [e.expires_at for e in entries],
        },
    )
    seq: int | None = result.scalar_one()
    return None if seq is None else int(seq)


async def entries_after(
    conn: AsyncConnection, category_id: int, seq: int
) -> tuple[list[JournalEntry], int]:
    """Entries after `seq` in order, and the highest seq read (`seq` when there are none)."""
    statement = (
        select(hold_journal)
        .where(hold_journal.c.category_id == category_id, hold_journal.c.seq > seq)
        .order_by(hold_journal.c.seq)
    )
    rows = list(await conn.execute(statement))
    entries = [JournalEntry(r.lock_id, r.owner, r.quantity, r.expires_at) for r in rows]
    return entries, max((r.seq for r in rows), default=seq)


async def truncate(conn: AsyncConnection, category_id: int, upto: int) -> None:
    """Forget what a snapshot now covers."""
    await conn.execute(
        delete(hold_journal).where(
            hold_journal.c.category_id == category_id, hold_journal.c.seq <= upto
        )
    )


async def length(conn: AsyncConnection, category_id: int) -> int:
    statement = select(func.count()).where(hold_journal.c.category_id == category_id)
    return int((await conn.execute(statement)).scalar_one())
