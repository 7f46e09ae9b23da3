"""Holds over REST: reserve, release, and the rule that a hold is only its owner's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import (
    MakeEvent,
    MakeUser,
    assert_error,
    available_seats,
    order_body,
    reserve,
)

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser


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


# -- Idempotency-Key on reserve: a client that retries after a timeout holds once ------------


def _keyed(user: TestUser, key: str | bytes) -> dict[Any, Any]:
    if isinstance(key, bytes):
        return {b"Authorization": user.headers["Authorization"].encode(), b"Idempotency-Key": key}
    return {**user.headers, "Idempotency-Key": key}


async def _reserve_keyed(
    client: httpx.AsyncClient, user: TestUser, key: str | bytes, body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/api/events/tickets/reserve", json=body, headers=_keyed(user, key))


def _live_lock_ids(live: LiveSystem, user: TestUser) -> list[str]:
    """The user's live holds as the gateway knows them (what `get-my-locks` answers)."""
    return sorted(hold.lock_id for hold in live.runtime.sales.holds_of(user.id))


async def test_a_replayed_reserve_returns_the_first_hold(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, alice, bob = await make_user(Role.ORGANIZER), await make_user(), await make_user()
    event = await make_event(organizer, seats=(10,))
    body = order_body(event.id, event.categories[0].id, 2)
    key = f"r-{uuid.uuid4().hex}"

    first = await _reserve_keyed(client, alice, key, body)
    again = await _reserve_keyed(client, alice, key, body)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["lockId"] == first.json()["lockId"]
    assert await available_seats(client, event.id) == [8]
    assert _live_lock_ids(live_system, alice) == [first.json()["lockId"]]

    # Someone else's identity with the same key is someone else's request.
    bobs = await _reserve_keyed(client, bob, key, body)
    assert bobs.status_code == 201 and bobs.json()["lockId"] != first.json()["lockId"]
    assert await available_seats(client, event.id) == [6]

    # Without a key every request is a new hold, as before.
    await reserve(client, alice, event.id, event.categories[0].id, 2)
    assert await available_seats(client, event.id) == [4]


async def test_a_flood_of_one_keyed_reserve_holds_once(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, alice = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(5,))
    body = order_body(event.id, event.categories[0].id, 3)
    key = f"f-{uuid.uuid4().hex}"
    answers = await asyncio.gather(*(_reserve_keyed(client, alice, key, body) for _ in range(30)))
    assert {answer.status_code for answer in answers} == {201}, [a.text for a in answers]
    assert len({answer.json()["lockId"] for answer in answers}) == 1
    assert await available_seats(client, event.id) == [2]


async def test_a_replay_at_the_live_hold_cap_still_gets_its_hold(
    start_system: Callable[..., Awaitable[LiveSystem]],
) -> None:
    live = await start_system(max_live_holds_per_user=2)
    organizer, alice = await create_user(live, Role.ORGANIZER), await create_user(live)
    event = await create_event(live, organizer, (10,))
    body = order_body(event.id, event.categories[0].id, 1)
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        await reserve(http, alice, event.id, event.categories[0].id, 1)
        key = f"cap-{uuid.uuid4().hex}"
        first = await _reserve_keyed(http, alice, key, body)
        assert first.status_code == 201, first.text
        assert_error(await _reserve_keyed(http, alice, f"new-{uuid.uuid4().hex}", body), 409)
        replay = await _reserve_keyed(http, alice, key, body)
        assert replay.status_code == 201, replay.text
        assert replay.json()["lockId"] == first.json()["lockId"]
        assert await available_seats(http, event.id) == [8]


async def test_absurd_reserve_keys_are_refused_and_hold_nothing(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, alice = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(4,))
    body = order_body(event.id, event.categories[0].id, 1)
    for bad in [b"", b"x" * 201, b"tab\there", b"caf\xe9"]:
        assert_error(await _reserve_keyed(client, alice, bad, body), 400)
    assert await available_seats(client, event.id) == [4]
    assert _live_lock_ids(live_system, alice) == []
