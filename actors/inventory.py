"""The seat and hold state machine of one ticket category: plain Python, no I/O, no Ray.

Every operation is synchronous and takes the clock as an argument, so a caller can never
interleave an await between checking seat state and changing it.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from actors.refusals import (
    AlreadyWaiting,
    BadQuantity,
    HoldExpired,
    HoldNotFound,
    LimitReached,
    NotEnoughSeats,
    NotWaiting,
    NotYourHold,
    ReholdTooSoon,
    SalesClosed,
    SalesNotOpen,
    SeatsAvailable,
)
from persistence.pickling import compact


@dataclass(frozen=True, slots=True)
class Hold:
    lock_id: str
    owner: int
    quantity: int
    expires_at: float
    # True while its order is being committed: it can neither expire nor be released.
    confirming: bool = False
    # Made for the head of the waiting list, not asked for by a request.
    offer: bool = False


@compact
@dataclass(frozen=True, slots=True)
class SaleRules:
    """A category's sales window (epoch seconds, the stricter of event and category) and its
    per-buyer limit. `stamp` orders versions of the rules (the event's `updated_at`): a
    command carrying older rules than the category already knows cannot loosen them."""

    opens_at: float | None = None
    closes_at: float | None = None
    max_per_user: int | None = None
    stamp: float = 0.0

    @classmethod
    def stricter(
        cls,
        event_window: tuple[float | None, float | None],
        category_window: tuple[float | None, float | None],
        max_per_user: int | None,
        stamp: float,
    ) -> SaleRules:
        """The later opening and the earlier closing of the two windows."""
        opens = [t for t in (event_window[0], category_window[0]) if t is not None]
        closes = [t for t in (event_window[1], category_window[1]) if t is not None]
        return cls(
            opens_at=max(opens) if opens else None,
            closes_at=min(closes) if closes else None,
            max_per_user=max_per_user,
            stamp=stamp,
        )


@dataclass(frozen=True, slots=True, order=True)
class WaitEntry:
    """One buyer on a category's waiting list; `entry_id` (the ledger's row id) is its place."""

    entry_id: int
    owner: int = field(compare=False)
    quantity: int = field(compare=False)


@dataclass(frozen=True, slots=True)
class Served:
    """What serving the waiting list did: offers made, and entries that left the list (offered
    or dropped because they can no longer be served)."""

    offers: tuple[Hold, ...] = ()
    consumed: tuple[WaitEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class InventorySnapshot:
    total: int
    sold: int
    holds: tuple[Hold, ...]
    version: int


class Inventory:
    """Seats of one category: `free + held + sold == total`, each never negative.

    While anyone waits, free seats are set aside for the waiting list (`available` is 0):
    they go to the head of the list as offers, never back to general sale.
    """

    def __init__(self, total: int, sold: int = 0, version: int = 0) -> None:
        if total < 0 or sold < 0 or sold > total:
            raise ValueError(f"inconsistent category: total={total} sold={sold}")
        self.total = total
        self.sold = sold
        self.version = version
        self._holds: dict[str, Hold] = {}
        self._held = 0
        # Indexes over `_holds`, kept by `_add`, `_remove` and `_replace` alone. Each owner's
        # holds and seats held: the per-buyer limit reads them on every hold, and a scan of
        # every live hold there made a category with `maxPerUser` 0.70x as fast under load.
        # The expiries as a heap: the housekeeper asks for the next one on every wake, and
        # a hot category has one due every few milliseconds. An entry whose hold is gone,
        # changed or being confirmed is stale, and skipped when it reaches the top.
        self._by_owner: dict[int, dict[str, Hold]] = {}
        self._held_by: dict[int, int] = {}
        self._expiries: list[tuple[float, str]] = []
        self.rules = SaleRules()
        self.rehold_cooldown = 0.0
        self._bought: dict[int, int] = {}  # owner -> seats in non-cancelled orders
        self._expired_at: dict[int, float] = {}  # owner -> when their last hold expired
        self._waiting: list[WaitEntry] = []

    # -- reading -------------------------------------------------------------------------

    @property
    def held(self) -> int:
        return self._held

    @property
    def hold_count(self) -> int:
        """Live holds (not seats): what a snapshot writes."""
        return len(self._holds)

    @property
    def free(self) -> int:
        """Seats neither held nor sold: on sale, or set aside for the waiting list."""
        return self.total - self.sold - self._held

    @property
    def available(self) -> int:
        """Seats on general sale."""
        return 0 if self._waiting else self.free

    @property
    def set_aside(self) -> int:
        return self.free - self.available

    @property
    def waiting(self) -> list[WaitEntry]:
        return list(self._waiting)

    def bought_by(self, owner: int) -> int:
        return self._bought.get(owner, 0)

    def held_by(self, owner: int) -> int:
        return self._held_by.get(owner, 0)

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
        return list(self._by_owner.get(owner, {}).values())

    def next_expiry(self) -> float | None:
        """When the next hold that can expire does (holds being confirmed cannot)."""
        heap = self._expiries
        while heap and not self._expires_as(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # -- commands ------------------------------------------------------------------------

    def configure(
        self,
        rules: SaleRules,
        *,
        bought: Mapping[int, int] | None = None,
        waiting: Iterable[WaitEntry] | None = None,
        rehold_cooldown: float | None = None,
    ) -> None:
        """The category's rules, and at activation what the ledger knows of its buyers."""
        self.rules = rules
        if bought is not None:
            self._bought = {owner: qty for owner, qty in bought.items() if qty > 0}
        if waiting is not None:
            self._waiting = sorted(waiting)
            self.version += 1
        if rehold_cooldown is not None:
            self.rehold_cooldown = rehold_cooldown

    def adopt(self, rules: SaleRules | None) -> None:
        """Rules a command carries replace ours only if they are newer (a stale catalogue
        elsewhere can never loosen them)."""
        if rules is not None and rules.stamp > self.rules.stamp:
            self.rules = rules

    def check_window(self, now: float) -> None:
        rules = self.rules
        if rules.opens_at is not None and now < rules.opens_at:
            raise SalesNotOpen(f"Sales open at {_iso(rules.opens_at)}")
        if rules.closes_at is not None and now >= rules.closes_at:
            raise SalesClosed(f"Sales closed at {_iso(rules.closes_at)}")

    def check_limit(self, owner: int, quantity: int) -> None:
        limit = self.rules.max_per_user
        if limit is not None and self.held_by(owner) + self.bought_by(owner) + quantity > limit:
            raise LimitReached(f"Limit of {limit} tickets per customer reached")

    def hold(self, owner: int, quantity: int, lock_id: str, now: float, ttl: float) -> Hold:
        """Set `quantity` seats aside for `owner` until `now + ttl`.

        Idempotent on `lock_id`: a replay by the same owner returns the existing hold.
        """
        existing = self._holds.get(lock_id)
        if existing is None:
            self._check_sale(owner, quantity, now)
            expired = self._expired_at.get(owner)
            if expired is not None and now < expired + self.rehold_cooldown:
                wait = expired + self.rehold_cooldown - now
                raise ReholdTooSoon(
                    f"Your hold expired; you can hold tickets here again in {wait:.0f} seconds"
                )
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
            (h for h in self._by_owner.get(owner, {}).values() if not h.confirming),
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
        self.check_window(now)
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
        self._bought[hold.owner] = self.bought_by(hold.owner) + hold.quantity
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
        if lock_id not in self._holds:
            self._check_sale(owner, quantity, now)
        return self._place(owner, quantity, lock_id, expires_at=now, confirming=True)

    def give_back(self, quantity: int, owner: int | None = None) -> None:
        """Sold seats return to sale (an order of `owner` was cancelled in the ledger)."""
        _check_quantity(quantity)
        if quantity > self.sold:
            raise BadQuantity(f"Cannot return {quantity} seats, only {self.sold} sold")
        self.sold -= quantity
        if owner is not None:
            left = self.bought_by(owner) - quantity
            if left > 0:
                self._bought[owner] = left
            else:
                self._bought.pop(owner, None)
        self.version += 1

    def expire_due(self, now: float) -> list[Hold]:
        """Drop every hold whose time is up; holds being confirmed are left alone."""
        heap = self._expiries
        found: dict[str, Hold] = {}  # a hold can have two live entries (confirm undone)
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._expires_as(entry):
                found[entry[1]] = self._holds[entry[1]]
        due = list(found.values())
        for hold in due:
            self._remove(hold)
            if not hold.offer:
                self._expired_at[hold.owner] = hold.expires_at
        if self._expired_at:
            # Bounded: only expiries still inside the cool-down matter.
            horizon = now - self.rehold_cooldown
            self._expired_at = {o: t for o, t in self._expired_at.items() if t > horizon}
        return due

    # -- the waiting list ----------------------------------------------------------------

    def join(self, entry: WaitEntry, now: float) -> int:
        """Put `entry` on the waiting list; answers its 1-based position."""
        _check_quantity(entry.quantity)
        # The row is written before the actor hears of it: an actor activated by this very
        # join has loaded it already. It is not acknowledged yet, so it is decided now.
        undecided = [e for e in self._waiting if e.entry_id == entry.entry_id]
        if undecided:
            self._waiting = [e for e in self._waiting if e.entry_id != entry.entry_id]
            self.version += 1  # the seats it set aside are free again, whatever comes next
        if any(e.owner == entry.owner for e in self._waiting):
            raise AlreadyWaiting("You are already on the waiting list of this category")
        self.check_window(now)
        if self.available > 0:
            raise SeatsAvailable(
                f"{self.available} tickets are available: reserve them instead of waiting"
            )
        if entry.quantity > self.total:
            raise NotEnoughSeats(
                f"This category has {self.total} tickets, {entry.quantity} requested"
            )
        self.check_limit(entry.owner, entry.quantity)
        bisect.insort(self._waiting, entry)
        self.version += 1
        return self._waiting.index(entry) + 1

    def leave(self, owner: int) -> WaitEntry:
        for index, entry in enumerate(self._waiting):
            if entry.owner == owner:
                del self._waiting[index]
                self.version += 1
                return entry
        raise NotWaiting("You are not on the waiting list of this category")

    def position_of(self, owner: int) -> int | None:
        for index, entry in enumerate(self._waiting):
            if entry.owner == owner:
                return index + 1
        return None

    def serve_waiting(self, now: float, offer_ttl: float, lock_id_of: LockIdOf) -> Served:
        """Offer free seats to the head of the list, in order, while they suffice.

        Strictly first in, first out: a head that needs more than is free waits, and nobody
        behind it is served first. An entry that can no longer be served (sales closed, the
        buyer reached the limit meanwhile) leaves the list.
        """
        offers: list[Hold] = []
        consumed: list[WaitEntry] = []
        closed = self.rules.closes_at is not None and now >= self.rules.closes_at
        while self._waiting:
            head = self._waiting[0]
            limit = self.rules.max_per_user
            hopeless = (
                closed
                or head.quantity > self.total
                or (
                    limit is not None
                    and self.held_by(head.owner) + self.bought_by(head.owner) + head.quantity
                    > limit
                )
            )
            if not hopeless and head.quantity > self.free:
                break
            del self._waiting[0]
            self.version += 1
            consumed.append(head)
            if hopeless:
                continue
            offer = Hold(lock_id_of(head), head.owner, head.quantity, now + offer_ttl, offer=True)
            self._add(offer)
            offers.append(offer)
        return Served(tuple(offers), tuple(consumed))

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

    def _check_sale(self, owner: int, quantity: int, now: float) -> None:
        _check_quantity(quantity)
        self.check_window(now)
        if self._waiting:
            raise NotEnoughSeats(
                "Sold out: freed tickets go to the waiting list; join it to get an offer"
            )
        self.check_limit(owner, quantity)

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
        self._own(hold)
        if not hold.confirming:
            self._expire_at(hold)
        self.version += 1

    def _remove(self, hold: Hold) -> None:
        del self._holds[hold.lock_id]
        self._held -= hold.quantity
        self._disown(hold)
        self.version += 1

    def _replace(self, old: Hold, new: Hold) -> None:
        self._holds[new.lock_id] = new
        self._held += new.quantity - old.quantity
        self._disown(old)
        self._own(new)
        if not new.confirming and (old.confirming or old.expires_at != new.expires_at):
            self._expire_at(new)
        self.version += 1

    def _own(self, hold: Hold) -> None:
        self._by_owner.setdefault(hold.owner, {})[hold.lock_id] = hold
        self._held_by[hold.owner] = self._held_by.get(hold.owner, 0) + hold.quantity

    def _disown(self, hold: Hold) -> None:
        owned = self._by_owner[hold.owner]
        del owned[hold.lock_id]
        left = self._held_by[hold.owner] - hold.quantity
        if owned:
            self._held_by[hold.owner] = left
        else:
            del self._by_owner[hold.owner], self._held_by[hold.owner]

    def _expire_at(self, hold: Hold) -> None:
        heap = self._expiries
        if len(heap) > 2 * len(self._holds) + 64:  # mostly stale: rebuild from the holds
            heap[:] = [(h.expires_at, h.lock_id) for h in self._holds.values() if not h.confirming]
            heapq.heapify(heap)
            if hold.lock_id in self._holds:
                return  # `hold` is in `_holds` already, so the rebuild took it
        heapq.heappush(heap, (hold.expires_at, hold.lock_id))

    def _expires_as(self, entry: tuple[float, str]) -> bool:
        """Is this heap entry still the expiry of a hold that can expire?"""
        hold = self._holds.get(entry[1])
        return hold is not None and not hold.confirming and hold.expires_at == entry[0]


LockIdOf = Callable[[WaitEntry], str]


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise BadQuantity("Quantity must be a positive integer")
