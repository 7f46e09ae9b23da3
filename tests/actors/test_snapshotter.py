"""When the write-behind snapshot is taken: on a change, at most once per interval, and spaced
by its own cost, so that a category with many live holds is not busy snapshotting."""

from __future__ import annotations

from actors.inventory import Inventory
from actors.snapshotter import MAX_SHARE, Snapshotter
from persistence.snapshots import CategorySnapshot


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Store:
    """Saves snapshots, taking `cost` seconds of the clock each; fails while `down`."""

    def __init__(self, clock: Clock, cost: float = 0.0) -> None:
        self.clock = clock
        self.cost = cost
        self.down = False
        self.saved: list[CategorySnapshot] = []

    async def __call__(self, snapshot: CategorySnapshot) -> None:
        self.clock.now += self.cost
        if self.down:
            raise ConnectionError("database down")
        self.saved.append(snapshot)


def held(inventory: Inventory, lock_id: str) -> None:
    inventory.hold(owner=1, quantity=1, lock_id=lock_id, now=0.0, ttl=1e9)


async def test_a_change_is_saved_at_once_then_at_most_once_per_interval() -> None:
    clock = Clock()
    store = Store(clock)
    snapshots = Snapshotter(store, interval=1.0, clock=clock)
    inventory = Inventory(total=10)

    held(inventory, "a")
    await snapshots.save_if_changed(inventory)
    assert len(store.saved) == 1

    held(inventory, "b")
    clock.now += 0.5
    await snapshots.save_if_changed(inventory)
    assert len(store.saved) == 1  # inside the interval

    clock.now += 0.6
    await snapshots.save_if_changed(inventory)
    assert [len(s.holds) for s in store.saved] == [1, 2]

    clock.now += 5.0
    await snapshots.save_if_changed(inventory)
    assert len(store.saved) == 2  # nothing changed: nothing to save


async def test_an_expensive_snapshot_spaces_the_next_by_its_cost() -> None:
    clock = Clock()
    store = Store(clock, cost=0.5)  # a big category: half a second per save
    snapshots = Snapshotter(store, interval=1.0, clock=clock)
    inventory = Inventory(total=10)
    held(inventory, "a")
    await snapshots.save_if_changed(inventory)
    started = clock.now - store.cost

    held(inventory, "b")
    clock.now = started + store.cost / MAX_SHARE - 0.01
    await snapshots.save_if_changed(inventory)
    assert len(store.saved) == 1

    clock.now = started + store.cost / MAX_SHARE
    await snapshots.save_if_changed(inventory)
    assert len(store.saved) == 2


async def test_a_failed_save_is_retried_at_the_next_tick_and_a_forced_save_always_runs() -> None:
    clock = Clock()
    store = Store(clock)
    snapshots = Snapshotter(store, interval=60.0, clock=clock)
    inventory = Inventory(total=10)
    held(inventory, "a")
    store.down = True
    await snapshots.save_if_changed(inventory)
    assert store.saved == []

    store.down = False
    clock.now += 0.1
    await snapshots.save_if_changed(inventory)
    assert len(store.saved) == 1

    held(inventory, "b")
    await snapshots.save(inventory)  # passivation: whatever the interval
    assert [len(s.holds) for s in store.saved] == [1, 2]


class Journal:
    """Counts entries noted, as HoldJournal.noted does."""

    def __init__(self) -> None:
        self.noted = 0

    def __call__(self) -> int:
        return self.noted


async def test_with_a_journal_a_snapshot_waits_until_the_journal_outweighs_it() -> None:
    clock = Clock()
    store = Store(clock)
    journal = Journal()
    snapshots = Snapshotter(store, interval=1.0, clock=clock, journaled=journal)
    inventory = Inventory(total=1000)
    for n in range(100):
        held(inventory, f"a{n}")
    journal.noted = 100
    await snapshots.save_if_changed(inventory)
    assert [len(s.holds) for s in store.saved] == [100]  # 100 entries: as heavy as 100 holds

    # 99 more holds: 199 live, 99 entries since the last save. The interval has passed,
    # but replaying 99 entries costs less than writing 199 holds.
    for n in range(99):
        held(inventory, f"b{n}")
    journal.noted += 99
    clock.now += 5.0
    await snapshots.save_if_changed(inventory)
    assert len(store.saved) == 1

    # Releases are journal entries too: 100 more, and the journal outweighs the snapshot.
    for n in range(100):
        inventory.release(f"a{n}", owner=1)
    journal.noted += 100
    await snapshots.save_if_changed(inventory)
    assert [len(s.holds) for s in store.saved] == [100, 99]


async def test_with_a_journal_an_emptied_category_is_still_saved() -> None:
    """The last release leaves no holds: one entry is enough for a snapshot of none, so the
    journal of a category gone quiet is compacted."""
    clock = Clock()
    store = Store(clock)
    journal = Journal()
    snapshots = Snapshotter(store, interval=1.0, clock=clock, journaled=journal)
    inventory = Inventory(total=10)
    held(inventory, "a")
    journal.noted = 1
    await snapshots.save_if_changed(inventory)
    inventory.release("a", owner=1)
    journal.noted = 2
    clock.now += 1.0
    await snapshots.save_if_changed(inventory)
    assert [len(s.holds) for s in store.saved] == [1, 0]
