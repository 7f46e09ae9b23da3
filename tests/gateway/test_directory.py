"""The gateway's read-through directory: an edit through one gateway reaches every other,
and a signed token whose user does not exist is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, order_body, poll


async def test_deactivation_through_one_gateway_stops_sales_on_another(
    live_system: LiveSystem,
    start_system: Callable[..., Awaitable[LiveSystem]],
    make_user: MakeUser,
    make_event: MakeEvent,
) -> None:
    other = await start_system(ray_namespace=live_system.settings.ray_namespace)
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(10,))
    body = order_body(event.id, event.categories[0].id, 1)
    async with httpx.AsyncClient(timeout=30) as http:
        # Gateway B reads (and caches) the event while it is on sale.
        on_sale = await http.post(
            f"{other.api}/api/events/tickets/reserve", json=body, headers=buyer.headers
        )
        assert on_sale.status_code == 201, on_sale.text
        edited = await http.put(
            f"{live_system.api}/api/events/{event.id}",
            json={"isActive": False},
            headers=organizer.headers,
        )
        assert edited.status_code == 200, edited.text

        async def refused_on_b() -> httpx.Response | None:
            response = await http.post(
                f"{other.api}/api/events/tickets/reserve", json=body, headers=buyer.headers
            )
            return response if response.status_code != 201 else None

        refused = await poll(refused_on_b, within=5)
        assert_error(refused, 409)
        assert "not active" in refused.json()["error"]


async def test_token_of_a_user_that_does_not_exist_is_refused(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(5,))
    ghost = live_system.runtime.tokens.issue(2_000_000_000, Role.ASSISTANT)
    headers = {"Authorization": f"Bearer {ghost}"}
    async with httpx.AsyncClient(base_url=live_system.api, timeout=30) as http:
        for path in ("/api/orders", "/api/events/tickets/reserve"):
            body = order_body(event.id, event.categories[0].id, 1)
            assert_error(await http.post(path, json=body, headers=headers), 401)
        assert_error(await http.get("/api/user", headers=headers), 401)
        tickets = (await http.get(f"/api/events/{event.id}/tickets")).json()
    assert tickets[0]["availableSeats"] == 5
