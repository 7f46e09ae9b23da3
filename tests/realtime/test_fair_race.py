"""maxPerUser under a race: 50 buyers, each with 3 sockets and REST calls spread over two
gateway processes, all at once against a limit of 2. The category actor decides each command
in one synchronous step, so nobody ends above 2 however the requests interleave."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from persistence import ledger
from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_user
from tests.realtime.conftest import WAIT_SECONDS, Connect
from tests.realtime.test_two_processes import second_process

if TYPE_CHECKING:
    from persistence.records import OrderRecord
    from tests.fixtures.system import TestUser

BUYERS = 50
LIMIT = 2


async def test_fifty_buyers_racing_on_two_processes_never_pass_the_limit(
    start_system: Callable[..., Awaitable[LiveSystem]], connect: Connect, tmp_path: Path
) -> None:
    a = await start_system()
    organizer = await create_user(a, Role.ORGANIZER)
    buyers = [await create_user(a) for _ in range(BUYERS)]
    async with httpx.AsyncClient(base_url=a.api, timeout=60) as http:
        created = await http.post(
            "/api/events",
            headers=organizer.headers,
            json={
                "eventName": "Race",
                "eventCategory": "Music",
                "eventDate": "2031-07-15T18:00:00Z",
                "ticketCategories": [
                    {"categoryName": "Floor", "price": 10, "totalSeats": 500, "maxPerUser": LIMIT}
                ],
            },
        )
        assert created.status_code == 201, created.text
    event_id = created.json()["idEvent"]
    category_id = created.json()["ticketCategories"][0]["id"]
    where = {"eventId": event_id, "categoryId": category_id, "quantity": 1}

    async with (
        second_process(a, tmp_path / "b") as b_api,
        httpx.AsyncClient(base_url=a.api, timeout=60) as on_a,
        httpx.AsyncClient(base_url=b_api, timeout=60) as on_b,
    ):
        apis = (a.api, b_api, a.api)
        sockets = {buyer.id: [await connect(api, buyer.token) for api in apis] for buyer in buyers}

        async def race(buyer: TestUser) -> int:
            """Everything one buyer tries at once; answers how many tickets they were granted."""
            for socket in sockets[buyer.id]:
                for _ in range(2):
                    await socket.emit("lock-tickets", where)
            answers = await asyncio.gather(
                on_a.post("/api/events/tickets/reserve", json=where, headers=buyer.headers),
                on_b.post("/api/events/tickets/reserve", json=where, headers=buyer.headers),
                on_b.post("/api/orders", json=where, headers=buyer.headers),
            )
            granted = 0
            for answer in answers:
                assert answer.status_code in (201, 409), answer.text
                granted += answer.status_code == 201
            for socket in sockets[buyer.id]:
                replies = await socket.count("lock-tickets-response", 2)
                granted += sum(reply["success"] is True for reply in replies)
            return granted

        async with asyncio.timeout(WAIT_SECONDS * 8):
            granted = await asyncio.gather(*(race(buyer) for buyer in buyers))

    assert max(granted) == LIMIT  # the limit was reached...
    assert all(count <= LIMIT for count in granted)  # ...and never passed

    # The ledger agrees: nobody bought more than the limit either.
    async def ledger_orders() -> list[OrderRecord]:
        async with a.runtime.db.connect() as conn:
            return await ledger.list_orders(conn, event_id=event_id)

    orders = await a.call(ledger_orders())
    bought: dict[int, int] = {}
    for order in orders:
        bought[order.user_id] = bought.get(order.user_id, 0) + order.quantity
    assert all(quantity <= LIMIT for quantity in bought.values())
    await connect.close()
