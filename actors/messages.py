"""Every message that crosses the category actor's boundary: commands in, outcomes out,
and the change feed that gateways follow. Field names live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.inventory import SaleRules
from actors.queue import QueueAdmitted, QueueClosed
from actors.refusals import RefusalReason
from persistence.pickling import compact
from persistence.records import OrderDraft, OrderRecord

# -- what a category looks like from outside ------------------------------------------------


@compact
@dataclass(frozen=True, slots=True)
class Availability:
    event_id: int
    category_id: int
    total: int
    held: int
    sold: int
    version: int
    at: float  # epoch seconds of the change
    # Activation of the actor that produced it (ns); with `version` it orders states even
    # across an actor restart that lost its unsaved version counter.
    epoch: int = 0
    # The category's waiting list, user ids first in line first; empty for most categories.
    waiting: tuple[int, ...] = ()

    @property
    def available(self) -> int:
        return self.total - self.held - self.sold

    @property
    def stamp(self) -> tuple[int, int]:
        return (self.epoch, self.version)


@compact
@dataclass(frozen=True, slots=True)
class HoldView:
    lock_id: str
    owner: int
    event_id: int
    category_id: int
    quantity: int
    expires_at: float  # epoch seconds
    # Made for the head of the waiting list: its buyer hears `waitlist-offer`.
    offer: bool = False


# -- commands (gateway -> actor), batched in one call per category ---------------------------


@compact
@dataclass(frozen=True, slots=True)
class PlaceHold:
    request_id: str
    owner: int
    # The event the caller believes the category belongs to: the actor checks it.
    event_id: int
    quantity: int
    # The category's rules as the sender's catalogue has them; adopted only if newer.
    rules: SaleRules | None = None
    # The id of the request that caused it (`actors.trace`), named in the actor's logs.
    trace: str = ""


@compact
@dataclass(frozen=True, slots=True)
class ReleaseHold:
    """Release one hold by `lock_id`, or `quantity` seats among the owner's holds."""

    request_id: str
    owner: int
    lock_id: str | None = None
    quantity: int | None = None
    # The id of the request that caused it (`actors.trace`), named in the actor's logs.
    trace: str = ""


@compact
@dataclass(frozen=True, slots=True)
class ConfirmHold:
    request_id: str
    owner: int
    lock_id: str
    draft: OrderDraft
    rules: SaleRules | None = None
    # The id of the request that caused it (`actors.trace`), named in the actor's logs.
    trace: str = ""


@compact
@dataclass(frozen=True, slots=True)
class Buy:
    """Hold and confirm in one step (an order without a prior lock)."""

    request_id: str
    owner: int
    draft: OrderDraft
    rules: SaleRules | None = None
    # The id of the request that caused it (`actors.trace`), named in the actor's logs.
    trace: str = ""


@compact
@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel an order of this category in the ledger and return its seats, once."""

    request_id: str
    order_id: int
    # A declined payment: cancel only if the order is still pending (never a completed one).
    only_pending: bool = False
    # Who asked, for the audit trail written with the cancel; None: the system (a payment).
    by: int | None = None
    # The id of the request that caused it (`actors.trace`), named in the actor's logs.
    trace: str = ""


@compact
@dataclass(frozen=True, slots=True)
class JoinWaitlist:
    """Put the owner on the waiting list; `entry_id` is the row already in the ledger."""

    request_id: str
    owner: int
    event_id: int
    entry_id: int
    quantity: int
    rules: SaleRules | None = None
    # The id of the request that caused it (`actors.trace`), named in the actor's logs.
    trace: str = ""


@compact
@dataclass(frozen=True, slots=True)
class LeaveWaitlist:
    request_id: str
    owner: int
    # The id of the request that caused it (`actors.trace`), named in the actor's logs.
    trace: str = ""


Command = PlaceHold | ReleaseHold | ConfirmHold | Buy | CancelOrder | JoinWaitlist | LeaveWaitlist


# -- outcomes (actor -> gateway), one per command, in order ----------------------------------


@compact
@dataclass(frozen=True, slots=True)
class HoldPlaced:
    hold: HoldView
    availability: Availability


@compact
@dataclass(frozen=True, slots=True)
class HoldsReleased:
    holds: tuple[HoldView, ...]
    availability: Availability


@compact
@dataclass(frozen=True, slots=True)
class OrderPlaced:
    order: OrderRecord
    availability: Availability
    replayed: bool = False  # the same request_key had already produced this order


@compact
@dataclass(frozen=True, slots=True)
class OrderCancelled:
    order: OrderRecord
    availability: Availability


@compact
@dataclass(frozen=True, slots=True)
class Refused:
    reason: RefusalReason
    message: str


@compact
@dataclass(frozen=True, slots=True)
class WaitlistJoined:
    entry_id: int
    position: int  # 1 is next in line
    quantity: int
    availability: Availability


@compact
@dataclass(frozen=True, slots=True)
class WaitlistLeft:
    entry_id: int
    availability: Availability


Outcome = (
    HoldPlaced
    | HoldsReleased
    | OrderPlaced
    | OrderCancelled
    | WaitlistJoined
    | WaitlistLeft
    | Refused
)


# -- the change feed (actor -> hub -> every gateway) -----------------------------------------


@compact
@dataclass(frozen=True, slots=True)
class CategoryChanged:
    """The latest state of a category, coalesced over a short window."""

    availability: Availability
    holds_added: tuple[HoldView, ...] = ()
    holds_removed: tuple[str, ...] = ()  # lock ids
    # `holds_added` is every live hold of the category (at activation, and when a new hub
    # generation asks for it): a mirror drops the category's other holds.
    complete: bool = False


@compact
@dataclass(frozen=True, slots=True)
class UserNotice:
    """A per-user socket event (`order-completed`, `order-cancelled`)."""

    user_id: int
    event: str
    payload: dict[str, Any] = field(default_factory=dict)


@compact
@dataclass(frozen=True, slots=True)
class CatalogChanged:
    """An event's row changed (edited, deactivated, deleted): gateways drop their copy."""

    event_id: int


@compact
@dataclass(frozen=True, slots=True)
class ActorReport:
    """What a category actor counted since its last report (`actors.telemetry`): gateways
    add it to their metrics. `live` is False in the last report before it passivates."""

    category_id: int
    live: bool
    activation_seconds: float | None = None  # in its first report only
    batch_sizes: tuple[float, ...] = ()  # histogram deltas, bounds in actors.telemetry
    commit_seconds: tuple[float, ...] = ()


FeedItem = CategoryChanged | UserNotice | CatalogChanged | ActorReport | QueueAdmitted | QueueClosed


@compact
@dataclass(frozen=True, slots=True)
class FeedState:
    """Everything a gateway needs to start following the feed from scratch."""

    availability: tuple[Availability, ...]
    holds: tuple[HoldView, ...]
    # Categories whose holds here are all their live holds (a complete item reached this
    # state); a follower that merges replaces exactly those categories' holds.
    complete: tuple[int, ...] = ()


@compact
@dataclass(frozen=True, slots=True)
class FeedBatch:
    cursor: int
    items: tuple[FeedItem, ...]
    # Set when the caller's cursor is unknown or too old: rebuild from this, then apply items.
    reset: FeedState | None = None
    # The hub's activation (ns). A new one means the hub restarted and lost its items: its
    # state is partial until every live category has republished, so a follower that knew
    # an older generation keeps what it knows and merges, never empties (see FeedMirror).
    generation: int = 0
