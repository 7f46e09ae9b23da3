"""The socket payloads of `/realtime`: what clients may send, parsed once, and the shapes
the server emits. The seed's camelCase field names live here and nowhere else in realtime/.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from actors.messages import Availability, HoldView

NAMESPACE = "/realtime"
INT32_MAX = 2**31 - 1


class BadPayload(ValueError):
    """A client payload that cannot be acted on; `message` is safe to send back."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _not_bool(value: object) -> object:
    # JSON `true` must not pass for the id 1 or the quantity 1.
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    return value


Id = Annotated[int, BeforeValidator(_not_bool), Field(gt=0, le=INT32_MAX)]
Quantity = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=INT32_MAX)]


class _Payload(BaseModel):
    # Unknown keys (notably `userId`, which the guide's clients send) are ignored:
    # identity only ever comes from the token.
    model_config = ConfigDict(extra="ignore", frozen=True)


class EventRoomRequest(_Payload):
    event_id: Id = Field(alias="eventId")


class LockRequest(_Payload):
    event_id: Id = Field(alias="eventId")
    category_id: Id = Field(alias="categoryId")
    quantity: Quantity
    # The waiting room's pass, while the event's room is on (checked by the sales service).
    admission_pass: str | None = Field(default=None, alias="admissionPass", max_length=1000)


class UnlockRequest(_Payload):
    """Either one hold by `lockId`, or `quantity` seats of a category among the caller's holds."""

    lock_id: str | None = Field(default=None, alias="lockId", min_length=1, max_length=128)
    event_id: Id | None = Field(default=None, alias="eventId")
    category_id: Id | None = Field(default=None, alias="categoryId")
    quantity: Quantity | None = None

    @model_validator(mode="after")
    def _one_target(self) -> UnlockRequest:
        if self.lock_id is None and (self.category_id is None or self.quantity is None):
            raise ValueError("give lockId, or categoryId and quantity")
        return self


class WaitlistRequest(_Payload):
    """`join-waitlist` (with `quantity`) and `leave-waitlist` (without)."""

    event_id: Id = Field(alias="eventId")
    category_id: Id = Field(alias="categoryId")
    quantity: Quantity | None = None


PayloadT = TypeVar("PayloadT", bound=_Payload)


def parse(model: type[PayloadT], data: Any) -> PayloadT:
    """Validate a client payload; any problem becomes one readable `BadPayload`."""
    if not isinstance(data, dict):
        raise BadPayload("Invalid payload: an object is required")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise BadPayload(f"Invalid payload: {where}: {first['msg']}") from None


def iso(epoch_seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds, as JavaScript's `Date.toISOString` writes it."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def availability_update(availability: Availability) -> dict[str, Any]:
    return {
        "eventId": availability.event_id,
        "categoryId": availability.category_id,
        "availableTickets": availability.available,
        "lockedTickets": availability.held,
        "totalTickets": availability.total,
        "timestamp": iso(availability.at),
        # Only while someone waits: the guide's shape is unchanged otherwise.
        **({"waitingCount": len(availability.waiting)} if availability.waiting else {}),
    }


def lock_view(hold: HoldView) -> dict[str, Any]:
    return {
        "lockId": hold.lock_id,
        "eventId": hold.event_id,
        "categoryId": hold.category_id,
        "quantity": hold.quantity,
        "expiresAt": iso(hold.expires_at),
    }


def waitlist_offer(hold: HoldView) -> dict[str, Any]:
    """`waitlist-offer`: seats held for the buyer first in line, an ordinary lock."""
    return lock_view(hold)


def waitlist_position(
    event_id: int, category_id: int, position: int, waiting: int
) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "categoryId": category_id,
        "position": position,
        "waiting": waiting,
    }


def failure(message: str) -> dict[str, Any]:
    return {"success": False, "message": message}
