"""`/api/events/{eventId}/categories/{categoryId}/waitlist`: a buyer's place on a sold-out
category's waiting list (join, leave, where am I). Every rule is the sales service's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from gateway.deps import Caller, EventId, RuntimeDep
from gateway.schemas import MAX_ID, WaitlistIn, WaitlistOut
from sales.service import WaitlistPlace

router = APIRouter(prefix="/events/{event_id}/categories/{category_id}/waitlist", tags=["waitlist"])

CategoryId = Annotated[int, Path(ge=1, le=MAX_ID, description="Ticket category id")]


def _shaped(place: WaitlistPlace, message: str) -> WaitlistOut:
    return WaitlistOut(
        success=True,
        message=message,
        event_id=place.event_id,
        category_id=place.category_id,
        quantity=place.quantity,
        position=place.position,
        waiting=place.waiting,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WaitlistOut)
async def join_waitlist(
    event_id: EventId,
    category_id: CategoryId,
    body: WaitlistIn,
    caller: Caller,
    runtime: RuntimeDep,
) -> WaitlistOut:
    place = await runtime.sales.join_waitlist(
        caller, event_id=event_id, category_id=category_id, quantity=body.quantity
    )
    return _shaped(place, "Joined the waiting list")


@router.get("", response_model=WaitlistOut)
async def waitlist_place(
    event_id: EventId, category_id: CategoryId, caller: Caller, runtime: RuntimeDep
) -> WaitlistOut:
    place = await runtime.sales.waitlist_place(caller, event_id=event_id, category_id=category_id)
    return _shaped(place, "You are on the waiting list")


@router.delete("", response_model=WaitlistOut)
async def leave_waitlist(
    event_id: EventId, category_id: CategoryId, caller: Caller, runtime: RuntimeDep
) -> WaitlistOut:
    place = await runtime.sales.leave_waitlist(caller, event_id=event_id, category_id=category_id)
    return _shaped(place, "Left the waiting list")
