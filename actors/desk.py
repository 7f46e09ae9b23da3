"""The desk of one category: a batch of commands decided against its inventory in one
synchronous step, and the settling of the orders that step sent to the ledger.

Nothing here awaits, so no other call can run between checking seats and changing them;
the language enforces what a comment in an async method could only promise. The actor
(`actors.category`) does the I/O around it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field

from actors.inventory import Hold, Inventory, SaleRules, WaitEntry
from actors.lockids import hold_lock_id, sale_lock_id
from actors.messages import (
    Availability,
    Buy,
    CancelOrder,
    Command,
    ConfirmHold,
    HoldPlaced,
    HoldsReleased,
    HoldView,
    JoinWaitlist,
    LeaveWaitlist,
    OrderCancelled,
    OrderPlaced,
    Outcome,
    PlaceHold,
    Refused,
    ReleaseHold,
    WaitlistJoined,
    WaitlistLeft,
)
from actors.refusals import (
    HoldMismatch,
    HoldNotFound,
    NotEnoughSeats,
    NotOnSale,
    Refusal,
    RefusalReason,
    WrongEvent,
)
from persistence.records import CategoryFacts, OrderRecord, PlacedOrder

LEDGER_REFUSAL = Refused(
    RefusalReason.LEDGER_UNAVAILABLE, "Orders cannot be recorded right now; try again"
)

# What changed, for the feed: holds added (or shrunk), lock ids removed.
Changed = Callable[[Sequence[HoldView], Sequence[str]], None]
# Waiting-list entries that left the list by an offer (or hopeless): their rows can go.
Consumed = Callable[[Sequence[WaitEntry]], None]


def rules_of(facts: CategoryFacts) -> SaleRules:
    return SaleRules.stricter(
        facts.event_window, facts.category_window, facts.max_per_user, facts.stamp
    )


def _nothing_consumed(entries: Sequence[WaitEntry]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Write:
    """An order the decision sent to the ledger; its seats are held, confirming, meanwhile."""

    index: int
    command: ConfirmHold | Buy
    lock_id: str


@dataclass(slots=True)
class Decision:
    """What a batch decided at once, and what is left for the actor's I/O, by command index."""

    outcomes: list[Outcome | None]
    writes: list[Write] = field(default_factory=list)
    joins: list[tuple[int, str]] = field(default_factory=list)  # replays of an order in flight
    lookups: list[tuple[int, ConfirmHold]] = field(default_factory=list)  # used lock? ask ledger
    # A Buy refused for lack of seats may be the retry of one the ledger has (its seats are
    # among the sold ones): the ledger answers before the refusal stands.
    sale_lookups: list[tuple[int, str, Refused]] = field(default_factory=list)
    cancels: list[tuple[int, CancelOrder]] = field(default_factory=list)


class Desk:
    def __init__(
        self,
        inventory: Inventory,
        *,
        event_id: int,
        category_id: int,
        epoch: int,
        lock_ttl_seconds: float,
        changed: Changed,
        clock: Callable[[], float] = time.time,
        facts: CategoryFacts | None = None,
        offer_ttl_seconds: float = 600.0,
        rehold_cooldown_seconds: float = 0.0,
        consumed: Consumed = _nothing_consumed,
    ) -> None:
        self.inventory = inventory
        self.event_id = event_id
        self.category_id = category_id
        self._epoch = epoch
        self._ttl = lock_ttl_seconds
        self._changed = changed
        self._clock = clock
        self._offer_ttl = offer_ttl_seconds
        self._consumed = consumed
        inventory.configure(
            rules_of(facts) if facts is not None else inventory.rules,
            bought=dict(facts.bought) if facts is not None else None,
            waiting=[WaitEntry(*row) for row in facts.waiting] if facts is not None else None,
            rehold_cooldown=rehold_cooldown_seconds,
        )
        # The event and category are active: refreshed from the catalogue by the actor.
        self.on_sale = True

    # -- the synchronous step -----------------------------------------------------------------

    def decide(
        self,
        commands: Sequence[Command],
        now: float,
        replies: Mapping[str, Outcome],
        writing: Container[str],
    ) -> Decision:
        """Decide every command that can be decided now; `replies` answers a retried request
        as the first try was answered, `writing` names the lock ids whose order is in flight."""
        decision = Decision(outcomes=[None] * len(commands))
        started: set[str] = set()

        def in_flight(lock_id: str) -> bool:
            return lock_id in writing or lock_id in started

        for index, command in enumerate(commands):
            cached = replies.get(command.request_id)
            if cached is not None:
                decision.outcomes[index] = cached
                continue
            try:
                if isinstance(command, PlaceHold | ConfirmHold | Buy | JoinWaitlist):
                    self.inventory.adopt(command.rules)
                if isinstance(command, PlaceHold):
                    decision.outcomes[index] = self._hold(command, now)
                elif isinstance(command, JoinWaitlist):
                    decision.outcomes[index] = self._join(command, now)
                elif isinstance(command, LeaveWaitlist):
                    entry = self.inventory.leave(command.owner)
                    self._changed((), ())
                    decision.outcomes[index] = WaitlistLeft(entry.entry_id, self.availability())
                elif isinstance(command, ReleaseHold):
                    decision.outcomes[index] = self._release(command)
                elif isinstance(command, ConfirmHold):
                    self._check_on_sale()
                    lock_id = command.lock_id
                    if self._joins(lock_id, command.owner, in_flight(lock_id)):
                        decision.joins.append((index, lock_id))
                    elif self.inventory.get(lock_id) is None:
                        decision.lookups.append((index, command))
                    else:
                        self._begin_confirm(command, now)
                        decision.writes.append(Write(index, command, lock_id))
                        started.add(lock_id)
                elif isinstance(command, Buy):
                    self._check_event(command.draft.event_id)
                    self._check_on_sale()
                    lock_id = sale_lock_id(self.category_id, command.owner, command.request_id)
                    if self._joins(lock_id, command.owner, in_flight(lock_id)):
                        decision.joins.append((index, lock_id))
                        continue
                    try:
                        self.inventory.begin_sale(
                            command.owner, command.draft.quantity, lock_id, now
                        )
                    except NotEnoughSeats as refusal:
                        refused = Refused(refusal.reason, refusal.message)
                        decision.sale_lookups.append((index, lock_id, refused))
                        continue
                    decision.writes.append(Write(index, command, lock_id))
                    started.add(lock_id)
                else:
                    decision.cancels.append((index, command))
            except Refusal as refusal:
                decision.outcomes[index] = Refused(refusal.reason, refusal.message)
        if decision.writes:
            self._changed((), ())  # the confirming holds count as held meanwhile
        self.serve_waiting(now)
        return decision

    def settle(self, decision: Decision, placed: Sequence[PlacedOrder]) -> None:
        """The ledger has the orders: their seats are sold (or were already, for a replay)."""
        removed = []
        for write, result in zip(decision.writes, placed, strict=True):
            if result.replayed:
                # The ledger already had this order: its seats are in `sold` already.
                self.inventory.abort_confirm(write.lock_id)
                self.inventory.release(write.lock_id, write.command.owner)
            else:
                self.inventory.finish_confirm(write.lock_id)
            removed.append(write.lock_id)
            decision.outcomes[write.index] = OrderPlaced(
                result.record, self.availability(), result.replayed
            )
        self._changed((), removed)
        self.serve_waiting(self._clock())

    def undo(self, decision: Decision) -> None:
        """The ledger refused the writes: each hold is back as it was, each sale undone."""
        for write in decision.writes:
            self.inventory.abort_confirm(write.lock_id)
            if isinstance(write.command, Buy):
                self.inventory.release(write.lock_id, write.command.owner)
            decision.outcomes[write.index] = LEDGER_REFUSAL
        self._changed((), ())
        self.serve_waiting(self._clock())

    def cancelled(self, order: OrderRecord) -> OrderCancelled:
        """The ledger cancelled `order`: its seats go back (to the waiting list first)."""
        self.inventory.give_back(order.quantity, order.user_id)
        self._changed((), ())
        self.serve_waiting(self._clock())
        return OrderCancelled(order, self.availability())

    def expire(self, now: float) -> None:
        """Drop the holds whose time is up, and offer the seats to the waiting list."""
        self.expire_holds(now)
        self.serve_waiting(now)

    def expire_holds(self, now: float) -> bool:
        """Drop the holds whose time is up; True when there were any."""
        expired = self.inventory.expire_due(now)
        if expired:
            self._changed((), [hold.lock_id for hold in expired])
        return bool(expired)

    def serve_waiting(self, now: float) -> None:
        """Free seats go to the head of the waiting list before anyone else can take them."""
        if not self.inventory.waiting:
            return
        served = self.inventory.serve_waiting(now, self._offer_ttl, self._offer_lock_id)
        if served.offers:
            self._changed([self.view(offer) for offer in served.offers], ())
        elif served.consumed:
            self._changed((), ())
        if served.consumed:
            self._consumed(served.consumed)

    def live_holds(self) -> list[HoldView]:
        """Every live hold as the feed shows it (a complete item: activation, hub restart)."""
        return [self.view(hold) for hold in self.inventory.holds()]

    # -- views ---------------------------------------------------------------------------------

    def availability(self) -> Availability:
        inventory = self.inventory
        return Availability(
            event_id=self.event_id,
            category_id=self.category_id,
            total=inventory.total,
            # Seats set aside for the waiting list are not on sale: shown as held.
            held=inventory.held + inventory.set_aside,
            sold=inventory.sold,
            version=inventory.version,
            at=self._clock(),
            epoch=self._epoch,
            waiting=tuple(entry.owner for entry in inventory.waiting),
        )

    def view(self, hold: Hold) -> HoldView:
        return HoldView(
            lock_id=hold.lock_id,
            owner=hold.owner,
            event_id=self.event_id,
            category_id=self.category_id,
            quantity=hold.quantity,
            expires_at=hold.expires_at,
            offer=hold.offer,
        )

    # -- steps ---------------------------------------------------------------------------------

    def _check_event(self, event_id: int) -> None:
        # Ids come from the client and a gateway's catalogue may be stale: the category's own
        # facts decide, before anything changes.
        if event_id != self.event_id:
            raise WrongEvent("This category does not belong to that event")

    def _check_on_sale(self) -> None:
        if not self.on_sale:
            raise NotOnSale("This event is not on sale")

    def _hold(self, command: PlaceHold, now: float) -> Outcome:
        self._check_event(command.event_id)
        self._check_on_sale()
        lock_id = hold_lock_id(self.category_id, command.owner, command.request_id)
        hold = self.inventory.hold(command.owner, command.quantity, lock_id, now, self._ttl)
        view = self.view(hold)
        self._changed((view,), ())
        return HoldPlaced(view, self.availability())

    def _join(self, command: JoinWaitlist, now: float) -> Outcome:
        self._check_event(command.event_id)
        entry = WaitEntry(command.entry_id, command.owner, command.quantity)
        try:
            position = self.inventory.join(entry, now)
        finally:
            # Refused or not: an activation may have loaded this join's row (written before
            # the actor is called) and set seats aside for it, which the feed must now undo.
            self._changed((), ())
        return WaitlistJoined(entry.entry_id, position, entry.quantity, self.availability())

    def _offer_lock_id(self, entry: WaitEntry) -> str:
        # The entry's ledger id makes the offer's lock id: one offer per entry, ever.
        return hold_lock_id(self.category_id, entry.owner, f"{entry.entry_id:016x}")

    def _release(self, command: ReleaseHold) -> Outcome:
        inventory = self.inventory
        if command.lock_id is not None:
            released = [inventory.release(command.lock_id, command.owner)]
        elif command.quantity is not None:
            released = inventory.release_quantity(command.owner, command.quantity)
        else:
            raise HoldNotFound("Name a lockId or a quantity to release")
        survivors = [inventory.get(hold.lock_id) for hold in released]
        self._changed(
            [self.view(hold) for hold in survivors if hold is not None],
            [hold.lock_id for hold in released if inventory.get(hold.lock_id) is None],
        )
        return HoldsReleased(tuple(self.view(h) for h in released), self.availability())

    def _begin_confirm(self, command: ConfirmHold, now: float) -> None:
        hold = self.inventory.get(command.lock_id)
        if hold is not None and hold.owner == command.owner:
            draft = command.draft
            if draft.category_id != self.category_id or draft.event_id != self.event_id:
                raise HoldMismatch("This lock is for another event or category")
            if draft.quantity != hold.quantity:
                raise HoldMismatch(f"This lock holds {hold.quantity} tickets, not {draft.quantity}")
        self.inventory.begin_confirm(command.lock_id, command.owner, now)

    def _joins(self, lock_id: str, owner: int, in_flight: bool) -> bool:
        """Is this the replay of an order whose write is in flight? Then it waits for it."""
        if not in_flight:
            return False
        self.inventory.check_owner(lock_id, owner)
        return True
