"""One rule, one answer: the same bad hold request over REST and over Socket.IO is refused with
the same message, because both adapters call the same sales service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser
from tests.realtime.conftest import Connect


@pytest.mark.parametrize(
    "case",
    ["too many", "unknown event", "category of another event", "inactive event", "sold out"],
)
async def test_rest_and_socket_refuse_a_bad_hold_alike(
    live_system: LiveSystem,
    make_user: MakeUser,
    make_event: MakeEvent,
    connect: Connect,
    case: str,
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(1,))
    other = await make_event(organizer, seats=(5,))
    buyer = await make_user()
    body: dict[str, Any] = {
        "eventId": event.id,
        "categoryId": event.categories[0].id,
        "quantity": 1,
    }
    async with httpx.AsyncClient(base_url=live_system.api, timeout=30) as http:
        if case == "too many":
            body["quantity"] = 11
        elif case == "unknown event":
            body["eventId"] = 2_000_000_000
        elif case == "category of another event":
            body["categoryId"] = other.categories[0].id
        elif case == "inactive event":
            deactivated = await http.put(
                f"/api/events/{event.id}", json={"isActive": False}, headers=organizer.headers
            )
            assert deactivated.status_code == 200, deactivated.text
        else:
            taken = await http.post(
                "/api/events/tickets/reserve", json=body, headers=(await make_user()).headers
            )
            assert taken.status_code == 201, taken.text

        rest = await http.post("/api/events/tickets/reserve", json=body, headers=buyer.headers)
    assert 400 <= rest.status_code < 500, rest.text
    socket = await connect(live_system.api, buyer.token)
    await socket.emit("lock-tickets", body)
    reply = await socket.next("lock-tickets-response")

    assert reply["success"] is False
    assert reply["message"] == rest.json()["error"]
