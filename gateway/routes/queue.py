"""`/api/events/{eventId}/queue`: an event's virtual waiting room over REST (join, where am I,
with the admission pass once admitted). Every rule is the waiting room service's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from gateway.deps import Caller, EventId, RuntimeDep
from gateway.schemas import QueueOut
from sales.admission import QueueStatus

router = APIRouter(prefix="/events/{event_id}/queue", tags=["waiting room"])


def shape_status(place: QueueStatus, message: str) -> QueueOut:
    return QueueOut(
        success=True,
        message=message,
        event_id=place.event_id,
        position=place.position,
        ahead=place.ahead,
        eta_seconds=place.eta_seconds,
        admitted=place.admitted,
        admission_pass=place.admission_pass,
        pass_expires_at=None
        if place.pass_expires_at is None
        else datetime.fromtimestamp(place.pass_expires_at, UTC),
        opens_at=datetime.fromtimestamp(place.opens_at, UTC),
        closed=place.closed,
        waiting=place.waiting,
    )


def _message(place: QueueStatus) -> str:
    if place.admitted:
        return "You are admitted: buy with your admission pass"
    if place.closed:
        return "Sold out: join a category's waiting list instead"
    return "You are in the queue"


@router.post("", status_code=status.HTTP_201_CREATED, response_model=QueueOut)
async def join_queue(event_id: EventId, caller: Caller, runtime: RuntimeDep) -> QueueOut:
    place = await runtime.rooms.join(caller, event_id)
    return shape_status(place, _message(place))


@router.get("", response_model=QueueOut)
async def queue_place(event_id: EventId, caller: Caller, runtime: RuntimeDep) -> QueueOut:
    place = await runtime.rooms.status(caller, event_id)
    return shape_status(place, _message(place))
