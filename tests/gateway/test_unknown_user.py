"""A token we signed for a user id that does not exist is refused on every REST path (the
reserve fast path and FastAPI's routes), and changes nothing."""

from __future__ import annotations

import httpx

from sales.identity import Role
from tests.fixtures.ghosts import ghost_token
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, available_seats, order_body

ORIGIN = {"Origin": "http://localhost:3000"}  # sends the reserve to FastAPI, not the fast path


async def test_a_signed_token_of_a_user_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(5,))
    body = order_body(event.id, event.categories[0].id)
    for role in Role:
        ghost = {"Authorization": f"Bearer {await ghost_token(live_system, role)}"}

        for headers in (ghost, {**ghost, **ORIGIN}):
            reserve = await client.post("/api/events/tickets/reserve", json=body, headers=headers)
            assert_error(reserve, 401, "Unauthorized")
            assert_error(await client.post("/api/orders", json=body, headers=headers), 401)
        assert_error(await client.get("/api/orders", headers=ghost), 401)
        created = await client.post(
            "/api/events",
            json={
                "eventName": "Ghost gig",
                "eventCategory": "Music",
                "eventDate": "2031-07-15T18:00:00Z",
                "location": "Nowhere",
                "ticketCategories": [{"categoryName": "A", "price": 1, "totalSeats": 1}],
            },
            headers=ghost,
        )
        assert_error(created, 401)

    assert await available_seats(client, event.id) == [5]
    # The same request with a real user's token is served: the refusal was the user's.
    buyer = await make_user()
    served = await client.post("/api/events/tickets/reserve", json=body, headers=buyer.headers)
    assert served.status_code == 201, served.text
