"""A replayed Idempotency-Key answers the first order before any rule is checked again: even
once the event is off sale, the replay gets its order and a new request is refused.
(Found by `make mutate`: skipping the up-front key lookup in `Sales.place_order` survived,
as the actor's own dedup answered the replays the suite made.)"""

from __future__ import annotations

import uuid

import httpx

from sales.identity import Role
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, available_seats, order_body


async def test_a_replay_answers_its_order_after_the_event_went_off_sale(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))
    body = order_body(event.id, event.categories[0].id, 2)
    keyed = {**buyer.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = await client.post("/api/orders", json=body, headers=keyed)
    assert first.status_code == 201, first.text

    off = await client.put(
        f"/api/events/{event.id}", json={"isActive": False}, headers=organizer.headers
    )
    assert off.status_code == 200, off.text

    replay = await client.post("/api/orders", json=body, headers=keyed)
    assert replay.status_code == 201, replay.text
    assert replay.json()["id"] == first.json()["id"]
    fresh = {**buyer.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    refused = await client.post("/api/orders", json=body, headers=fresh)
    assert_error(refused, 409)
    assert refused.json()["error"] == "This event is not active"
    assert await available_seats(client, event.id) == [3]
