"""`GET /api/events/{id}/audit`: the event's audit trail, newest first, for its organizer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from gateway.deps import Caller, EventId
from gateway.schemas import CamelOut
from sales.organizer import Organizing

router = APIRouter(prefix="/events", tags=["organizer"])

AUDIT_PAGE = 100


async def get_organizing(request: Request) -> Organizing:
    organizing: Organizing = request.app.state.organizing
    return organizing


OrganizingDep = Annotated[Organizing, Depends(get_organizing)]


class AuditEntryOut(CamelOut):
    id: int
    event_id: int
    actor_id: int | None
    action: str
    details: dict[str, Any]
    created_at: datetime


class AuditPageOut(CamelOut):
    items: list[AuditEntryOut]
    next_before: int | None


@router.get(
    "/{id}/audit",
    response_model=AuditPageOut,
    responses={403: {"description": "Not the organizer who created the event"}},
)
async def audit_trail(
    id: EventId,
    caller: Caller,
    organizing: OrganizingDep,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE)] = AUDIT_PAGE,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> AuditPageOut:
    page = await organizing.audit_trail(caller, id, limit=limit, before_id=before)
    return AuditPageOut(
        items=[
            AuditEntryOut(
                id=entry.id,
                event_id=entry.event_id,
                actor_id=entry.actor_id,
                action=entry.action.value,
                details=entry.details,
                created_at=entry.created_at,
            )
            for entry in page.entries
        ],
        next_before=page.next_before,
    )
