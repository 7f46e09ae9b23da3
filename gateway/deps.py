"""What every route depends on: the runtime, and who is asking (only ever from the token).

Role checks and the parsing of shared parameters (ids, paging, Idempotency-Key) live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request

from gateway.errors import ApiError, invalid
from gateway.schemas import MAX_ID
from gateway.system import Runtime
from sales.identity import InvalidToken, Principal

INVALID_TOKEN = "Invalid Token!"
INSUFFICIENT_PERMISSIONS = "Insufficient permissions"
MAX_OFFSET = 1_000_000
MAX_IDEMPOTENCY_KEY = 200


# Every dependency is `async def`: FastAPI runs a plain `def` one in a thread pool, a thread
# hop per request on the hot path.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def unauthorized() -> ApiError:
    return ApiError(401, INVALID_TOKEN, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request) -> Principal:
    """Who is asking, from the `Authorization: Bearer` header only.

    One flat dependency that reads the header itself: FastAPI's security-scheme dependency
    (`HTTPBearer`) spent a tenth of a hot request on per-request introspection. The API docs
    still show the scheme (`gateway.app.document_bearer`).
    """
    runtime: Runtime = request.app.state.runtime
    return await authenticate(runtime, request.headers.get("authorization", ""))


async def authenticate(runtime: Runtime, authorization: str) -> Principal:
    """The principal of an `Authorization` header's value, or a 401 `ApiError`; a 429 when
    that user is over the per-user request limit."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized()
    try:
        principal = await runtime.auth.principal(token)
    except InvalidToken:
        raise unauthorized() from None
    runtime.limits.check_user(principal.user_id)
    return principal


Caller = Annotated[Principal, Depends(current_principal)]


async def current_organizer(caller: Caller) -> Principal:
    if not caller.is_organizer:
        raise ApiError(403, INSUFFICIENT_PERMISSIONS)
    return caller


Organizer = Annotated[Principal, Depends(current_organizer)]


async def idempotency_key(
    caller: Caller,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Replaying a request with the same key returns the first answer.",
        ),
    ] = None,
) -> str | None:
    """The ledger's request key: scoped to the caller, so two users never collide."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise invalid(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII chars")
    return f"{caller.user_id}:{key}"


RequestKey = Annotated[str | None, Depends(idempotency_key)]

# The waiting room's pass (issue 13), checked by the sales service, never here.
AdmissionPass = Annotated[
    str | None,
    Header(
        alias="X-Admission-Pass",
        description="While the event's waiting room is on: the pass the queue gave the caller.",
    ),
]

EventId = Annotated[int, Path(ge=1, le=MAX_ID, description="Event id")]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="Order id")]


# Without `limit`, a list answers one page, never everything: an event carries the live seats
# of each of its categories, so a page of events costs a feed read per category. Orders are
# lighter, and one event's orders (a sale's audit) come in one page of up to 1,000.
EVENT_PAGE = 100
ORDER_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Page:
    """`limit`/`offset`; without `limit`, the list's default page size."""

    limit: int
    offset: int


async def paging(
    limit: Annotated[int, Query(ge=1, le=EVENT_PAGE)] = EVENT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    return Page(limit, offset)


async def order_paging(
    limit: Annotated[int, Query(ge=1, le=ORDER_PAGE)] = ORDER_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    return Page(limit, offset)


Paging = Annotated[Page, Depends(paging)]
OrderPaging = Annotated[Page, Depends(order_paging)]
