"""The change feed across a hub restart, in plain Python (no Ray): hubs, category batchers and
followers' mirrors wired by hand, the restart played by swapping in a fresh hub. What a
follower knows is never emptied by a restart, and once every live category has republished
it is exactly the categories' true state, removals made while the hub was away included."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from actors.feed import FeedHub
from actors.feed_batcher import FeedBatcher
from actors.messages import Availability, CategoryChanged, FeedBatch, FeedItem, HoldView
from actors.mirror import FeedMirror

NOW = 1_700_000_000.0


def hold(lock_id: str, owner: int, category_id: int) -> HoldView:
    return HoldView(lock_id, owner, 7, category_id, 1, NOW + 600)


class Category:
    """A category's true state and its batcher, publishing to whichever hub is current."""

    def __init__(self, network: Network, category_id: int, total: int = 10) -> None:
        self.network = network
        self.category_id = category_id
        self.total = total
        self.version = 0
        self.holds: dict[str, HoldView] = {}
        self.feed = FeedBatcher(self._publish, self.availability, 0.0, holds=self.live_holds)

    async def _publish(self, items: list[FeedItem]) -> int:
        if self.network.hub is None:
            raise ConnectionError("the hub is down")
        return await self.network.hub.publish(items)

    def availability(self) -> Availability:
        held = sum(h.quantity for h in self.holds.values())
        return Availability(7, self.category_id, self.total, held, 0, self.version, NOW, 1)

    def live_holds(self) -> Sequence[HoldView]:
        return tuple(self.holds.values())

    def add(self, lock_id: str, owner: int) -> None:
        view = hold(lock_id, owner, self.category_id)
        self.holds[lock_id] = view
        self.version += 1
        self.feed.mark([view], [])

    def remove(self, lock_id: str) -> None:
        del self.holds[lock_id]
        self.version += 1
        self.feed.mark([], [lock_id])


class Network:
    def __init__(self) -> None:
        self.hub: FeedHub | None = None
        self.categories: list[Category] = []

    def start_hub(self) -> FeedHub:
        async def resync() -> int:
            for category in self.categories:
                category.feed.republish()
            return len(self.categories)

        self.hub = FeedHub(resync)
        return self.hub


class Follower:
    """A gateway's follow loop, one poll at a time (SeatClient._apply's rule)."""

    def __init__(self) -> None:
        self.mirror = FeedMirror()
        self.cursor: int | None = None
        self.generation: int | None = None

    async def poll(self, hub: FeedHub) -> None:
        batch: FeedBatch = await hub.poll(self.cursor, 0.0, self.generation)
        if batch.reset is not None:
            if self.generation in (None, batch.generation):
                self.mirror.reset(batch.reset)
            else:
                self.mirror.merge(batch.reset)
        self.generation, self.cursor = batch.generation, batch.cursor
        for item in batch.items:
            if isinstance(item, CategoryChanged):
                self.mirror.apply(item)


async def settle(network: Network) -> None:
    """Publish until nothing is pending (without waiting out a batcher's retry pause)."""
    for _ in range(5):
        for category in network.categories:
            await category.feed.flush()
        if all(category.feed.idle for category in network.categories):
            return
    raise AssertionError("a category kept changes pending")


def view_of(mirror: FeedMirror, owner: int) -> set[str]:
    return {h.lock_id for h in mirror.holds_of(owner, NOW)}


async def test_a_hub_restart_leaves_followers_their_view_then_the_true_state() -> None:
    network = Network()
    network.start_hub()
    a, b = Category(network, 1), Category(network, 2)
    network.categories = [a, b]
    follower = Follower()
    a.add("a1", owner=5)
    a.add("a2", owner=5)
    b.add("b1", owner=6)
    await settle(network)
    assert network.hub is not None
    await follower.poll(network.hub)
    assert view_of(follower.mirror, 5) == {"a1", "a2"} and view_of(follower.mirror, 6) == {"b1"}

    # The hub goes away; changes made meanwhile are kept by their batchers, not dropped.
    network.hub = None
    a.remove("a1")
    b.add("b2", owner=6)
    await asyncio.sleep(0)
    assert not a.feed.idle and not b.feed.idle

    # A fresh hub knows nothing: a follower that asks merges and keeps what it knew.
    hub = network.start_hub()
    await follower.poll(hub)
    assert view_of(follower.mirror, 5) == {"a1", "a2"}
    assert follower.mirror.availability[1].held == 2

    # Its first call made the hub ask every live category for its whole state: the view
    # becomes the truth.
    assert await hub.resynced() == 2
    await settle(network)
    await follower.poll(hub)
    assert view_of(follower.mirror, 5) == {"a2"} and view_of(follower.mirror, 6) == {"b1", "b2"}
    assert follower.mirror.availability[1].held == 1
    assert follower.mirror.availability[2].held == 2

    # A follower that starts only now gets the same state from the hub itself.
    late = Follower()
    await late.poll(hub)
    assert late.mirror.holds == follower.mirror.holds


async def test_a_follower_back_only_after_the_resync_drops_what_was_released_meanwhile() -> None:
    """The complete items are inside the new hub's state by the time this follower asks: the
    merge must replace those categories' holds, not only add to them (seen in the
    multi-node test: a released hold stayed on one gateway)."""
    network = Network()
    network.start_hub()
    a, b = Category(network, 1), Category(network, 2)
    network.categories = [a, b]
    a.add("a1", owner=5)
    a.add("a2", owner=5)
    b.add("b1", owner=6)
    await settle(network)
    follower = Follower()
    assert network.hub is not None
    await follower.poll(network.hub)

    network.hub = None
    a.remove("a1")
    hub = network.start_hub()
    assert await hub.resynced() == 2
    await settle(network)
    await follower.poll(hub)  # a reset of a new generation: merged
    assert view_of(follower.mirror, 5) == {"a2"} and view_of(follower.mirror, 6) == {"b1"}
    assert follower.mirror.hold_count(5) == 1


async def test_a_publisher_that_meets_a_new_generation_sends_its_whole_state() -> None:
    network = Network()
    network.start_hub()
    a = Category(network, 1)
    network.categories = [a]
    a.add("a1", owner=5)
    await settle(network)
    # Restarted without its resync (say it failed): the next delta is followed by the whole.
    network.hub = FeedHub()
    a.add("a2", owner=5)
    await settle(network)
    follower = Follower()
    await follower.poll(network.hub)
    assert view_of(follower.mirror, 5) == {"a1", "a2"}


async def test_a_cursor_of_another_generation_gets_the_whole_state() -> None:
    old, new = FeedHub(), FeedHub()
    for hub in (old, new):
        await hub.publish([CategoryChanged(Category(Network(), 3).availability())])
    batch = await old.poll(None, 0.0)
    assert batch.reset is not None and batch.generation == old.generation
    # The same cursor number means nothing on the new hub.
    again = await new.poll(batch.cursor, 0.0, batch.generation)
    assert again.reset is not None and again.generation == new.generation


def test_a_complete_item_replaces_only_its_own_categorys_holds() -> None:
    mirror = FeedMirror()
    mirror.add_holds([hold("a1", 5, 1), hold("a2", 5, 1), hold("b1", 5, 2)])
    state = Availability(7, 1, 10, 1, 0, 9, NOW, 1)
    assert mirror.apply(CategoryChanged(state, (hold("a2", 5, 1),), complete=True))
    assert view_of(mirror, 5) == {"a2", "b1"}
    assert mirror.hold_count(5) == 2
    # A stale complete item changes nothing.
    older = Availability(7, 1, 10, 0, 0, 8, NOW, 1)
    assert not mirror.apply(CategoryChanged(older, (), complete=True))
    assert view_of(mirror, 5) == {"a2", "b1"}
