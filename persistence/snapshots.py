"""Category snapshots: the write-behind copy of an actor's holds and counters, as JSONB.

An actor that restarts loads its last snapshot; a deleted category takes its snapshot with it.
`encode_snapshot` and `decode_snapshot` are the one place the stored shape is written and read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import exists, func, literal, select, text, union
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.models import category_snapshots, hold_journal, ticket_categories

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SavedHold:
    lock_id: str
    owner: int
    quantity: int
    expires_at: float  # epoch seconds


class HoldFields(Protocol):
    """What a snapshot keeps of a hold: the actor's own holds are encoded as they are, with
    no copy (a hot category's snapshot can carry 100,000 of them)."""

    @property
    def lock_id(self) -> str: ...
    @property
    def owner(self) -> int: ...
    @property
    def quantity(self) -> int: ...
    @property
    def expires_at(self) -> float: ...


@dataclass(frozen=True, slots=True)
class CategorySnapshot:
    version: int
    sold: int
    total: int
    holds: Sequence[HoldFields]
    # The last hold-journal entry this snapshot includes: activation replays those after it.
    journal_seq: int = 0


def encode_snapshot(snapshot: CategorySnapshot) -> dict[str, Any]:
    return {
        "version": snapshot.version,
        "sold": snapshot.sold,
        "total": snapshot.total,
        "journalSeq": snapshot.journal_seq,
        "holds": [
            {
                "lockId": h.lock_id,
                "owner": h.owner,
                "quantity": h.quantity,
                "expiresAt": h.expires_at,
            }
            for h in snapshot.holds
        ],
    }


def decode_snapshot(payload: dict[str, Any] | None) -> CategorySnapshot:
    """Whatever can be read of a stored payload, its holds as `SavedHold`s. A hold row that is
    not one (hand-edited, an older format) is skipped: holds are ephemeral, and a bad snapshot
    must never keep a category from activating. `sold` and `total` are informational: the
    ledger decides."""
    payload = payload or {}
    return CategorySnapshot(
        version=_non_negative(payload.get("version")),
        sold=_non_negative(payload.get("sold")),
        total=_non_negative(payload.get("total")),
        holds=tuple(_holds(payload.get("holds"))),
        journal_seq=_non_negative(payload.get("journalSeq")),
    )


def _non_negative(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _holds(rows: Any) -> list[SavedHold]:
    if not isinstance(rows, list):
        return []
    holds = []
    for row in rows:
        try:
            hold = SavedHold(
                lock_id=str(row["lockId"]),
                owner=int(row["owner"]),
                quantity=int(row["quantity"]),
                expires_at=float(row["expiresAt"]),
            )
        except (KeyError, TypeError, ValueError):
            log.warning("skipping a malformed hold in a snapshot: %r", row)
            continue
        if hold.quantity > 0:
            holds.append(hold)
    return holds


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
    """Categories whose last snapshot lists holds, or whose hold journal has entries after it:
    actors to wake so their holds can expire."""
    saved = select(category_snapshots.c.category_id).where(_HAS_HOLDS)
    journaled = select(hold_journal.c.category_id).distinct()
    statement = union(saved, journaled).order_by("category_id")
    return list((await conn.execute(statement)).scalars())
