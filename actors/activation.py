"""Activation and passivation of a category actor: rebuilding its inventory from the ledger
and the last snapshot, and knowing when it has been idle long enough to leave.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from actors.inventory import Inventory
from actors.journal import replay
from actors.remote import Missing, Retired
from actors.snapshotter import holds_of
from persistence import catalog, hold_journal, ledger, snapshots
from persistence.records import CategoryFacts


@dataclass(frozen=True, slots=True)
class Rebuilt:
    facts: CategoryFacts
    inventory: Inventory
    journal_seq: int  # the last journal entry the inventory includes
    replayed: int = 0  # journal entries after the snapshot, applied to it


async def rebuild(conn: AsyncConnection, category_id: int, now: float) -> Rebuilt:
    """`sold` from the orders ledger, holds from the last snapshot plus the journal after it:
    minus the expired ones and those whose order reached the ledger (invariant 5)."""
    facts = await catalog.load_category_facts(conn, category_id)
    if facts is None:
        raise Missing(f"category {category_id} does not exist")
    sold = await ledger.sold_seats(conn, category_id)
    saved = snapshots.decode_snapshot(await snapshots.load_snapshot(conn, category_id))
    entries, journal_seq = await hold_journal.entries_after(conn, category_id, saved.journal_seq)
    holds = replay(holds_of(saved), entries)
    confirmed = await ledger.confirmed_lock_ids(conn, category_id, [h.lock_id for h in holds])
    inventory = Inventory.restore(
        total=facts.total_seats,
        sold=sold,
        holds=holds,
        now=now,
        version=saved.version + len(entries),
        confirmed_lock_ids=frozenset(confirmed),
    )
    return Rebuilt(facts, inventory, journal_seq, len(entries))


class Activity:
    """Calls in flight and the time of the last one; retired once the actor is leaving."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.in_flight = 0
        self.last_call = clock()
        self.retired = False

    def enter(self) -> None:
        if self.retired:
            raise Retired("this activation is shutting down")
        self.in_flight += 1
        self.last_call = self._clock()

    def leave(self) -> None:
        self.in_flight -= 1
        self.last_call = self._clock()

    def idle_for(self) -> float:
        return self._clock() - self.last_call if self.in_flight == 0 else 0.0
