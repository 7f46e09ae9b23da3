"""Two gateways on one database and one Ray namespace: a socket on one sees what happens
through the other, because the fan-out comes from the category actors' feed, not a handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.realtime.conftest import Connect


async def test_a_lock_and_an_order_through_a_reach_sockets_on_b(
    start_system: Callable[..., Awaitable[LiveSystem]], connect: Connect
) -> None:
    a = await start_system()
    b = await start_system(ray_namespace=a.settings.ray_namespace)
    assert a.api != b.api and a.runtime.seats is not b.runtime.seats

    event = await create_event(a, await create_user(a, Role.ORGANIZER), (8,))
    category = event.categories[0]
    buyer, watcher = await create_user(a), await create_user(a)

    watcher_on_b = await connect(b.api, watcher.token)
    await watcher_on_b.emit("join-event-room", {"eventId": event.id})
    await watcher_on_b.next("joined-event-room")
    initial = await watcher_on_b.next("availability-update")
    assert initial["availableTickets"] == 8
    buyer_on_b = await connect(b.api, buyer.token)
    buyer_on_a = await connect(a.api, buyer.token)

    # A lock through A's socket: B's room hears of it.
    lock = {"eventId": event.id, "categoryId": category.id, "quantity": 3}
    await buyer_on_a.emit("lock-tickets", lock)
    reply = await buyer_on_a.next("lock-tickets-response")
    assert reply["success"] is True
    update = await watcher_on_b.next("availability-update", lambda u: u["lockedTickets"] == 3)
    assert (update["eventId"], update["categoryId"], update["availableTickets"]) == (
        event.id,
        category.id,
        5,
    )

    # B knows the hold too: the buyer's socket on B lists it.
    await buyer_on_b.emit("get-my-locks")
    locks = (await buyer_on_b.next("my-locks-response"))["locks"]
    assert [lk["lockId"] for lk in locks] == [reply["lockId"]]

    # An order through A's REST API: the buyer's socket on B gets order-completed.
    async with httpx.AsyncClient(base_url=a.api) as http:
        answer = await http.post(
            "/api/orders/with-lock",
            headers=buyer.headers,
            json=lock | {"lockId": reply["lockId"]},
        )
    assert answer.status_code == 201, answer.text
    completed = await buyer_on_b.next("order-completed")
    assert completed["orderId"] == answer.json()["id"]
    sold = await watcher_on_b.next("availability-update", lambda u: u["lockedTickets"] == 0)
    assert sold["availableTickets"] == 5
    assert not watcher_on_b.received["order-completed"]
