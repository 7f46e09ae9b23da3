"""The seat/hold state machine, without Ray: invariants under random operation sequences."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actors.inventory import Inventory
from actors.refusals import (
    BadQuantity,
    HoldExpired,
    HoldNotFound,
    NotEnoughSeats,
    NotYourHold,
    Refusal,
)

TTL = 30.0
OWNERS = st.integers(min_value=1, max_value=4)
QUANTITIES = st.integers(min_value=-2, max_value=8)


class InventoryMachine(RuleBasedStateMachine):
    """Drives one category from several owners and checks invariants 1-3 after every step.

    The model is deliberately dumb: a dict of holds and a list of confirmed orders,
    against which the real state machine is compared.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000.0
        self.counter = 0
        self.inventory = Inventory(total=0)
        self.model_holds: dict[str, tuple[int, int, float]] = {}  # lock -> owner, qty, expiry
        self.confirming: set[str] = set()
        self.orders: list[tuple[int, int]] = []  # owner, qty of every confirmed order

    @initialize(total=st.integers(min_value=0, max_value=20))
    def start(self, total: int) -> None:
        self.inventory = Inventory(total=total)
        self.total = total

    def _lock_id(self) -> str:
        self.counter += 1
        return f"lock-{self.counter}"

    def _model_held(self) -> int:
        return sum(qty for _, qty, _ in self.model_holds.values())

    def _sold(self) -> int:
        return sum(qty for _, qty in self.orders)

    @rule(owner=OWNERS, quantity=QUANTITIES)
    def hold(self, owner: int, quantity: int) -> None:
        lock_id = self._lock_id()
        free = self.total - self._sold() - self._model_held()
        try:
            hold = self.inventory.hold(owner, quantity, lock_id, self.now, TTL)
        except BadQuantity:
            assert quantity <= 0
            return
        except NotEnoughSeats:
            assert quantity > free
            return
        assert 0 < quantity <= free
        assert (hold.owner, hold.quantity) == (owner, quantity)
        self.model_holds[lock_id] = (owner, quantity, self.now + TTL)

    @precondition(lambda self: bool(self.model_holds))
    @rule(data=st.data(), claimant=OWNERS)
    def release(self, data: st.DataObject, claimant: int) -> None:
        lock_id = data.draw(st.sampled_from(sorted(self.model_holds)))
        owner, _, _ = self.model_holds[lock_id]
        try:
            self.inventory.release(lock_id, claimant)
        except NotYourHold:
            assert claimant != owner
            return
        except HoldNotFound:
            assert lock_id in self.confirming
            return
        assert claimant == owner and lock_id not in self.confirming
        del self.model_holds[lock_id]

    @rule(owner=OWNERS, quantity=st.integers(min_value=1, max_value=6))
    def release_quantity(self, owner: int, quantity: int) -> None:
        mine = {
            lock: qty
            for lock, (who, qty, _) in self.model_holds.items()
            if who == owner and lock not in self.confirming
        }
        before = self.inventory.held
        try:
            self.inventory.release_quantity(owner, quantity)
        except HoldNotFound:
            assert sum(mine.values()) < quantity
            return
        assert self.inventory.held == before - quantity
        # Re-read the owner's holds from the real machine: shrinking is its business.
        for lock in mine:
            hold = self.inventory.get(lock)
            if hold is None:
                del self.model_holds[lock]
            else:
                self.model_holds[lock] = (owner, hold.quantity, hold.expires_at)

    @precondition(lambda self: bool(self.model_holds))
    @rule(data=st.data(), claimant=OWNERS)
    def begin_confirm(self, data: st.DataObject, claimant: int) -> None:
        lock_id = data.draw(st.sampled_from(sorted(self.model_holds)))
        owner, _, expiry = self.model_holds[lock_id]
        try:
            self.inventory.begin_confirm(lock_id, claimant, self.now)
        except NotYourHold:
            assert claimant != owner
            return
        except HoldExpired:
            assert expiry <= self.now and lock_id not in self.confirming
            return
        except HoldNotFound:
            assert lock_id in self.confirming
            return
        assert claimant == owner and expiry > self.now and lock_id not in self.confirming
        self.confirming.add(lock_id)

    @precondition(lambda self: bool(self.confirming))
    @rule(data=st.data(), committed=st.booleans())
    def settle_confirm(self, data: st.DataObject, committed: bool) -> None:
        """The ledger write finished: seats become sold, or the hold is back as it was."""
        lock_id = data.draw(st.sampled_from(sorted(self.confirming)))
        self.confirming.discard(lock_id)
        owner, qty, _ = self.model_holds[lock_id]
        if committed:
            self.inventory.finish_confirm(lock_id)
            del self.model_holds[lock_id]
            self.orders.append((owner, qty))
        else:
            self.inventory.abort_confirm(lock_id)

    @rule(owner=OWNERS, quantity=QUANTITIES)
    def buy(self, owner: int, quantity: int) -> None:
        lock_id = self._lock_id()
        free = self.total - self._sold() - self._model_held()
        try:
            self.inventory.begin_sale(owner, quantity, lock_id, self.now)
        except BadQuantity:
            assert quantity <= 0
            return
        except NotEnoughSeats:
            assert quantity > free
            return
        # Seats stay held while the order is being written, then become sold.
        assert self.inventory.held == self._model_held() + quantity
        self.inventory.finish_confirm(lock_id)
        self.orders.append((owner, quantity))

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(self.orders) - 1))
        _, qty = self.orders.pop(index)
        self.inventory.give_back(qty)

    @rule(seconds=st.floats(min_value=0, max_value=40))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        expired = self.inventory.expire_due(self.now)
        gone = {
            lock
            for lock, (_, _, expiry) in self.model_holds.items()
            if expiry <= self.now and lock not in self.confirming
        }
        assert {h.lock_id for h in expired} == gone
        for lock in gone:
            del self.model_holds[lock]

    @rule()
    def restart(self) -> None:
        """A crash: rebuilt from the ledger's sold count and a snapshot of its holds."""
        snapshot = self.inventory.snapshot()
        self.inventory = Inventory.restore(
            total=self.total, sold=self._sold(), holds=snapshot.holds, now=self.now
        )
        self.confirming.clear()
        for lock in list(self.model_holds):
            if self.inventory.get(lock) is None:
                del self.model_holds[lock]

    @invariant()
    def seats_add_up(self) -> None:
        inv = self.inventory
        assert inv.available + inv.held + inv.sold == inv.total == self.total
        assert inv.available >= 0 and inv.held >= 0 and inv.sold >= 0

    @invariant()
    def never_oversold(self) -> None:
        assert self._sold() == self.inventory.sold <= self.total

    @invariant()
    def holds_match_model(self) -> None:
        real = {h.lock_id: (h.owner, h.quantity) for h in self.inventory.holds()}
        assert real == {lock: (o, q) for lock, (o, q, _) in self.model_holds.items()}
        assert {h.lock_id for h in self.inventory.holds() if h.confirming} == self.confirming


TestInventoryMachine = InventoryMachine.TestCase
TestInventoryMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_hold_is_idempotent_on_lock_id() -> None:
    inventory = Inventory(total=5)
    first = inventory.hold(1, 2, "l1", now=0.0, ttl=10.0)
    again = inventory.hold(1, 2, "l1", now=5.0, ttl=10.0)
    assert again == first
    assert inventory.held == 2
    with pytest.raises(NotYourHold):
        inventory.hold(2, 2, "l1", now=5.0, ttl=10.0)


def test_a_hold_cannot_be_confirmed_twice_or_released_while_confirming() -> None:
    inventory = Inventory(total=3)
    inventory.hold(1, 3, "l1", now=0.0, ttl=10.0)
    inventory.begin_confirm("l1", 1, now=1.0)
    with pytest.raises(HoldNotFound):
        inventory.begin_confirm("l1", 1, now=1.0)
    with pytest.raises(HoldNotFound):
        inventory.release("l1", 1)
    # A hold being confirmed does not expire under the writer's feet.
    assert inventory.expire_due(now=100.0) == []
    inventory.finish_confirm("l1")
    assert (inventory.sold, inventory.held, inventory.available) == (3, 0, 0)
    with pytest.raises(HoldNotFound):
        inventory.begin_confirm("l1", 1, now=1.0)


def test_expired_hold_is_refused_then_dropped() -> None:
    inventory = Inventory(total=2)
    inventory.hold(1, 2, "l1", now=0.0, ttl=10.0)
    with pytest.raises(HoldExpired):
        inventory.begin_confirm("l1", 1, now=10.0)
    assert [h.lock_id for h in inventory.expire_due(now=10.0)] == ["l1"]
    assert inventory.available == 2


def test_release_quantity_shrinks_the_last_hold() -> None:
    inventory = Inventory(total=10)
    inventory.hold(1, 3, "a", now=0.0, ttl=10.0)
    inventory.hold(1, 4, "b", now=1.0, ttl=10.0)
    inventory.hold(2, 2, "c", now=0.0, ttl=10.0)
    inventory.release_quantity(1, 5)
    assert inventory.get("a") is None
    remaining = inventory.get("b")
    assert remaining is not None and remaining.quantity == 2
    assert inventory.held == 4
    with pytest.raises(HoldNotFound):
        inventory.release_quantity(1, 3)


def test_restore_drops_expired_and_already_ordered_holds() -> None:
    inventory = Inventory(total=10)
    inventory.hold(1, 2, "live", now=0.0, ttl=100.0)
    inventory.hold(1, 2, "old", now=0.0, ttl=5.0)
    inventory.hold(2, 3, "ordered", now=0.0, ttl=100.0)
    inventory.begin_confirm("ordered", 2, now=1.0)
    snapshot = inventory.snapshot()
    restored = Inventory.restore(
        total=10,
        sold=3,
        holds=snapshot.holds,
        now=50.0,
        confirmed_lock_ids=frozenset({"ordered"}),
    )
    assert [h.lock_id for h in restored.holds()] == ["live"]
    assert (restored.sold, restored.held, restored.available) == (3, 2, 5)


def test_restore_never_overfills_when_the_ledger_sold_more() -> None:
    holds = Inventory(total=4)
    holds.hold(1, 2, "a", now=0.0, ttl=10.0)
    holds.hold(2, 2, "b", now=0.0, ttl=20.0)
    restored = Inventory.restore(total=4, sold=3, holds=holds.snapshot().holds, now=1.0)
    assert restored.available + restored.held + restored.sold == 4
    assert restored.held == 0


@pytest.mark.parametrize("quantity", [0, -1, True, 2.5])
def test_bad_quantities_are_refused_without_change(quantity: object) -> None:
    inventory = Inventory(total=5)
    with pytest.raises(Refusal) as refused:
        inventory.hold(1, quantity, "x", now=0.0, ttl=1.0)  # type: ignore[arg-type]
    assert isinstance(refused.value, BadQuantity)
    assert (inventory.available, inventory.version) == (5, 0)


def test_give_back_cannot_return_more_than_sold() -> None:
    inventory = Inventory(total=5, sold=2)
    with pytest.raises(BadQuantity):
        inventory.give_back(3)
    inventory.give_back(2)
    assert inventory.available == 5
