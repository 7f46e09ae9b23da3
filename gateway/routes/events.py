"""`/api/events`: the catalogue (public reads, organizer writes) and each category's live seats.

`reservedSeats` is held plus sold from the engine's feed, never a stored counter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import TypeAdapter
from starlette.responses import Response

from actors.messages import Availability
from gateway.deps import EventId, Organizer, Paging, RuntimeDep
from gateway.errors import ApiError
from gateway.schemas import (
    DeletedOut,
    EventIn,
    EventOut,
    EventUpdateIn,
    TicketCategoryOut,
    WaitingRoomIn,
    WaitingRoomOut,
)
from gateway.system import Runtime
from persistence import audit, catalog
from persistence.errors import EventHasOrders
from persistence.records import CategoryDraft, EventDraft, EventRecord, WaitingRoomConfig
from sales.directory import Listing
from sales.identity import Principal
from sales.service import EVENT_NOT_FOUND

router = APIRouter(prefix="/events", tags=["events"])

NOT_THE_CREATOR = "Only the organizer who created this event can change it"
Category = Annotated[str, Path(min_length=1, max_length=100)]


async def shape_events(runtime: Runtime, events: Sequence[EventRecord]) -> list[EventOut]:
    ids = [category.id for event in events for category in event.categories]
    live = await runtime.sales.availability(ids) if ids else {}
    return [
        EventOut(
            id_event=event.id,
            event_name=event.event_name,
            event_category=event.event_category,
            description=event.description,
            event_date=event.event_date,
            location=event.location,
            is_active=event.is_active,
            created_by=event.created_by,
            ticket_categories=_categories_of(event, live),
            created_at=event.created_at,
            updated_at=event.updated_at,
            sales_start_at=event.sales_start_at,
            sales_end_at=event.sales_end_at,
            waiting_room=_room_out(event.waiting_room),
        )
        for event in events
    ]


def _categories_of(event: EventRecord, live: Mapping[int, Availability]) -> list[TicketCategoryOut]:
    categories: list[TicketCategoryOut] = []
    for category in event.categories:
        seats = live.get(category.id)
        reserved = seats.held + seats.sold if seats is not None else 0
        categories.append(
            TicketCategoryOut(
                id=category.id,
                category_name=category.category_name,
                price=category.price,
                total_seats=category.total_seats,
                reserved_seats=reserved,
                available_seats=max(category.total_seats - reserved, 0),
                description=category.description,
                is_active=category.is_active,
                event_id=category.event_id,
                sales_start_at=category.sales_start_at,
                sales_end_at=category.sales_end_at,
                max_per_user=category.max_per_user,
                waiting_count=len(seats.waiting) if seats is not None else 0,
            )
        )
    return categories


def _room_out(room: WaitingRoomConfig | None) -> WaitingRoomOut | None:
    if room is None:
        return None
    return WaitingRoomOut(
        enabled=room.enabled, admit_per_second=room.admit_per_second, opens_at=room.opens_at
    )


def _room_in(room: WaitingRoomIn | None) -> WaitingRoomConfig | None:
    if room is None:
        return None
    return WaitingRoomConfig(room.enabled, room.admit_per_second, room.opens_at)


async def _load(runtime: Runtime, event_id: int) -> EventRecord:
    event = await runtime.directory.event(event_id)
    if event is None:
        raise ApiError(404, EVENT_NOT_FOUND)
    return event


async def _owned(runtime: Runtime, organizer: Principal, event_id: int) -> EventRecord:
    event = await _load(runtime, event_id)
    if event.created_by != organizer.user_id:
        raise ApiError(403, NOT_THE_CREATOR)
    return event


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EventOut)
async def create_event(body: EventIn, organizer: Organizer, runtime: RuntimeDep) -> EventOut:
    draft = EventDraft(
        event_name=body.event_name,
        event_category=body.event_category,
        description=body.description,
        event_date=body.event_date,
        location=body.location,
        categories=tuple(
            CategoryDraft(
                c.category_name,
                c.price,
                c.total_seats,
                c.description,
                sales_start_at=c.sales_start_at,
                sales_end_at=c.sales_end_at,
                max_per_user=c.max_per_user,
            )
            for c in body.ticket_categories
        ),
        sales_start_at=body.sales_start_at,
        sales_end_at=body.sales_end_at,
        waiting_room=_room_in(body.waiting_room),
    )
    async with runtime.db.begin() as conn:
        event = await catalog.create_event(conn, draft, organizer.user_id)
        await audit.event_created(conn, event, organizer.user_id)
    await runtime.directory.event_changed(event.id)  # every gateway's list pages now miss it
    return (await shape_events(runtime, [event]))[0]


_EVENTS = TypeAdapter(list[EventOut])


async def _listed(runtime: Runtime, listing: Listing) -> Response:
    """A page of events, serialized once here: FastAPI would validate the 100 events of a
    page against the route's `response_model` again (which still documents it)."""
    events = await shape_events(runtime, await runtime.directory.events(listing))
    return Response(_EVENTS.dump_json(events, by_alias=True), media_type="application/json")


@router.get("", response_model=list[EventOut])
async def list_events(runtime: RuntimeDep, page: Paging) -> Response:
    return await _listed(runtime, Listing(page.limit, page.offset))


@router.get("/upcoming", response_model=list[EventOut])
async def upcoming_events(runtime: RuntimeDep, page: Paging) -> Response:
    return await _listed(runtime, Listing(page.limit, page.offset, upcoming=True))


@router.get("/category/{category}", response_model=list[EventOut])
async def events_in_category(category: Category, runtime: RuntimeDep, page: Paging) -> Response:
    return await _listed(runtime, Listing(page.limit, page.offset, event_category=category))


@router.get("/{id}", response_model=EventOut)
async def get_event(id: EventId, runtime: RuntimeDep) -> EventOut:
    return (await shape_events(runtime, [await _load(runtime, id)]))[0]


@router.get("/{id}/tickets", response_model=list[TicketCategoryOut])
async def event_tickets(id: EventId, runtime: RuntimeDep) -> Response:
    return await tickets_of(runtime, id)


_TICKETS = TypeAdapter(list[TicketCategoryOut])


async def tickets_of(runtime: Runtime, event_id: int) -> Response:
    """The ticket route's work, also served by `gateway.hotpaths` without FastAPI: serialized
    once here (the route's `response_model` still documents it)."""
    event = await _load(runtime, event_id)
    live = await runtime.sales.availability([category.id for category in event.categories])
    return Response(
        _TICKETS.dump_json(_categories_of(event, live), by_alias=True),
        media_type="application/json",
    )


@router.put("/{id}", response_model=EventOut)
async def update_event(
    id: EventId, body: EventUpdateIn, organizer: Organizer, runtime: RuntimeDep
) -> EventOut:
    event = await _owned(runtime, organizer, id)
    changes = body.changes()
    runtime.sales.check_window_change(event, changes)
    if "waiting_room" in changes:
        changes |= catalog.waiting_room_columns(_room_in(changes.pop("waiting_room")))
    if changes:
        async with runtime.db.begin() as conn:
            updated = await catalog.update_event(conn, id, changes)
            if updated is not None:
                await audit.event_updated(conn, event, changes, organizer.user_id)
        if updated is None:
            raise ApiError(404, EVENT_NOT_FOUND)
        await runtime.directory.event_changed(id)
        event = updated
    return (await shape_events(runtime, [event]))[0]


@router.delete("/{id}", response_model=DeletedOut)
async def delete_event(id: EventId, organizer: Organizer, runtime: RuntimeDep) -> DeletedOut:
    event = await _owned(runtime, organizer, id)
    live = await runtime.sales.availability([c.id for c in event.categories])
    if any(seats.held for seats in live.values()):
        raise ApiError(409, "Tickets of this event are on hold; try again once they are released")
    has_orders = ApiError(409, "This event has orders; deactivate it instead (PUT isActive: false)")
    try:
        async with runtime.db.begin() as conn:
            if await catalog.event_has_orders(conn, id):
                raise has_orders
            # An order committed since the check makes the delete fail (the orders' foreign
            # key), so it is never orphaned.
            deleted = await catalog.delete_event(conn, id)
            if deleted:
                await audit.event_deleted(conn, event, organizer.user_id)
    except EventHasOrders:
        raise has_orders from None
    if not deleted:
        raise ApiError(404, EVENT_NOT_FOUND)
    await runtime.directory.event_changed(id)
    return DeletedOut(success=True, message="Event deleted successfully", id_event=id)
