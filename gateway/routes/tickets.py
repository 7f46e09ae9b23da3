"""`/api/events/tickets`: holds over REST, the same holds the Socket.IO `lock-tickets` makes.

A hold belongs to the token's user; only that user can release it or turn it into an order.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status
from starlette.responses import Response

from gateway.deps import AdmissionPass, Caller, RequestKey, RuntimeDep
from gateway.errors import invalid
from gateway.schemas import ReleaseIn, ReleaseOut, ReserveIn, ReserveOut
from gateway.system import Runtime
from sales.identity import Principal

router = APIRouter(prefix="/events/tickets", tags=["tickets"])


@router.post("/reserve", status_code=status.HTTP_201_CREATED, response_model=ReserveOut)
async def reserve(
    body: ReserveIn,
    caller: Caller,
    runtime: RuntimeDep,
    request_key: RequestKey,
    admission_pass: AdmissionPass = None,
) -> Response:
    return await hold_seats(runtime, caller, body, admission_pass, request_key)


async def hold_seats(
    runtime: Runtime,
    caller: Principal,
    body: ReserveIn,
    admission_pass: str | None = None,
    request_key: str | None = None,
) -> Response:
    """The reserve route's answer, also served by `gateway.hotpaths` without FastAPI (which
    sends a request carrying an admission pass or an Idempotency-Key on to this route)."""
    placed = await runtime.sales.hold(
        caller,
        event_id=body.event_id,
        category_id=body.category_id,
        quantity=body.quantity,
        admission_pass=admission_pass,
        request_key=request_key,
    )
    return ReserveOut(
        success=True,
        available_seats=placed.availability.available,
        message="Tickets reserved successfully",
        lock_id=placed.hold.lock_id,
        expires_at=datetime.fromtimestamp(placed.hold.expires_at, UTC),
        event_id=placed.hold.event_id,
        category_id=placed.hold.category_id,
        quantity=placed.hold.quantity,
    ).respond(status.HTTP_201_CREATED)


@router.post("/release", response_model=ReleaseOut)
async def release(body: ReleaseIn, caller: Caller, runtime: RuntimeDep) -> ReleaseOut:
    if body.lock_id is None and body.quantity is None:
        raise invalid("quantity or lockId is required")
    released = await runtime.sales.release(
        caller, category_id=body.category_id, lock_id=body.lock_id, quantity=body.quantity
    )
    quantity = (
        sum(hold.quantity for hold in released.holds)
        if body.lock_id is not None or body.quantity is None
        else body.quantity
    )
    return ReleaseOut(
        success=True,
        available_seats=released.availability.available,
        message="Tickets released successfully",
        released_lock_ids=[hold.lock_id for hold in released.holds],
        released_quantity=quantity,
    )
