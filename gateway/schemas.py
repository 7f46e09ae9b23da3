"""The REST API's bodies, in the guide's camelCase field names: what comes in and what goes out.

Input limits (lengths, ranges, ISO 8601 dates with a time zone) live here and nowhere else.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from sales.identity import Role

MAX_ID = 2**31 - 1
MAX_PRICE = Decimal("99999999.99")
MAX_SEATS = 1_000_000
MAX_CATEGORIES = 50
# A waiting room admits 1 to this many buyers a second; its opening lies in these years.
MAX_ADMIT_PER_SECOND = 10_000
OPENING_YEARS = (2000, 2200)
PASSWORD_MIN_BYTES = 8
PASSWORD_MAX_BYTES = 72  # bcrypt ignores anything longer; refuse rather than truncate


def _no_control(value: str, *, allow_newlines: bool) -> str:
    allowed = {"\n", "\r", "\t"} if allow_newlines else set()
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _single_line(value: str) -> str:
    return _no_control(value, allow_newlines=False)


def _multi_line(value: str) -> str:
    return _no_control(value, allow_newlines=True)


def _iso_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError("must be an ISO 8601 date-time, e.g. 2024-07-15T18:00:00Z") from exc
    else:
        raise ValueError("must be an ISO 8601 date-time string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must include a time zone, e.g. 2024-07-15T18:00:00Z")
    return parsed.astimezone(UTC)


def _instant(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _money(value: Decimal) -> float:
    return float(value)


# Text is trimmed, then measured, then checked for control characters.
_OneLine = AfterValidator(_single_line)
_MultiLine = AfterValidator(_multi_line)


def _trimmed(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Username = Annotated[str, _trimmed(3, 100), _OneLine]
LoginName = Annotated[str, _trimmed(1, 200), _OneLine]
EventName = Annotated[str, _trimmed(1, 200), _OneLine]
Label = Annotated[str, _trimmed(1, 100), _OneLine]
Location = Annotated[str, _trimmed(0, 255), _OneLine]
LongText = Annotated[str, _trimmed(0, 5000), _MultiLine]
ShortText = Annotated[str, _trimmed(0, 1000), _MultiLine]
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
Quantity = Annotated[StrictInt, Field(ge=1, le=MAX_SEATS)]
EventDate = Annotated[datetime, BeforeValidator(_iso_datetime)]
Instant = Annotated[datetime, PlainSerializer(_instant, return_type=str)]
Money = Annotated[Decimal, PlainSerializer(_money, return_type=float)]
Price = Annotated[Decimal, Field(ge=0, le=MAX_PRICE, max_digits=10, decimal_places=2)]


class CamelModel(BaseModel):
    """Bodies the guide names in camelCase; unknown fields (a `userId`...) are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=False, extra="ignore")


class CamelOut(BaseModel):
    """Answers: built from Python names, written in the guide's camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )

    def respond(self, status_code: int = 200) -> Response:
        """This answer as a response, serialized once. Returned from a route, it skips
        FastAPI's second validation of the model (the route's `response_model` still
        documents it): the hot routes (reserve, buy) return this."""
        return Response(
            self.model_dump_json(), status_code=status_code, media_type="application/json"
        )


# -- auth ------------------------------------------------------------------------------------


class RegisterIn(CamelModel):
    username: Username
    password: str
    role: str | None = None

    @field_validator("password")
    @classmethod
    def _password_length(cls, value: str) -> str:
        size = len(value.encode())
        if size < PASSWORD_MIN_BYTES or size > PASSWORD_MAX_BYTES:
            raise ValueError(f"must be {PASSWORD_MIN_BYTES} to {PASSWORD_MAX_BYTES} bytes long")
        return value

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str | None) -> str | None:
        if value is None or value in ("assistant", "organizer", "customer"):
            return value
        raise ValueError("must be 'assistant' or 'organizer'")

    @property
    def resolved_role(self) -> Role:
        return Role.ORGANIZER if self.role == "organizer" else Role.ASSISTANT


class LoginIn(CamelModel):
    username: LoginName
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserOut(CamelOut):
    id: int
    username: str
    role: str


class TokenOut(BaseModel):
    access_token: str
    user: UserOut


# -- events ----------------------------------------------------------------------------------


def _window_in_order(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise ValueError("salesEndAt must be after salesStartAt")


class CategoryIn(CamelModel):
    category_name: Label
    price: Price
    total_seats: Annotated[StrictInt, Field(ge=1, le=MAX_SEATS)]
    description: ShortText | None = None
    # Fair sales (optional): the category's own window (the stricter of it and the event's
    # wins) and the most tickets one buyer may hold plus buy in it.
    sales_start_at: EventDate | None = None
    sales_end_at: EventDate | None = None
    max_per_user: Annotated[StrictInt, Field(ge=1, le=MAX_SEATS)] | None = None

    @model_validator(mode="after")
    def _window(self) -> CategoryIn:
        _window_in_order(self.sales_start_at, self.sales_end_at)
        return self


def _sensible_opening(value: datetime | None) -> datetime | None:
    if value is not None and not OPENING_YEARS[0] <= value.year < OPENING_YEARS[1]:
        raise ValueError(f"must be between {OPENING_YEARS[0]} and {OPENING_YEARS[1]}")
    return value


class WaitingRoomIn(CamelModel):
    """An event's virtual waiting room: while enabled, buying needs an admission pass."""

    enabled: StrictBool
    admit_per_second: Annotated[StrictInt, Field(ge=1, le=MAX_ADMIT_PER_SECOND)]
    # When the draw happens; null: the event's salesStartAt, or else at once.
    opens_at: Annotated[EventDate, AfterValidator(_sensible_opening)] | None = None


class EventIn(CamelModel):
    event_name: EventName
    event_category: Label
    description: LongText | None = None
    event_date: EventDate
    location: Location | None = None
    ticket_categories: Annotated[list[CategoryIn], Field(min_length=1, max_length=MAX_CATEGORIES)]
    sales_start_at: EventDate | None = None
    sales_end_at: EventDate | None = None
    waiting_room: WaitingRoomIn | None = None

    @model_validator(mode="after")
    def _window(self) -> EventIn:
        _window_in_order(self.sales_start_at, self.sales_end_at)
        return self

    @field_validator("ticket_categories")
    @classmethod
    def _distinct_names(cls, value: list[CategoryIn]) -> list[CategoryIn]:
        names = [category.category_name.casefold() for category in value]
        if len(set(names)) != len(names):
            raise ValueError("category names must be distinct within an event")
        return value


class EventUpdateIn(CamelModel):
    event_name: EventName | None = None
    event_category: Label | None = None
    description: LongText | None = None
    event_date: EventDate | None = None
    location: Location | None = None
    is_active: StrictBool | None = None
    # null clears the bound; the merged window is checked against the stored one too.
    sales_start_at: EventDate | None = None
    sales_end_at: EventDate | None = None
    # null removes the waiting room.
    waiting_room: WaitingRoomIn | None = None

    @model_validator(mode="after")
    def _window(self) -> EventUpdateIn:
        _window_in_order(self.sales_start_at, self.sales_end_at)
        return self

    _REQUIRED = ("event_name", "event_category", "event_date", "is_active")

    @field_validator(*_REQUIRED)
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null")
        return value

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent, keyed as the catalogue names them."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _unset(value: object) -> bool:
    return value is None or value == 0


# A fair-sale field of an answer appears only when set: a client that never uses them sees
# exactly the guide's shape. Per field, not a model serializer: a wrap serializer called back
# into Python for every category of every list and doubled the cost of dumping one.
Unset = Field(exclude_if=_unset)


class TicketCategoryOut(CamelOut):
    id: int
    category_name: str
    price: Money
    total_seats: int
    reserved_seats: int
    available_seats: int
    description: str | None
    is_active: bool
    event_id: int
    sales_start_at: Annotated[Instant | None, Unset] = None
    sales_end_at: Annotated[Instant | None, Unset] = None
    max_per_user: Annotated[int | None, Unset] = None
    waiting_count: Annotated[int, Unset] = 0


class WaitingRoomOut(CamelOut):
    enabled: bool
    admit_per_second: int
    opens_at: Instant | None


class EventOut(CamelOut):
    id_event: int
    event_name: str
    event_category: str
    description: str | None
    event_date: Instant
    location: str | None
    is_active: bool
    created_by: int
    ticket_categories: list[TicketCategoryOut]
    created_at: Instant
    updated_at: Instant
    sales_start_at: Annotated[Instant | None, Unset] = None
    sales_end_at: Annotated[Instant | None, Unset] = None
    waiting_room: Annotated[WaitingRoomOut | None, Unset] = None


class DeletedOut(CamelOut):
    success: bool
    message: str
    id_event: int


# -- tickets ---------------------------------------------------------------------------------


class ReserveIn(CamelModel):
    event_id: Id
    category_id: Id
    quantity: Quantity


class ReleaseIn(CamelModel):
    category_id: Id
    quantity: Quantity | None = None
    lock_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class ReserveOut(CamelOut):
    success: bool
    available_seats: int
    message: str
    lock_id: str
    expires_at: Instant
    event_id: int
    category_id: int
    quantity: int


class ReleaseOut(CamelOut):
    success: bool
    available_seats: int
    message: str
    released_lock_ids: list[str]
    released_quantity: int


# -- orders ----------------------------------------------------------------------------------


class OrderIn(CamelModel):
    event_id: Id
    category_id: Id
    quantity: Quantity
    notes: ShortText | None = None


class OrderWithLockIn(OrderIn):
    lock_id: Annotated[str, Field(min_length=1, max_length=128)]


class OrderOut(CamelOut):
    id: int
    user_id: int
    event_id: int
    category_id: int
    quantity: int
    unit_price: Money
    total_price: Money
    status: Literal["pending", "confirmed", "cancelled", "completed"]
    event_name: str
    category_name: str
    notes: str | None
    created_at: Instant
    updated_at: Instant


# -- waiting list ----------------------------------------------------------------------------


class WaitlistIn(CamelModel):
    quantity: Quantity


class WaitlistOut(CamelOut):
    success: bool
    message: str
    event_id: int
    category_id: int
    quantity: int
    position: int  # 1 is next in line; 0 once off the list
    waiting: int  # everyone on the list


# -- waiting room ----------------------------------------------------------------------------


class QueueOut(CamelOut):
    """A buyer's place in an event's queue; the pass once admitted."""

    success: bool
    message: str
    event_id: int
    position: int | None  # 1 is next; null before the opening draw; 0 once admitted
    ahead: int | None
    eta_seconds: float | None
    admitted: bool
    admission_pass: str | None
    pass_expires_at: Instant | None
    opens_at: Instant
    closed: bool  # sold out: the waiting lists are the way in now
    waiting: int


# -- health ----------------------------------------------------------------------------------


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: bool
    ray: bool
    # The change feed (socket updates across gateways): reported, never a reason for 503.
    realtime: bool
