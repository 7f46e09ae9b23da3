"""Fixed examples beside the state machine of test_inventory.py, for what its random runs
may miss or never ask: the actor's two queries (which holds a buyer has, when the next one is
due), an aborted confirm, and the version every change must move forward. (Found by
`make mutate`: these mutants survived the state machine.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from actors.inventory import Hold, Inventory
from actors.refusals import (
    BadQuantity,
    HoldExpired,
    HoldNotFound,
    NotEnoughSeats,
    NotYourHold,
    Refusal,
)


def test_holds_of_lists_only_that_owners_holds() -> None:
    inventory = Inventory(total=10)
    first = inventory.hold(1, 2, "a", now=0.0, ttl=30.0)
    inventory.hold(2, 1, "b", now=0.0, ttl=30.0)
    third = inventory.hold(1, 3, "c", now=0.0, ttl=30.0)

    assert inventory.holds_of(1) == [first, third]
    assert [hold.lock_id for hold in inventory.holds_of(2)] == ["b"]
    assert inventory.holds_of(3) == []


def test_next_expiry_is_the_earliest_hold_not_being_confirmed() -> None:
    inventory = Inventory(total=10)
    assert inventory.next_expiry() is None
    inventory.hold(1, 1, "late", now=0.0, ttl=30.0)
    inventory.hold(2, 1, "soon", now=5.0, ttl=10.0)
    assert inventory.next_expiry() == 15.0
    inventory.begin_confirm("soon", 2, now=6.0)  # its order is being written: it cannot expire
    assert inventory.next_expiry() == 30.0
    inventory.finish_confirm("soon")
    inventory.release("late", 1)
    assert inventory.next_expiry() is None


def test_an_aborted_confirm_gives_the_hold_back_as_it_was() -> None:
    inventory = Inventory(total=5)
    held = inventory.hold(1, 2, "a", now=0.0, ttl=30.0)
    with pytest.raises(HoldNotFound):
        inventory.abort_confirm("a")  # nothing is being written for it
    with pytest.raises(HoldNotFound):
        inventory.abort_confirm("missing")
    inventory.begin_confirm("a", 1, now=1.0)

    assert inventory.abort_confirm("a") == held
    assert inventory.get("a") == held and inventory.held == 2
    assert inventory.begin_confirm("a", 1, now=2.0).confirming  # it can be confirmed again


def _changes() -> list[tuple[str, Callable[[Inventory], object]]]:
    return [
        ("hold", lambda i: i.hold(1, 2, "a", now=0.0, ttl=30.0)),
        ("hold", lambda i: i.hold(2, 2, "b", now=0.0, ttl=5.0)),
        ("release", lambda i: i.release("b", 2)),
        ("begin_confirm", lambda i: i.begin_confirm("a", 1, now=1.0)),
        ("abort_confirm", lambda i: i.abort_confirm("a")),
        ("begin_confirm", lambda i: i.begin_confirm("a", 1, now=1.0)),
        ("finish_confirm", lambda i: i.finish_confirm("a")),
        ("give_back", lambda i: i.give_back(1)),
        ("begin_sale", lambda i: i.begin_sale(3, 1, "c", now=2.0)),
        ("finish_confirm", lambda i: i.finish_confirm("c")),
        ("give_back", lambda i: i.give_back(2)),
        ("hold", lambda i: i.hold(4, 1, "d", now=3.0, ttl=1.0)),
        ("expire_due", lambda i: i.expire_due(10.0)),
    ]


def test_every_change_moves_the_version_forward() -> None:
    """Followers drop a state whose version is not newer than one they have (a room never goes
    back in time), so a change that leaves the version behind would never be seen."""
    inventory = Inventory(total=10, sold=0, version=7)
    for name, change in _changes():
        before = inventory.version
        change(inventory)
        assert inventory.version > before, name


def test_releasing_part_of_a_hold_touches_no_other_hold() -> None:
    inventory = Inventory(total=10)
    soon = inventory.hold(1, 3, "soon", now=0.0, ttl=10.0)
    later = inventory.hold(1, 2, "later", now=0.0, ttl=20.0)

    assert inventory.release_quantity(1, 2) == [soon]  # the earliest expiry first, shrunk
    shrunk = inventory.get("soon")
    assert shrunk is not None and shrunk.quantity == 1
    assert inventory.get("later") == later
    assert inventory.held == 3


def test_a_lock_being_ordered_cannot_be_released() -> None:
    inventory = Inventory(total=5)
    inventory.hold(1, 2, "a", now=0.0, ttl=30.0)
    inventory.begin_confirm("a", 1, now=1.0)
    with pytest.raises(HoldNotFound, match=r"^This lock is being turned into an order$"):
        inventory.release("a", 1)
    assert inventory.held == 2


def test_restore_keeps_holds_that_fit_exactly_and_moves_the_version_on() -> None:
    holds = [
        Hold(lock_id="due", owner=3, quantity=1, expires_at=5.0),  # due at the restore: gone
        Hold(lock_id="a", owner=1, quantity=2, expires_at=10.0),
        Hold(lock_id="b", owner=2, quantity=2, expires_at=20.0, confirming=True),
        Hold(lock_id="sold", owner=2, quantity=1, expires_at=30.0),  # reached the ledger
    ]

    restored = Inventory.restore(
        total=5, sold=1, holds=holds, now=5.0, version=7, confirmed_lock_ids=frozenset({"sold"})
    )

    # "b" takes exactly the seats left after "a", and comes back as an ordinary hold.
    assert [(h.lock_id, h.confirming) for h in restored.holds()] == [("a", False), ("b", False)]
    assert (restored.sold, restored.held, restored.available) == (1, 4, 0)
    assert restored.version > 7
    # With nothing to bring back, the restored state is still newer than the snapshot's.
    assert Inventory.restore(total=5, sold=1, holds=[], now=5.0, version=7).version > 7


@pytest.mark.parametrize(("total", "sold"), [(-1, 0), (5, -1), (5, 6)])
def test_an_inconsistent_category_is_refused(total: int, sold: int) -> None:
    with pytest.raises(ValueError, match=rf"^inconsistent category: total={total} sold={sold}$"):
        Inventory(total=total, sold=sold)


def _refusals() -> list[tuple[Callable[[Inventory], object], type[Refusal], str]]:
    return [
        (
            lambda i: i.hold(1, 0, "z", now=0.0, ttl=9.0),
            BadQuantity,
            "Quantity must be a positive integer",
        ),
        (
            lambda i: i.hold(2, 1, "a", now=0.0, ttl=9.0),
            NotYourHold,
            "This lock belongs to another user",
        ),
        (
            lambda i: i.hold(1, 9, "z", now=0.0, ttl=9.0),
            NotEnoughSeats,
            "Only 2 tickets available, 9 requested",
        ),
        (lambda i: i.release("nope", 1), HoldNotFound, "Lock not found or already used"),
        (lambda i: i.release("a", 2), NotYourHold, "This lock belongs to another user"),
        (
            lambda i: i.release_quantity(1, 3),
            HoldNotFound,
            "You do not hold 3 tickets in this category",
        ),
        (lambda i: i.begin_confirm("a", 1, now=9.0), HoldExpired, "This lock has expired"),
        (
            lambda i: i.begin_confirm("c", 1, now=0.0),
            HoldNotFound,
            "This lock is already being turned into an order",
        ),
        (lambda i: i.finish_confirm("a"), HoldNotFound, "No order is being written for this lock"),
        (lambda i: i.abort_confirm("a"), HoldNotFound, "No order is being written for this lock"),
        (lambda i: i.give_back(2), BadQuantity, "Cannot return 2 seats, only 1 sold"),
    ]


@pytest.mark.parametrize(("command", "refusal", "message"), _refusals())
def test_each_refusal_says_why_and_changes_nothing(
    command: Callable[[Inventory], object], refusal: type[Refusal], message: str
) -> None:
    """The texts reach buyers as the `error` of a 4xx."""
    inventory = Inventory(total=6, sold=1)
    inventory.hold(1, 2, "a", now=0.0, ttl=9.0)
    inventory.hold(1, 1, "c", now=0.0, ttl=9.0)
    inventory.begin_confirm("c", 1, now=0.0)
    before = inventory.snapshot()

    with pytest.raises(refusal) as refused:
        command(inventory)

    assert str(refused.value) == message
    assert inventory.snapshot() == before
