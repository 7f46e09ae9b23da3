"""Plain records that leave the persistence layer: what an order is, once written.

They cross process boundaries (Ray actor calls) so they are frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from persistence.pickling import compact


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


@compact
@dataclass(frozen=True, slots=True)
class OrderDraft:
    """An order about to be written; prices and names come from the server's catalogue."""

    user_id: int
    event_id: int
    category_id: int
    quantity: int
    unit_price: Decimal
    event_name: str
    category_name: str
    notes: str | None = None
    # `<user_id>:<Idempotency-Key>` or the gateway's request id; unique in the ledger.
    request_key: str | None = None


@compact
@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: int
    user_id: int
    event_id: int
    category_id: int
    quantity: int
    unit_price: Decimal
    total_price: Decimal
    status: OrderStatus
    event_name: str
    category_name: str
    notes: str | None
    lock_id: str | None
    request_key: str | None
    created_at: datetime
    updated_at: datetime


@compact
@dataclass(frozen=True, slots=True)
class PlacedOrder:
    record: OrderRecord
    # True when the order already existed (same lock id or request key): nothing was sold now.
    replayed: bool


@dataclass(frozen=True, slots=True)
class CategoryFacts:
    """What a category actor needs to know about its category at activation."""

    category_id: int
    event_id: int
    total_seats: int
    is_active: bool
    # Sales windows (epoch seconds or None) of the event and of the category, and the limit.
    event_window: tuple[float | None, float | None] = (None, None)
    category_window: tuple[float | None, float | None] = (None, None)
    max_per_user: int | None = None
    stamp: float = 0.0  # the event's updated_at: orders versions of these facts
    bought: tuple[tuple[int, int], ...] = ()  # (user id, seats in non-cancelled orders)
    waiting: tuple[tuple[int, int, int], ...] = ()  # (entry id, user id, quantity), in order


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    password_hash: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CategoryRecord:
    id: int
    event_id: int
    category_name: str
    price: Decimal
    total_seats: int
    description: str | None
    is_active: bool
    sales_start_at: datetime | None = None
    sales_end_at: datetime | None = None
    max_per_user: int | None = None


@dataclass(frozen=True, slots=True)
class WaitingRoomConfig:
    """An event's waiting room as its organizer set it. `opens_at` None: the event's
    salesStartAt, else at once."""

    enabled: bool
    admit_per_second: int
    opens_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    event_name: str
    event_category: str
    description: str | None
    event_date: datetime
    location: str | None
    is_active: bool
    created_by: int
    created_at: datetime
    updated_at: datetime
    categories: tuple[CategoryRecord, ...]
    sales_start_at: datetime | None = None
    sales_end_at: datetime | None = None
    waiting_room: WaitingRoomConfig | None = None

    @property
    def queued(self) -> bool:
        """True while buying needs an admission pass from the event's waiting room."""
        return self.waiting_room is not None and self.waiting_room.enabled


@dataclass(frozen=True, slots=True)
class CategoryDraft:
    category_name: str
    price: Decimal
    total_seats: int
    description: str | None = None
    sales_start_at: datetime | None = None
    sales_end_at: datetime | None = None
    max_per_user: int | None = None


@dataclass(frozen=True, slots=True)
class EventDraft:
    event_name: str
    event_category: str
    description: str | None
    event_date: datetime
    location: str | None
    categories: tuple[CategoryDraft, ...] = ()
    sales_start_at: datetime | None = None
    sales_end_at: datetime | None = None
    waiting_room: WaitingRoomConfig | None = None


@dataclass(frozen=True, slots=True)
class WaitlistRow:
    """A buyer's place on a category's waiting list, as the ledger keeps it."""

    id: int
    category_id: int
    user_id: int
    quantity: int
    created_at: datetime
