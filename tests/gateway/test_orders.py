"""Orders over REST: buying, buying with a hold, who sees what, cancelling once, replays
by Idempotency-Key, and many buyers racing for the last seats."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence import ledger
from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, order_body, poll, reserve

ORDER_KEYS = {
    "id",
    "userId",
    "eventId",
    "categoryId",
    "quantity",
    "unitPrice",
    "totalPrice",
    "status",
    "eventName",
    "categoryName",
    "notes",
    "createdAt",
    "updatedAt",
}


async def _sold(live: LiveSystem, category_id: int) -> int:
    async def count(db: AsyncEngine) -> int:
        async with db.connect() as conn:
            return await ledger.sold_seats(conn, category_id)

    return await live.call(count(live.runtime.db))


async def _orders_with_key(live: LiveSystem, key: str) -> Any:
    async def find(db: AsyncEngine) -> Any:
        async with db.connect() as conn:
            return await ledger.find_order_by_request_key(conn, key)

    return await live.call(find(live.runtime.db))


async def test_buy_prices_from_the_catalogue_then_completed(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(10,))
    category = event.categories[0]
    body = order_body(
        event.id,
        category.id,
        2,
        notes="Special seating request",
        unitPrice=0.01,
        totalPrice=0.02,
        userId=organizer.id,
        eventName="Free",
        status="completed",
    )
    response = await client.post("/api/orders", json=body, headers=buyer.headers)
    assert response.status_code == 201, response.text
    order = response.json()
    assert set(order) == ORDER_KEYS
    assert order["userId"] == buyer.id
    assert order["unitPrice"] == float(category.price)
    assert order["totalPrice"] == float(category.price) * 2
    assert (order["eventName"], order["categoryName"]) == (event.event_name, category.category_name)
    assert order["notes"] == "Special seating request"
    assert order["status"] == "pending"

    async def completed() -> bool:
        got = await client.get(f"/api/orders/{order['id']}", headers=buyer.headers)
        return bool(got.json()["status"] == "completed")

    await poll(completed)
    assert await _sold(live_system, category.id) == 2


async def test_buy_refusals_change_nothing(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(3,))
    other = await make_event(organizer, seats=(3,))
    category = event.categories[0].id
    limit = live_system.settings.max_tickets_per_request
    for body, status in [
        (order_body(event.id, category, 4), 409),
        (order_body(event.id, category, limit + 1), 400),
        (order_body(other.id, category), 404),
        (order_body(event.id, 2147483000), 404),
        (order_body(2147483000, category), 404),
    ]:
        assert_error(await client.post("/api/orders", json=body, headers=buyer.headers), status)
    assert_error(await client.post("/api/orders", json=order_body(event.id, category)), 401)
    assert await _sold(live_system, category) == 0
    assert (await client.get("/api/orders", headers=buyer.headers)).json() == []


async def test_order_with_lock(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    thief = await make_user()
    event = await make_event(organizer, seats=(6,))
    category = event.categories[0].id
    held = await reserve(client, buyer, event.id, category, 2)
    body = order_body(event.id, category, 2, lockId=held["lockId"])

    assert_error(await client.post("/api/orders/with-lock", json=body, headers=thief.headers), 403)
    mismatch = {**body, "quantity": 3}
    assert_error(
        await client.post("/api/orders/with-lock", json=mismatch, headers=buyer.headers), 400
    )
    missing_lock = order_body(event.id, category, 2)
    assert_error(
        await client.post("/api/orders/with-lock", json=missing_lock, headers=buyer.headers), 400
    )

    placed = await client.post("/api/orders/with-lock", json=body, headers=buyer.headers)
    assert placed.status_code == 201, placed.text
    assert placed.json()["userId"] == buyer.id and placed.json()["quantity"] == 2
    # A lock is used at most once: sending it again answers the order it already made.
    again = await client.post("/api/orders/with-lock", json=body, headers=buyer.headers)
    assert again.status_code == 201 and again.json()["id"] == placed.json()["id"]
    assert await _sold(live_system, category) == 2
    (seats,) = (await client.get(f"/api/events/{event.id}/tickets")).json()
    assert (seats["reservedSeats"], seats["availableSeats"]) == (2, 4)


async def test_expired_lock_is_refused(
    start_system: Any, make_user: MakeUser, make_event: MakeEvent
) -> None:
    live = await start_system(lock_ttl_seconds=0.5)
    organizer = await make_user(Role.ORGANIZER, system=live)
    buyer = await make_user(system=live)
    event = await make_event(organizer, seats=(5,), system=live)
    category = event.categories[0].id
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        held = await reserve(http, buyer, event.id, category, 2)

        async def released() -> bool:
            seats = (await http.get(f"/api/events/{event.id}/tickets")).json()[0]
            return bool(seats["availableSeats"] == 5)

        await poll(released)
        body = order_body(event.id, category, 2, lockId=held["lockId"])
        late = await http.post("/api/orders/with-lock", json=body, headers=buyer.headers)
    assert late.status_code in (404, 409), late.text
    assert_error(late, late.status_code)
    assert await _sold(live, category) == 0


async def test_visibility(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    creator = await make_user(Role.ORGANIZER)
    rival = await make_user(Role.ORGANIZER)
    alice = await make_user()
    bob = await make_user()
    event = await make_event(creator, seats=(10,))
    rivals_event = await make_event(rival, seats=(10,))
    category = event.categories[0].id

    async def buy(user: Any, event_id: int, category_id: int) -> int:
        response = await client.post(
            "/api/orders", json=order_body(event_id, category_id), headers=user.headers
        )
        assert response.status_code == 201, response.text
        order_id: int = response.json()["id"]
        return order_id

    a = await buy(alice, event.id, category)
    b = await buy(bob, event.id, category)
    r = await buy(rival, event.id, category)
    own = await buy(creator, rivals_event.id, rivals_event.categories[0].id)

    async def ids(user: Any, path: str) -> set[int]:
        response = await client.get(path, headers=user.headers)
        assert response.status_code == 200, response.text
        return {order["id"] for order in response.json()}

    assert await ids(alice, "/api/orders") == {a}
    assert await ids(alice, "/api/orders/all") == {a}
    assert await ids(alice, f"/api/orders/event/{event.id}") == {a}
    assert await ids(creator, "/api/orders") == {own}
    assert await ids(creator, "/api/orders/all") == {a, b, r, own}
    assert await ids(creator, f"/api/orders/event/{event.id}") == {a, b, r}
    assert await ids(rival, "/api/orders/all") >= {r}
    assert a not in await ids(rival, "/api/orders/all")
    assert await ids(rival, f"/api/orders/event/{event.id}") == {r}

    assert (await client.get(f"/api/orders/{a}", headers=alice.headers)).json()["id"] == a
    assert (await client.get(f"/api/orders/{a}", headers=creator.headers)).json()["id"] == a
    assert_error(await client.get(f"/api/orders/{a}", headers=bob.headers), 404)
    assert_error(await client.get(f"/api/orders/{a}", headers=rival.headers), 404)
    assert_error(await client.get(f"/api/orders/{a}"), 401)
    assert_error(await client.get("/api/orders/event/2147483000", headers=alice.headers), 404)
    assert len((await client.get("/api/orders/all?limit=2", headers=creator.headers)).json()) == 2


async def test_cancel_once(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    creator = await make_user(Role.ORGANIZER)
    alice = await make_user()
    bob = await make_user()
    event = await make_event(creator, seats=(5,))
    category = event.categories[0].id
    first = (
        await client.post(
            "/api/orders", json=order_body(event.id, category, 3), headers=alice.headers
        )
    ).json()
    second = (
        await client.post(
            "/api/orders", json=order_body(event.id, category, 2), headers=alice.headers
        )
    ).json()
    assert await _sold(live_system, category) == 5

    assert_error(await client.post(f"/api/orders/{first['id']}/cancel", headers=bob.headers), 404)
    cancelled = await client.post(f"/api/orders/{first['id']}/cancel", headers=alice.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert_error(await client.post(f"/api/orders/{first['id']}/cancel", headers=alice.headers), 409)
    assert await _sold(live_system, category) == 2
    (seats,) = (await client.get(f"/api/events/{event.id}/tickets")).json()
    assert seats["availableSeats"] == 3

    # The event's organizer may cancel a buyer's order too.
    by_creator = await client.post(f"/api/orders/{second['id']}/cancel", headers=creator.headers)
    assert by_creator.json()["status"] == "cancelled"
    assert await _sold(live_system, category) == 0
    assert_error(await client.post("/api/orders/2147483000/cancel", headers=alice.headers), 404)


async def test_idempotent_replays(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    alice = await make_user()
    bob = await make_user()
    event = await make_event(organizer, seats=(20,))
    category = event.categories[0].id
    key = f"k-{uuid.uuid4().hex}"
    body = order_body(event.id, category, 2)

    headers = {**alice.headers, "Idempotency-Key": key}
    first = await client.post("/api/orders", json=body, headers=headers)
    replay = await client.post("/api/orders", json=body, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert await _sold(live_system, category) == 2

    # The same key from another user is another request.
    other = await client.post(
        "/api/orders", json=body, headers={**bob.headers, "Idempotency-Key": key}
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert await _sold(live_system, category) == 4

    # A replay through with-lock answers the first order too, whatever the lock.
    held = await reserve(client, alice, event.id, category, 1)
    lock_key = {**alice.headers, "Idempotency-Key": f"lock-{uuid.uuid4().hex}"}
    lock_body = order_body(event.id, category, 1, lockId=held["lockId"])
    placed = await client.post("/api/orders/with-lock", json=lock_body, headers=lock_key)
    replayed = await client.post("/api/orders/with-lock", json=lock_body, headers=lock_key)
    assert placed.status_code == replayed.status_code == 201
    assert replayed.json()["id"] == placed.json()["id"]
    assert await _sold(live_system, category) == 5

    token = alice.headers["Authorization"].encode()
    for bad in [b"", b"x" * 201, b"tab\there", b"caf\xe9"]:
        raw = {b"Authorization": token, b"Idempotency-Key": bad}
        response = await client.post("/api/orders", json=body, headers=raw)
        assert_error(response, 400)
    assert await _sold(live_system, category) == 5


async def test_concurrent_replays_make_one_order(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    alice = await make_user()
    event = await make_event(organizer, seats=(3,))
    category = event.categories[0].id
    key = f"c-{uuid.uuid4().hex}"
    headers = {**alice.headers, "Idempotency-Key": key}
    body = order_body(event.id, category, 2)
    responses = await asyncio.gather(
        *(client.post("/api/orders", json=body, headers=headers) for _ in range(12))
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _sold(live_system, category) == 2
    stored = await _orders_with_key(live_system, f"{alice.id}:{key}")
    assert stored.id == responses[0].json()["id"]


async def test_race_for_the_last_seats(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(10,))
    category = event.categories[0].id
    buyers = [await make_user() for _ in range(40)]
    body = order_body(event.id, category, 1)
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=live_system.api, timeout=60, limits=limits) as http:
        responses = await asyncio.gather(
            *(http.post("/api/orders", json=body, headers=b.headers) for b in buyers)
        )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 409: 30}, statuses
    for refused in (r for r in responses if r.status_code == 409):
        assert_error(refused, 409, "Conflict")
    winners = {r.json()["userId"] for r in responses if r.status_code == 201}
    assert len(winners) == 10
    assert await _sold(live_system, category) == 10
    (seats,) = (await client.get(f"/api/events/{event.id}/tickets")).json()
    assert (seats["reservedSeats"], seats["availableSeats"]) == (10, 0)
