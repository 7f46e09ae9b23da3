"""The hold journal: every hold a category actor placed or dropped since its last snapshot.

Appended with each write of the actor's journal (one row carrying every batch that waited),
before those batches are answered; read after the snapshot at activation; truncated up to
what a newer snapshot covers. `seq` orders the rows of one category.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


# One row per write whatever its size, its entries one JSON text built by the C encoder: a row
# per hold (and before that a compiled VALUES list) cost the hot hold path a third more CPU
# per hold (benchmarks/journal_cost.py).
_APPEND = text(
    "INSERT INTO hold_journal (category_id, entries)"
    " VALUES (:category_id, CAST(:entries AS json)) RETURNING seq"
)


async def append(
    conn: AsyncConnection, category_id: int, entries: Sequence[JournalEntry]
) -> int | None:
    """Write entries, in order, as one row (atomic even in autocommit); its `seq`."""
    if not entries:
        return None
    payload = json.dumps([[e.lock_id, e.owner, e.quantity, e.expires_at] for e in entries])
    result = await conn.execute(_APPEND, {"category_id": category_id, "entries": payload})
    seq: int = result.scalar_one()
    return int(seq)


async def entries_after(
    conn: AsyncConnection, category_id: int, seq: int
) -> tuple[list[JournalEntry], int]:
    """Entries after `seq` in order, and the highest seq read (`seq` when there are none)."""
    statement = (
        select(hold_journal.c.seq, hold_journal.c.entries)
        .where(hold_journal.c.category_id == category_id, hold_journal.c.seq > seq)
        .order_by(hold_journal.c.seq)
    )
    entries: list[JournalEntry] = []
    last = seq
    for row in await conn.execute(statement):
        entries.extend(_decode(row.entries))
        last = max(last, int(row.seq))
    return entries, last


def _decode(rows: Any) -> list[JournalEntry]:
    return [
        JournalEntry(str(lock_id), int(owner), int(quantity), float(expires_at))
        for lock_id, owner, quantity, expires_at in rows
    ]


async def truncate(conn: AsyncConnection, category_id: int, upto: int) -> None:
    """Forget what a snapshot now covers."""
    await conn.execute(
        delete(hold_journal).where(
            hold_journal.c.category_id == category_id, hold_journal.c.seq <= upto
        )
    )


async def length(conn: AsyncConnection, category_id: int) -> int:
    """Rows (journal writes) not yet covered by a snapshot."""
    statement = select(func.count()).where(hold_journal.c.category_id == category_id)
    return int((await conn.execute(statement)).scalar_one())
