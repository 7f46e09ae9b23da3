"""Holds over REST: reserve, release, and the rule that a hold is only its owner's."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import (
    MakeEvent,
    MakeUser,
    assert_error,
    available_seats,
    order_body,
    reserve,
)


async def test_reserve_and_release(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(10,))
    category = event.categories[0].id

    held = await reserve(client, buyer, event.id, category, 2)
    assert held["success"] is True and held["availableSeats"] == 8
    assert held["message"] == "Tickets reserved successfully"
    expires = datetime.fromisoformat(held["expiresAt"])
    ttl = (expires - datetime.now(UTC)).total_seconds()
    assert 0 < ttl <= live_system.settings.lock_ttl_seconds
    assert await available_seats(client, event.id) == [8]

    second = await reserve(client, buyer, event.id, category, 3)
    released = await client.post(
        "/api/events/tickets/release",
        json={"categoryId": category, "lockId": second["lockId"]},
        headers=buyer.headers,
    )
    assert released.status_code == 200, released.text
    assert released.json()["releasedLockIds"] == [second["lockId"]]
    assert released.json()["availableSeats"] == 8

    by_quantity = await client.post(
        "/api/events/tickets/release",
        json={"categoryId": category, "quantity": 2},
        headers=buyer.headers,
    )
    assert by_quantity.json()["success"] is True
    assert by_quantity.json()["availableSeats"] == 10
    assert await available_seats(client, event.id) == [10]
    nothing_left = await client.post(
        "/api/events/tickets/release",
        json={"categoryId": category, "quantity": 1},
        headers=buyer.headers,
    )
    assert_error(nothing_left, 404)


async def test_reserve_refusals(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(4,))
    other = await make_event(organizer, seats=(4,))
    category = event.categories[0].id
    path = "/api/events/tickets/reserve"
    limit = live_system.settings.max_tickets_per_request

    too_many = order_body(event.id, category, limit + 1)
    assert_error(await client.post(path, json=too_many, headers=buyer.headers), 400)
    assert_error(
        await client.post(path, json=order_body(event.id, category, 0), headers=buyer.headers), 400
    )
    assert_error(
        await client.post(path, json=order_body(event.id, category, 5), headers=buyer.headers), 409
    )
    foreign = order_body(other.id, category)  # the category belongs to another event
    assert_error(await client.post(path, json=foreign, headers=buyer.headers), 404)
    missing = order_body(event.id, 2147483000)
    assert_error(await client.post(path, json=missing, headers=buyer.headers), 404)
    assert_error(await client.post(path, json=order_body(event.id, category)), 401)
    assert await available_seats(client, event.id) == [4]  # nothing was held by any refusal
    assert await available_seats(client, other.id) == [4]


async def test_release_only_your_own(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    owner = await make_user()
    thief = await make_user()
    event = await make_event(organizer, seats=(5,))
    category = event.categories[0].id
    held = await reserve(client, owner, event.id, category, 2)

    path = "/api/events/tickets/release"
    by_lock = {"categoryId": category, "lockId": held["lockId"], "userId": owner.id}
    assert_error(await client.post(path, json=by_lock, headers=thief.headers), 403)
    by_quantity = {"categoryId": category, "quantity": 2, "userId": owner.id}
    assert_error(await client.post(path, json=by_quantity, headers=thief.headers), 404)
    assert await available_seats(client, event.id) == [3]

    neither = await client.post(path, json={"categoryId": category}, headers=owner.headers)
    assert_error(neither, 400, "Validation failed")
    unknown = {"categoryId": 2147483000, "quantity": 1}
    assert_error(await client.post(path, json=unknown, headers=owner.headers), 404)
    unknown_lock = {"categoryId": category, "lockId": "no-such-lock"}
    assert_error(await client.post(path, json=unknown_lock, headers=owner.headers), 404)
    assert await available_seats(client, event.id) == [3]
