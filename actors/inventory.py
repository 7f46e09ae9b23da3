"""The seat and hold state machine of one ticket category: plain Python, no I/O, no Ray.

Every operation is synchronous and takes the clock as an argument, so a caller can never
interleave an await between checking seat state and changing it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from actors.refusals import (
    BadQuantity,
    HoldExpired,
    HoldNotFound,
    NotEnoughSeats,
    NotYourHold,
)


@dataclass(frozen=True, slots=True)
class Hold:
    lock_id: str
    owner: int
    quantity: int
    expires_at: float
    # True while its order is being committed: it can neither expire nor be released.
    confirming: bool = False


@dataclass(frozen=True, slots=True)
class InventorySnapshot:
    total: int
    sold: int
    holds: tuple[Hold, ...]
    version: int


class Inventory:
    """Seats of one category: `available + held + sold == total`, each never negative."""

    def __init__(self, total: int, sold: int = 0, version: int = 0) -> None:
        if total < 0 or sold < 0 or sold > total:
            raise ValueError(f"inconsistent category: total={total} sold={sold}")
        self.total = total
        self.sold = sold
        self.version = version
        self._holds: dict[str, Hold] = {}
        self._held = 0

    # -- reading -------------------------------------------------------------------------

    @property
    def held(self) -> int:
        return self._held

    @property
    def available(self) -> int:
        return self.total - self.sold - self._held

    def get(self, lock_id: str) -> Hold | None:
        return self._holds.get(lock_id)

    def holds(self) -> list[Hold]:
        return list(self._holds.values())

    def check_owner(self, lock_id: str, owner: int) -> None:
        """Refuse anyone but the owner of `lock_id`, if it exists (whatever its state)."""
        hold = self._holds.get(lock_id)
        if hold is not None and hold.owner != owner:
            raise NotYourHold("This lock belongs to another user")

    def holds_of(self, owner: int) -> list[Hold]:
        return [hold for hold in self._holds.values() if hold.owner == owner]

    def next_expiry(self) -> float | None:
        pending = [h.expires_at for h in self._holds.values() if not h.confirming]
        return min(pending, default=None)

    # -- commands ------------------------------------------------------------------------

    def hold(self, owner: int, quantity: int, lock_id: str, now: float, ttl: float) -> Hold:
        """Set `quantity` seats aside for `owner` until `now + ttl`.

        Idempotent on `lock_id`: a replay by the same owner returns the existing hold.
        """
        return self._place(owner, quantity, lock_id, expires_at=now + ttl, confirming=False)

    def release(self, lock_id: str, owner: int) -> Hold:
        """Give the seats of one of `owner`'s holds back."""
        hold = self._owned(lock_id, owner)
        if hold.confirming:
            raise HoldNotFound("This lock is being turned into an order")
        self._remove(hold)
        return hold

    def release_quantity(self, owner: int, quantity: int) -> list[Hold]:
        """Give back `quantity` seats from `owner`'s holds, oldest expiry first.

        A hold larger than what is left to release is shrunk, not dropped. Returns the
        holds as they were before the change.
        """
        _check_quantity(quantity)
        candidates = sorted(
            (h for h in self._holds.values() if h.owner == owner and not h.confirming),
            key=lambda h: h.expires_at,
        )
        if sum(h.quantity for h in candidates) < quantity:
            raise HoldNotFound(f"You do not hold {quantity} tickets in this category")
        touched: list[Hold] = []
        remaining = quantity
        for hold in candidates:
            if remaining == 0:
                break
            touched.append(hold)
            if hold.quantity <= remaining:
                self._remove(hold)
                remaining -= hold.quantity
            else:
                self._replace(hold, replace(hold, quantity=hold.quantity - remaining))
                remaining = 0
        return touched

    def begin_confirm(self, lock_id: str, owner: int, now: float) -> Hold:
        """Reserve a hold for its order while the order is written; seats stay held."""
        hold = self._owned(lock_id, owner)
        if hold.confirming:
            raise HoldNotFound("This lock is already being turned into an order")
        if hold.expires_at <= now:
            raise HoldExpired("This lock has expired")
        confirming = replace(hold, confirming=True)
        self._replace(hold, confirming)
        return confirming

    def finish_confirm(self, lock_id: str) -> Hold:
        """The order is durable: the held seats become sold."""
        hold = self._holds.get(lock_id)
        if hold is None or not hold.confirming:
            raise HoldNotFound("No order is being written for this lock")
        self._remove(hold)
        self.sold += hold.quantity
        return hold

    def abort_confirm(self, lock_id: str) -> Hold:
        """The order could not be written: the hold is back as it was."""
        hold = self._holds.get(lock_id)
        if hold is None or not hold.confirming:
            raise HoldNotFound("No order is being written for this lock")
        restored = replace(hold, confirming=False)
        self._replace(hold, restored)
        return restored

    def begin_sale(self, owner: int, quantity: int, lock_id: str, now: float) -> Hold:
        """A purchase without a prior lock: a hold born already confirming."""
        return self._place(owner, quantity, lock_id, expires_at=now, confirming=True)

    def give_back(self, quantity: int) -> None:
        """Sold seats return to sale (an order was cancelled in the ledger)."""
        _check_quantity(quantity)
        if quantity > self.sold:
            raise BadQuantity(f"Cannot return {quantity} seats, only {self.sold} sold")
        self.sold -= quantity
        self.version += 1

    def expire_due(self, now: float) -> list[Hold]:
        """Drop every hold whose time is up; holds being confirmed are left alone."""
        due = [h for h in self._holds.values() if h.expires_at <= now and not h.confirming]
        for hold in due:
            self._remove(hold)
        return due

    # -- snapshot ------------------------------------------------------------------------

    def snapshot(self) -> InventorySnapshot:
        return InventorySnapshot(
            total=self.total,
            sold=self.sold,
            holds=tuple(self._holds.values()),
            version=self.version,
        )

    @classmethod
    def restore(
        cls,
        total: int,
        sold: int,
        holds: tuple[Hold, ...] | list[Hold],
        now: float,
        version: int = 0,
        confirmed_lock_ids: frozenset[str] = frozenset(),
    ) -> Inventory:
        """Rebuild from the ledger's `sold` and a snapshot's holds.

        Expired holds and holds whose order already reached the ledger are dropped; a
        hold that was mid-confirmation comes back as an ordinary hold. Holds that no
        longer fit (the ledger sold them meanwhile) are dropped latest-expiry first.
        """
        inventory = cls(total=total, sold=sold, version=version)
        live = sorted(
            (h for h in holds if h.expires_at > now and h.lock_id not in confirmed_lock_ids),
            key=lambda h: h.expires_at,
        )
        for hold in live:
            if hold.quantity <= inventory.available:
                inventory._add(replace(hold, confirming=False))
        inventory.version += 1
        return inventory

    # -- internals -----------------------------------------------------------------------

    def _place(
        self, owner: int, quantity: int, lock_id: str, expires_at: float, confirming: bool
    ) -> Hold:
        existing = self._holds.get(lock_id)
        if existing is not None:
            self.check_owner(lock_id, owner)
            return existing
        _check_quantity(quantity)
        if quantity > self.available:
            raise NotEnoughSeats(f"Only {self.available} tickets available, {quantity} requested")
        hold = Hold(lock_id, owner, quantity, expires_at, confirming)
        self._add(hold)
        return hold

    def _owned(self, lock_id: str, owner: int) -> Hold:
        hold = self._holds.get(lock_id)
        if hold is None:
            raise HoldNotFound("Lock not found or already used")
        self.check_owner(lock_id, owner)
        return hold

    def _add(self, hold: Hold) -> None:
        self._holds[hold.lock_id] = hold
        self._held += hold.quantity
        self.version += 1

    def _remove(self, hold: Hold) -> None:
        del self._holds[hold.lock_id]
        self._held -= hold.quantity
        self.version += 1

    def _replace(self, old: Hold, new: Hold) -> None:
        self._holds[new.lock_id] = new
        self._held += new.quantity - old.quantity
        self.version += 1


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise BadQuantity("Quantity must be a positive integer")
