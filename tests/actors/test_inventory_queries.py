"""The inventory's two queries the actor runs (which holds a buyer has, when the next one is
due), which the state machine of test_inventory.py never asks. (Found by `make mutate`.)"""

from __future__ import annotations

from actors.inventory import Inventory


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
