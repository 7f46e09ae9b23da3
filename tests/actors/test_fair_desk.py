"""The desk's fair-sale steps without Ray: rules from the facts and from newer commands, offers
announced on the feed as holds marked `offer`, served entries handed to the sweeper, and the
sweeper deleting their rows (retrying a failed delete)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from actors.desk import Desk
from actors.inventory import Inventory, SaleRules, WaitEntry
from actors.messages import (
    HoldPlaced,
    HoldView,
    JoinWaitlist,
    LeaveWaitlist,
    PlaceHold,
    Refused,
    ReleaseHold,
    WaitlistJoined,
    WaitlistLeft,
)
from actors.refusals import RefusalReason
from actors.waitlist_sweeper import WaitlistSweeper
from persistence.records import CategoryFacts

NOW = 10_000.0


@dataclass
class Feed:
    added: list[HoldView] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    consumed: list[int] = field(default_factory=list)

    def changed(self, added: Sequence[HoldView], removed: Sequence[str]) -> None:
        self.added.extend(added)
        self.removed.extend(removed)

    def served(self, entries: Sequence[WaitEntry]) -> None:
        self.consumed.extend(entry.entry_id for entry in entries)


def _desk(feed: Feed, total: int = 2, **facts: object) -> Desk:
    return Desk(
        Inventory(total=total),
        event_id=1,
        category_id=7,
        epoch=1,
        lock_ttl_seconds=300,
        changed=feed.changed,
        clock=lambda: NOW,
        facts=CategoryFacts(7, 1, total, True, **facts),  # type: ignore[arg-type]
        offer_ttl_seconds=60,
        consumed=feed.served,
    )


def test_the_facts_window_refuses_until_a_newer_command_moves_it() -> None:
    feed = Feed()
    desk = _desk(feed, event_window=(NOW + 100, None), stamp=5.0)
    early = desk.decide([PlaceHold("r1", 3, 1, 1)], NOW, {}, ()).outcomes[0]
    assert isinstance(early, Refused) and early.reason is RefusalReason.SALES_NOT_OPEN
    stale = PlaceHold("r2", 3, 1, 1, SaleRules(stamp=4.0))  # an older catalogue: ignored
    assert isinstance(desk.decide([stale], NOW, {}, ()).outcomes[0], Refused)
    fresh = PlaceHold("r3", 3, 1, 1, SaleRules(opens_at=NOW - 1, stamp=6.0))
    assert isinstance(desk.decide([fresh], NOW, {}, ()).outcomes[0], HoldPlaced)


def test_a_list_loaded_from_the_ledger_is_served_before_anyone_else() -> None:
    feed = Feed()
    desk = _desk(feed, total=1, waiting=((41, 5, 1), (42, 6, 1)), bought=((9, 1),))
    assert desk.availability().waiting == (5, 6)
    assert desk.availability().available == 0  # the free seat is set aside for the list
    refused = desk.decide([PlaceHold("r1", 3, 1, 1)], NOW, {}, ()).outcomes[0]
    assert isinstance(refused, Refused) and refused.reason is RefusalReason.NOT_ENOUGH_SEATS
    # The same step offered the seat to the head, and handed its row to the sweeper.
    assert [(v.owner, v.offer) for v in feed.added] == [(5, True)]
    assert feed.consumed == [41]
    assert desk.availability().waiting == (6,)
    assert desk.inventory.bought_by(9) == 1
    joined = desk.decide([JoinWaitlist("r2", 7, 1, 43, 1)], NOW, {}, ()).outcomes[0]
    assert isinstance(joined, WaitlistJoined) and joined.position == 2
    left = desk.decide([LeaveWaitlist("r3", 6)], NOW, {}, ()).outcomes[0]
    assert isinstance(left, WaitlistLeft) and left.entry_id == 42
    assert desk.availability().waiting == (7,)


def test_offers_go_out_as_offer_holds_and_served_rows_are_swept() -> None:
    feed = Feed()
    desk = _desk(feed, total=1)
    held = desk.decide([PlaceHold("r1", 3, 1, 1)], NOW, {}, ()).outcomes[0]
    assert isinstance(held, HoldPlaced)
    joined = desk.decide([JoinWaitlist("r2", 5, 1, 41, 1)], NOW, {}, ()).outcomes[0]
    assert isinstance(joined, WaitlistJoined) and joined.position == 1
    assert desk.availability().available == 0

    desk.decide([ReleaseHold("r3", 3, lock_id=held.hold.lock_id)], NOW, {}, ())
    offers = [view for view in feed.added if view.offer]
    assert [(o.owner, o.quantity, o.expires_at) for o in offers] == [(5, 1, NOW + 60)]
    assert feed.consumed == [41]
    assert desk.availability().waiting == ()
    # Declined: nobody waits any more, so the seat is back on sale.
    declined = desk.decide([ReleaseHold("r4", 5, lock_id=offers[0].lock_id)], NOW, {}, ())
    assert desk.availability().available == 1
    assert not isinstance(declined.outcomes[0], Refused)
    left = desk.decide([LeaveWaitlist("r5", 5)], NOW, {}, ()).outcomes[0]
    assert isinstance(left, Refused) and left.reason is RefusalReason.NOT_WAITING


async def test_the_sweeper_deletes_served_rows_and_retries_a_failure() -> None:
    calls: list[list[int]] = []

    async def delete(entry_ids: list[int]) -> None:
        calls.append(entry_ids)
        if len(calls) == 1:
            raise ConnectionError("the ledger blinked")

    sweeper = WaitlistSweeper(delete)
    sweeper.consumed([WaitEntry(3, 1, 1), WaitEntry(2, 1, 1)])
    assert not sweeper.idle
    async with asyncio.timeout(10):
        await sweeper.settled()
    assert sweeper.idle
    assert calls == [[2, 3], [2, 3]]
