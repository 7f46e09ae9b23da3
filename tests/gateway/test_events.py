"""The catalogue over REST: organizer writes, public reads, creator-only edits, live seats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from persistence.models import events
from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, order_body, reserve

EVENT_KEYS = {
    "idEvent",
    "eventName",
    "eventCategory",
    "description",
    "eventDate",
    "location",
    "isActive",
    "createdBy",
    "ticketCategories",
    "createdAt",
    "updatedAt",
}
CATEGORY_KEYS = {
    "id",
    "categoryName",
    "price",
    "totalSeats",
    "reservedSeats",
    "availableSeats",
    "description",
    "isActive",
    "eventId",
}


def _guide_event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventName": "Summer Music Festival",
        "eventCategory": "Music",
        "description": "Annual summer music festival",
        "eventDate": "2031-07-15T18:00:00Z",
        "location": "Central Park",
        "ticketCategories": [
            {
                "categoryName": "VIP",
                "price": 150.00,
                "totalSeats": 100,
                "description": "VIP access with backstage pass",
            },
            {
                "categoryName": "General",
                "price": 75.5,
                "totalSeats": 500,
                "description": "General admission",
            },
        ],
        "createdBy": 999999,
    }
    body.update(changes)
    return body


async def test_create_event_as_the_guide_shows(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    response = await client.post("/api/events", json=_guide_event(), headers=organizer.headers)
    assert response.status_code == 201, response.text
    event = response.json()
    assert set(event) == EVENT_KEYS
    assert event["createdBy"] == organizer.id  # never from the body
    assert event["eventDate"] == "2031-07-15T18:00:00Z"
    assert event["isActive"] is True
    vip, general = event["ticketCategories"]
    assert set(vip) == CATEGORY_KEYS
    assert (vip["categoryName"], vip["price"], vip["totalSeats"]) == ("VIP", 150, 100)
    assert (vip["reservedSeats"], vip["availableSeats"]) == (0, 100)
    assert general["price"] == 75.5 and general["eventId"] == event["idEvent"]
    for stamp in (event["createdAt"], event["updatedAt"]):
        assert datetime.fromisoformat(stamp).tzinfo is not None

    again = await client.get(f"/api/events/{event['idEvent']}")
    assert again.json() == event


async def test_only_organizers_create(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    assistant = await make_user(Role.ASSISTANT)
    response = await client.post("/api/events", json=_guide_event(), headers=assistant.headers)
    assert response.json() == {
        "statusCode": 403,
        "message": "Forbidden",
        "error": "Insufficient permissions",
    }
    assert_error(await client.post("/api/events", json=_guide_event()), 401)


async def _events_created_by(live: LiveSystem, user_id: int) -> int:
    """How many events the database holds by `user_id`, however many others it holds."""

    async def count() -> int:
        statement = select(func.count()).select_from(events).where(events.c.created_by == user_id)
        async with live.runtime.db.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    return await live.call(count())


async def test_event_validation(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    bad = [
        _guide_event(eventDate="2031-07-15T18:00:00"),  # no time zone
        _guide_event(eventDate="15/07/2031"),
        _guide_event(eventDate=1700000000),
        _guide_event(eventName=""),
        _guide_event(eventName="   "),
        _guide_event(eventName="x" * 201),
        _guide_event(ticketCategories=[]),
        _guide_event(ticketCategories=[{"categoryName": "A", "price": -1, "totalSeats": 1}]),
        _guide_event(ticketCategories=[{"categoryName": "A", "price": 1.234, "totalSeats": 1}]),
        _guide_event(ticketCategories=[{"categoryName": "A", "price": 1, "totalSeats": 0}]),
        _guide_event(ticketCategories=[{"categoryName": "A", "price": 1, "totalSeats": 2.5}]),
        _guide_event(
            ticketCategories=[
                {"categoryName": "A", "price": 1, "totalSeats": 1},
                {"categoryName": "a", "price": 2, "totalSeats": 1},
            ]
        ),
    ]
    for body in bad:
        response = await client.post("/api/events", json=body, headers=organizer.headers)
        assert_error(response, 400, "Validation failed")
    assert await _events_created_by(live_system, organizer.id) == 0  # nothing was written
    # ...where a valid one is seen, whatever else the database holds.
    created = await client.post("/api/events", json=_guide_event(), headers=organizer.headers)
    assert created.status_code == 201, created.text
    assert await _events_created_by(live_system, organizer.id) == 1


async def test_public_reads(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    future = await make_event(organizer, seats=(5, 7), days_ahead=10)
    past = await make_event(organizer, seats=(3,), days_ahead=-10)
    every = [e["idEvent"] for e in (await client.get("/api/events")).json()]
    assert future.id in every and past.id in every
    upcoming = [e["idEvent"] for e in (await client.get("/api/events/upcoming")).json()]
    assert future.id in upcoming and past.id not in upcoming
    music = (await client.get("/api/events/category/Music")).json()
    assert {future.id, past.id} <= {e["idEvent"] for e in music}
    assert all(e["eventCategory"] == "Music" for e in music)
    assert (await client.get("/api/events/category/NoSuchCategory")).json() == []
    tickets = (await client.get(f"/api/events/{future.id}/tickets")).json()
    assert [t["totalSeats"] for t in tickets] == [5, 7]
    assert all(set(t) == CATEGORY_KEYS for t in tickets)
    assert_error(await client.get("/api/events/2147483000"), 404, "Not Found")
    assert (await client.get("/api/events/2147483000")).json()["error"] == "Event not found"
    assert_error(await client.get("/api/events/2147483000/tickets"), 404)

    first = (await client.get("/api/events?limit=1")).json()
    second = (await client.get("/api/events?limit=1&offset=1")).json()
    assert len(first) == 1 and len(second) == 1 and first != second


async def test_reserved_seats_are_held_plus_sold(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(10,))
    category = event.categories[0].id
    await reserve(client, buyer, event.id, category, 3)
    bought = await client.post(
        "/api/orders", json=order_body(event.id, category, 2), headers=buyer.headers
    )
    assert bought.status_code == 201
    (seats,) = (await client.get(f"/api/events/{event.id}/tickets")).json()
    assert (seats["reservedSeats"], seats["availableSeats"]) == (5, 5)


async def test_update_by_creator_only(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    creator = await make_user(Role.ORGANIZER)
    rival = await make_user(Role.ORGANIZER)
    assistant = await make_user()
    event = await make_event(creator)
    path = f"/api/events/{event.id}"
    change = {
        "eventName": "Renamed",
        "location": None,
        "isActive": False,
        "eventDate": "2032-01-01T10:00:00+02:00",
        "createdBy": rival.id,
    }
    assert_error(await client.put(path, json=change, headers=rival.headers), 403)
    assert_error(await client.put(path, json=change, headers=assistant.headers), 403)
    assert_error(await client.put(path, json=change), 401)
    assert (await client.get(path)).json()["eventName"] == event.event_name

    response = await client.put(path, json=change, headers=creator.headers)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["eventName"] == "Renamed" and updated["location"] is None
    assert updated["isActive"] is False and updated["createdBy"] == creator.id
    assert updated["eventDate"] == "2032-01-01T08:00:00Z"
    assert updated["eventCategory"] == event.event_category  # untouched
    assert datetime.fromisoformat(updated["updatedAt"]) >= event.updated_at

    for bad in [{"eventName": None}, {"isActive": "yes"}, {"eventDate": "tomorrow"}]:
        assert_error(await client.put(path, json=bad, headers=creator.headers), 400)
    assert_error(
        await client.put("/api/events/2147483000", json=change, headers=creator.headers), 404
    )


async def test_inactive_event_is_not_on_sale(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    creator = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(creator)
    await client.put(f"/api/events/{event.id}", json={"isActive": False}, headers=creator.headers)
    body = order_body(event.id, event.categories[0].id)
    assert_error(await client.post("/api/orders", json=body, headers=buyer.headers), 409)
    response = await client.post("/api/events/tickets/reserve", json=body, headers=buyer.headers)
    assert_error(response, 409)


async def test_delete_rules(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    creator = await make_user(Role.ORGANIZER)
    rival = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    empty, sold, held = [await make_event(creator) for _ in range(3)]

    assert_error(await client.delete(f"/api/events/{empty.id}", headers=rival.headers), 403)
    assert_error(await client.delete(f"/api/events/{empty.id}", headers=buyer.headers), 403)
    response = await client.delete(f"/api/events/{empty.id}", headers=creator.headers)
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert_error(await client.get(f"/api/events/{empty.id}"), 404)
    assert_error(await client.delete(f"/api/events/{empty.id}", headers=creator.headers), 404)

    order = await client.post(
        "/api/orders", json=order_body(sold.id, sold.categories[0].id), headers=buyer.headers
    )
    assert order.status_code == 201
    assert_error(await client.delete(f"/api/events/{sold.id}", headers=creator.headers), 409)
    # The order survives; the organizer can still deactivate the event.
    assert (await client.get(f"/api/orders/{order.json()['id']}", headers=buyer.headers)).is_success
    deactivated = await client.put(
        f"/api/events/{sold.id}", json={"isActive": False}, headers=creator.headers
    )
    assert deactivated.json()["isActive"] is False

    await reserve(client, buyer, held.id, held.categories[0].id)
    assert_error(await client.delete(f"/api/events/{held.id}", headers=creator.headers), 409)
    assert (await client.get(f"/api/events/{held.id}")).status_code == 200


async def test_upcoming_uses_now(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    organizer = await make_user(Role.ORGANIZER)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await client.post(
        "/api/events", json=_guide_event(eventDate=soon), headers=organizer.headers
    )
    upcoming = (await client.get("/api/events/upcoming")).json()
    assert created.json()["idEvent"] in {e["idEvent"] for e in upcoming}
