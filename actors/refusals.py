"""Every reason a seat operation can be refused, as typed exceptions carrying that reason.

The inventory, the category actor and the sales service raise these; each adapter turns the
reason into its own answer through one table (`gateway.errors.REFUSAL_STATUS` for HTTP).
"""

from __future__ import annotations

from enum import StrEnum


class RefusalReason(StrEnum):
    NOT_ENOUGH_SEATS = "not_enough_seats"
    HOLD_NOT_FOUND = "hold_not_found"
    NOT_YOUR_HOLD = "not_your_hold"
    HOLD_EXPIRED = "hold_expired"
    HOLD_MISMATCH = "hold_mismatch"
    BAD_QUANTITY = "bad_quantity"
    TOO_MANY_TICKETS = "too_many_tickets"
    EVENT_NOT_FOUND = "event_not_found"
    CATEGORY_NOT_FOUND = "category_not_found"
    NOT_ON_SALE = "not_on_sale"
    WRONG_EVENT = "wrong_event"
    CATEGORY_UNAVAILABLE = "category_unavailable"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_ALREADY_CANCELLED = "order_already_cancelled"
    BAD_SALES_WINDOW = "bad_sales_window"
    SALES_NOT_OPEN = "sales_not_open"
    SALES_CLOSED = "sales_closed"
    LIMIT_REACHED = "limit_reached"
    TOO_MANY_HOLDS = "too_many_holds"
    REHOLD_TOO_SOON = "rehold_too_soon"
    SEATS_AVAILABLE = "seats_available"
    ALREADY_WAITING = "already_waiting"
    NOT_WAITING = "not_waiting"
    NOT_THE_ORGANIZER = "not_the_organizer"
    NO_ADMISSION = "no_admission"
    NO_WAITING_ROOM = "no_waiting_room"
    # Not the category's decision: the ledger could not be written. Nothing changed.
    LEDGER_UNAVAILABLE = "ledger_unavailable"


class Refusal(Exception):
    """A request refused; nothing changed. `message` is safe to show the caller."""

    reason: RefusalReason = RefusalReason.BAD_QUANTITY

    def __init__(self, message: str, reason: RefusalReason | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class NotEnoughSeats(Refusal):
    reason = RefusalReason.NOT_ENOUGH_SEATS


class HoldNotFound(Refusal):
    reason = RefusalReason.HOLD_NOT_FOUND


class NotYourHold(Refusal):
    reason = RefusalReason.NOT_YOUR_HOLD


class HoldExpired(Refusal):
    reason = RefusalReason.HOLD_EXPIRED


class BadQuantity(Refusal):
    reason = RefusalReason.BAD_QUANTITY


class HoldMismatch(Refusal):
    """The lock exists but is for another event, category or quantity than the order."""

    reason = RefusalReason.HOLD_MISMATCH


class TooManyTickets(Refusal):
    """More tickets in one request than the system allows (MAX_TICKETS_PER_REQUEST)."""

    reason = RefusalReason.TOO_MANY_TICKETS


class EventNotFound(Refusal):
    reason = RefusalReason.EVENT_NOT_FOUND


class CategoryNotFound(Refusal):
    reason = RefusalReason.CATEGORY_NOT_FOUND


class NotOnSale(Refusal):
    """The event or the category is not active."""

    reason = RefusalReason.NOT_ON_SALE


class WrongEvent(Refusal):
    """The category exists but belongs to another event than the request names."""

    reason = RefusalReason.WRONG_EVENT


class OrderNotFound(Refusal):
    reason = RefusalReason.ORDER_NOT_FOUND


class OrderAlreadyCancelled(Refusal):
    reason = RefusalReason.ORDER_ALREADY_CANCELLED


class LedgerUnavailable(Refusal):
    reason = RefusalReason.LEDGER_UNAVAILABLE


class SalesNotOpen(Refusal):
    """Before the sales window of the event or category opens."""

    reason = RefusalReason.SALES_NOT_OPEN


class SalesClosed(Refusal):
    """After the sales window of the event or category closed."""

    reason = RefusalReason.SALES_CLOSED


class LimitReached(Refusal):
    """The buyer's live holds plus bought tickets in the category would exceed maxPerUser."""

    reason = RefusalReason.LIMIT_REACHED


class TooManyHolds(Refusal):
    """The buyer already has MAX_LIVE_HOLDS_PER_USER live holds across all categories."""

    reason = RefusalReason.TOO_MANY_HOLDS


class ReholdTooSoon(Refusal):
    """The buyer's hold in this category expired less than the cool-down ago."""

    reason = RefusalReason.REHOLD_TOO_SOON


class SeatsAvailable(Refusal):
    """A waiting list is only for a category with nothing on sale."""

    reason = RefusalReason.SEATS_AVAILABLE


class AlreadyWaiting(Refusal):
    reason = RefusalReason.ALREADY_WAITING


class NotWaiting(Refusal):
    reason = RefusalReason.NOT_WAITING


class BadSalesWindow(Refusal):
    """A sales window whose end is not after its start."""

    reason = RefusalReason.BAD_SALES_WINDOW


class NotTheOrganizer(Refusal):
    """Only the organizer who created the event sees its audit trail, export and dashboard."""

    reason = RefusalReason.NOT_THE_ORGANIZER


class NoAdmission(Refusal):
    """The event's waiting room is on and the request carries no valid admission pass of the
    caller for that event."""

    reason = RefusalReason.NO_ADMISSION


class NoWaitingRoom(Refusal):
    """A queue request for an event without an enabled waiting room."""

    reason = RefusalReason.NO_WAITING_ROOM
