"""The hold journal without Ray or PostgreSQL: replay order, and group commit of batches."""

from __future__ import annotations

import asyncio

import pytest

from actors.inventory import Hold
from actors.journal import HoldJournal, replay
from persistence.hold_journal import JournalEntry, dropped


def test_replay_applies_the_journal_after_the_snapshot_in_order() -> None:
    snapshot = [Hold("a", 1, 2, 100.0), Hold("b", 2, 1, 100.0)]
    entries = [
        dropped("a"),  # released after the snapshot
        JournalEntry("c", 3, 4, 200.0),  # placed after it
        JournalEntry("c", 3, 1, 200.0),  # then shrunk by a release by quantity
        JournalEntry("d", 4, 1, 200.0),
        dropped("d"),
        dropped("zzz"),  # dropped twice (confirmed, then expired): harmless
    ]
    assert replay(snapshot, entries) == [Hold("b", 2, 1, 100.0), Hold("c", 3, 1, 200.0)]


async def test_batches_that_wait_share_one_write_and_learn_its_seq() -> None:
    writes: list[list[JournalEntry]] = []
    gate = asyncio.Event()

    async def append(entries: list[JournalEntry]) -> int | None:
        writes.append(entries)
        await gate.wait()
        return 10 * len(writes)

    journal = HoldJournal(append)
    journal.note([Hold("a", 1, 1, 1.0)], [])
    first = asyncio.create_task(journal.flush())
    await asyncio.sleep(0)  # the first write is now in flight
    journal.note([], ["a"])
    second = asyncio.create_task(journal.flush())
    journal.note([Hold("b", 2, 1, 1.0)], [])
    third = asyncio.create_task(journal.flush())
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, second, third)
    assert writes == [
        [JournalEntry("a", 1, 1, 1.0)],
        [dropped("a"), JournalEntry("b", 2, 1, 1.0)],  # both waiting batches, one write
    ]
    assert journal.durable_seq == 20 and journal.idle


async def test_a_batch_with_no_changes_waits_for_the_changes_before_it() -> None:
    gate = asyncio.Event()

    async def append(entries: list[JournalEntry]) -> int | None:
        await gate.wait()
        return 1

    journal = HoldJournal(append)
    journal.note([Hold("a", 1, 1, 1.0)], [])
    placing = asyncio.create_task(journal.flush())
    await asyncio.sleep(0)
    # A batch that changed nothing (say, refused for lack of seats the hold took) must not be
    # answered before the hold it rests on is durable.
    refusing = asyncio.create_task(journal.flush())
    await asyncio.sleep(0)
    assert not refusing.done()
    gate.set()
    await asyncio.gather(placing, refusing)


async def test_a_failed_write_fails_every_batch_in_it() -> None:
    async def append(entries: list[JournalEntry]) -> int | None:
        raise ConnectionError("gone")

    journal = HoldJournal(append)
    journal.note([Hold("a", 1, 1, 1.0)], [])
    first = asyncio.create_task(journal.flush())
    journal.note([Hold("b", 1, 1, 1.0)], [])
    second = asyncio.create_task(journal.flush())
    for flush in (first, second):
        with pytest.raises(ConnectionError):
            await flush
    assert journal.durable_seq == 0
