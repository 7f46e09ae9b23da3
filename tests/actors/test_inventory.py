"""The seat/hold state machine, without Ray: invariants under random operation sequences."""

from __future__ import annotations

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actors.inventory import Inventory, SaleRules, WaitEntry
from actors.refusals import (
    AlreadyWaiting,
    BadQuantity,
    HoldExpired,
    HoldNotFound,
    LimitReached,
    NotEnoughSeats,
    NotWaiting,
    NotYourHold,
    Refusal,
    ReholdTooSoon,
    SalesClosed,
    SalesNotOpen,
    SeatsAvailable,
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

    @invariant()
    def indexes_match_model(self) -> None:
        """Each owner's holds and seats held, and the next expiry, as a scan would find them."""
        inv = self.inventory
        for owner in {o for o, _, _ in self.model_holds.values()} | {1, 2, 3}:
            mine = {lock: q for lock, (o, q, _) in self.model_holds.items() if o == owner}
            assert inv.held_by(owner) == sum(mine.values())
            assert {h.lock_id: h.quantity for h in inv.holds_of(owner)} == mine
        pending = [e for lock, (_, _, e) in self.model_holds.items() if lock not in self.confirming]
        assert inv.next_expiry() == min(pending, default=None)


TestInventoryMachine = InventoryMachine.TestCase
TestInventoryMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


OPENS, CLOSES = 1_005.0, 1_080.0
FAIR_QUANTITIES = st.integers(min_value=-1, max_value=4)
OFFER_TTL = 20.0


class FairSaleMachine(RuleBasedStateMachine):
    """The same category with a sales window, a per-buyer limit, a re-hold cool-down and a
    waiting list. After every step: seats balance, nobody exceeds the limit, nothing is sold
    or held outside the window, no hold goes to a buyer who is not waiting while someone
    waits, and offers go strictly in the order buyers joined."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000.0
        self.counter = 0
        self.inventory = Inventory(total=0)
        self.limit: int | None = None

        self.line: list[WaitEntry] = []  # the model of the waiting list, in join order
        self.orders: list[tuple[int, int]] = []  # owner, qty of non-cancelled orders
        self.offered: list[int] = []  # entry ids in the order they were offered

    @initialize(
        total=st.integers(min_value=1, max_value=6),
        limit=st.none() | st.integers(min_value=1, max_value=6),
        cooldown=st.sampled_from([0.0, 15.0]),
    )
    def start(self, total: int, limit: int | None, cooldown: float) -> None:
        self.inventory = Inventory(total=total)
        self.inventory.configure(
            SaleRules(opens_at=OPENS, closes_at=CLOSES, max_per_user=limit),
            rehold_cooldown=cooldown,
        )
        self.limit = limit

    def _lock_id(self) -> str:
        self.counter += 1
        return f"lock-{self.counter}"

    def _in_window(self) -> bool:
        return OPENS <= self.now < CLOSES

    def _serve(self) -> None:
        """What the desk does after every step: free seats go to the head of the line."""
        served = self.inventory.serve_waiting(
            self.now, OFFER_TTL, lambda entry: f"offer-{entry.entry_id}"
        )
        consumed = list(served.consumed)
        # FIFO: whatever left the list is exactly its head, in order.
        assert consumed == self.line[: len(consumed)]
        del self.line[: len(consumed)]
        for offer in served.offers:
            entry = next(e for e in consumed if f"offer-{e.entry_id}" == offer.lock_id)
            assert offer.owner == entry.owner and offer.quantity == entry.quantity and offer.offer
            self.offered.append(entry.entry_id)

    def _placed_generally(self, owner: int, quantity: int, lock_id: str, sale: bool) -> None:
        waiting_before = bool(self.inventory.waiting)
        try:
            if sale:
                self.inventory.begin_sale(owner, quantity, lock_id, self.now)
            else:
                self.inventory.hold(owner, quantity, lock_id, self.now, TTL)
        except BadQuantity:
            assert quantity <= 0
        except (SalesNotOpen, SalesClosed):
            assert not self._in_window()
        except NotEnoughSeats:
            assert waiting_before or quantity > self.inventory.free
        except (LimitReached, ReholdTooSoon):
            pass
        else:
            # Nothing held outside the window, and never ahead of someone waiting.
            assert self._in_window() and not waiting_before
            if sale:
                self.inventory.finish_confirm(lock_id)
                self.orders.append((owner, quantity))
        self._serve()

    @rule(owner=OWNERS, quantity=FAIR_QUANTITIES)
    def hold(self, owner: int, quantity: int) -> None:
        self._placed_generally(owner, quantity, self._lock_id(), sale=False)

    @rule(joiners=st.lists(OWNERS, min_size=1, max_size=4))
    def rush(self, joiners: list[int]) -> None:
        """A crowd holds whatever is on sale, then the late ones queue: lines form."""
        for owner in range(5, 5 + self.inventory.total):
            quantity = min(self.inventory.available, self.limit or self.inventory.available)
            if quantity > 0:
                self._placed_generally(owner, quantity, self._lock_id(), sale=False)
        for owner in joiners:
            self.join(owner, 1)

    @rule(owner=OWNERS, quantity=FAIR_QUANTITIES)
    def buy(self, owner: int, quantity: int) -> None:
        self._placed_generally(owner, quantity, self._lock_id(), sale=True)

    @precondition(lambda self: bool(self.inventory.holds()))
    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        hold = data.draw(st.sampled_from(sorted(self.inventory.holds(), key=lambda h: h.lock_id)))
        try:
            self.inventory.begin_confirm(hold.lock_id, hold.owner, self.now)
        except HoldExpired:
            assert hold.expires_at <= self.now
            return
        except (SalesNotOpen, SalesClosed):
            assert not self._in_window()
            return
        assert self._in_window()
        self.inventory.finish_confirm(hold.lock_id)
        self.orders.append((hold.owner, hold.quantity))
        self._serve()

    @precondition(lambda self: bool(self.inventory.holds()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold = data.draw(st.sampled_from(sorted(self.inventory.holds(), key=lambda h: h.lock_id)))
        self.inventory.release(hold.lock_id, hold.owner)
        self._serve()

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(self.orders) - 1))
        owner, qty = self.orders.pop(index)
        self.inventory.give_back(qty, owner)
        self._serve()

    @rule(owner=OWNERS, quantity=st.integers(min_value=1, max_value=3))
    def join(self, owner: int, quantity: int) -> None:
        self.counter += 1
        entry = WaitEntry(self.counter, owner, quantity)
        try:
            self.inventory.join(entry, self.now)
        except AlreadyWaiting:
            assert any(e.owner == owner for e in self.line)
            return
        except SeatsAvailable:
            assert not self.line and self.inventory.free > 0
            return
        except (SalesNotOpen, SalesClosed):
            assert not self._in_window()
            return
        except (NotEnoughSeats, LimitReached):
            return
        assert self._in_window() and self.inventory.available == 0
        self.line.append(entry)
        event(f"line of {min(len(self.line), 3)}")
        self._serve()

    @rule(owner=OWNERS)
    def leave(self, owner: int) -> None:
        try:
            entry = self.inventory.leave(owner)
        except NotWaiting:
            assert all(e.owner != owner for e in self.line)
            return
        self.line.remove(entry)
        self._serve()

    @rule(seconds=st.floats(min_value=0, max_value=12))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.inventory.expire_due(self.now)
        self._serve()

    @invariant()
    def seats_add_up(self) -> None:
        inv = self.inventory
        assert inv.available + inv.set_aside + inv.held + inv.sold == inv.total
        assert min(inv.available, inv.set_aside, inv.held, inv.sold) >= 0
        assert inv.sold == sum(qty for _, qty in self.orders)

    @invariant()
    def nobody_above_the_limit(self) -> None:
        if self.limit is None:
            return
        for owner in {h.owner for h in self.inventory.holds()} | {o for o, _ in self.orders}:
            bought = sum(qty for o, qty in self.orders if o == owner)
            assert self.inventory.held_by(owner) + bought <= self.limit

    @invariant()
    def waiting_means_nothing_on_sale(self) -> None:
        assert self.inventory.waiting == self.line
        if self.line:
            assert self.inventory.available == 0

    @invariant()
    def offers_in_join_order(self) -> None:
        assert self.offered == sorted(self.offered)


TestFairSaleMachine = FairSaleMachine.TestCase
TestFairSaleMachine.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)


def test_a_window_refuses_before_and_after_with_the_instant() -> None:
    inventory = Inventory(total=5)
    inventory.configure(SaleRules(opens_at=1_000.0, closes_at=2_000.0))
    with pytest.raises(SalesNotOpen, match="Sales open at 1970-01-01T00:16:40Z"):
        inventory.hold(1, 1, "a", 999.999, TTL)
    inventory.hold(1, 1, "a", 1_000.0, TTL)
    with pytest.raises(SalesClosed, match="Sales closed at"):
        inventory.begin_sale(2, 1, "b", 2_000.0)
    inventory.hold(2, 1, "c", 1_999.0, TTL)
    with pytest.raises(SalesClosed):  # a hold made in time is no order after the close
        inventory.begin_confirm("c", 2, 2_000.0)
    assert inventory.held == 2 and inventory.sold == 0


def test_newer_rules_replace_older_never_the_reverse() -> None:
    inventory = Inventory(total=5)
    inventory.configure(SaleRules(opens_at=1_000.0, stamp=10.0))
    inventory.adopt(SaleRules(opens_at=None, stamp=5.0))  # a stale catalogue elsewhere
    with pytest.raises(SalesNotOpen):
        inventory.hold(1, 1, "a", 500.0, TTL)
    inventory.adopt(SaleRules(opens_at=None, stamp=11.0))
    inventory.hold(1, 1, "a", 500.0, TTL)


def test_the_limit_counts_holds_and_bought_seats() -> None:
    inventory = Inventory(total=10, sold=2)
    inventory.configure(SaleRules(max_per_user=3), bought={1: 2})
    with pytest.raises(LimitReached, match="Limit of 3 tickets per customer reached"):
        inventory.hold(1, 2, "a", 0.0, TTL)
    inventory.hold(1, 1, "a", 0.0, TTL)
    with pytest.raises(LimitReached):
        inventory.begin_sale(1, 1, "b", 0.0)
    inventory.give_back(2, owner=1)  # their order was cancelled: room again
    inventory.begin_sale(1, 2, "b", 0.0)


def test_rehold_cool_down_after_an_expiry() -> None:
    inventory = Inventory(total=10)
    inventory.configure(SaleRules(), rehold_cooldown=60.0)
    inventory.hold(1, 1, "a", 0.0, TTL)
    inventory.expire_due(TTL)
    with pytest.raises(ReholdTooSoon):
        inventory.hold(1, 1, "b", TTL + 59.0, TTL)
    inventory.hold(2, 1, "c", TTL + 1.0, TTL)  # only the one who let it expire waits
    inventory.hold(1, 1, "b", TTL + 60.0, TTL)


def test_freed_seats_go_to_the_head_of_the_line_in_order() -> None:
    inventory = Inventory(total=2)
    inventory.hold(9, 2, "a", 0.0, TTL)
    assert inventory.join(WaitEntry(1, owner=1, quantity=1), 0.0) == 1
    assert inventory.join(WaitEntry(2, owner=2, quantity=1), 0.0) == 2
    inventory.release_quantity(9, 1)
    with pytest.raises(NotEnoughSeats):
        inventory.hold(3, 1, "b", 0.0, TTL)  # the freed seat is not on general sale
    served = inventory.serve_waiting(0.0, OFFER_TTL, lambda e: f"offer-{e.entry_id}")
    assert [(h.owner, h.lock_id, h.offer) for h in served.offers] == [(1, "offer-1", True)]
    inventory.expire_due(OFFER_TTL)  # the offer lapses: the seat passes on
    served = inventory.serve_waiting(OFFER_TTL, OFFER_TTL, lambda e: f"offer-{e.entry_id}")
    assert [h.owner for h in served.offers] == [2]
    assert inventory.waiting == [] and inventory.available == 0


def test_joining_needs_a_sold_out_category_and_only_once() -> None:
    inventory = Inventory(total=2)
    with pytest.raises(SeatsAvailable):
        inventory.join(WaitEntry(1, owner=1, quantity=1), 0.0)
    inventory.hold(9, 2, "a", 0.0, TTL)
    inventory.join(WaitEntry(1, owner=1, quantity=1), 0.0)
    with pytest.raises(AlreadyWaiting):
        inventory.join(WaitEntry(2, owner=1, quantity=1), 0.0)
    with pytest.raises(NotEnoughSeats):
        inventory.join(WaitEntry(3, owner=2, quantity=3), 0.0)  # more than the category has
    assert [e.entry_id for e in inventory.waiting] == [1]


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
