"""The organizer's live sales dashboard: `join-sales-dashboard` then `sales-dashboard` updates
from the feed, for the event's organizer only; anyone else gets `error` and nothing more."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from persistence.records import EventRecord
from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.realtime.conftest import Connect, Recorder

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser

MakeUser = Callable[..., Awaitable["TestUser"]]
MakeEvent = Callable[..., Awaitable[EventRecord]]
NOT_THE_ORGANIZER = "Only the organizer who created this event can see this"


async def board(client: Recorder, event_id: Any) -> dict[str, Any]:
    await client.emit("join-sales-dashboard", {"eventId": event_id})
    first: dict[str, Any] = await client.next("sales-dashboard")
    return first


async def test_the_organizer_sees_sales_as_they_happen(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, seats=(10, 5))
    floor, balcony = event.categories
    watcher = await connect(live_system.api, organizer.token)
    first = await board(watcher, event.id)
    assert first["eventId"] == event.id and first["eventName"] == event.event_name
    assert [c["categoryId"] for c in first["categories"]] == [floor.id, balcony.id]
    assert first["totals"] == {
        "total": 15,
        "sold": 0,
        "held": 0,
        "available": 15,
        "waiting": 0,
        "revenue": "0.00",
        "ordersPerMinute": 0,
    }

    async with httpx.AsyncClient(base_url=live_system.api, timeout=30) as http:
        held = await http.post(
            "/api/events/tickets/reserve",
            json={"eventId": event.id, "categoryId": balcony.id, "quantity": 2},
            headers=buyer.headers,
        )
        assert held.status_code == 201, held.text
        update = await watcher.next(
            "sales-dashboard", lambda u: u["totals"]["held"] == 2 and u["totals"]["sold"] == 0
        )
        assert update["categories"][1]["held"] == 2
        bought = await http.post(
            "/api/orders",
            json={"eventId": event.id, "categoryId": floor.id, "quantity": 3},
            headers=buyer.headers,
        )
        assert bought.status_code == 201, bought.text
    sold = await watcher.next(
        "sales-dashboard",
        lambda u: u["totals"]["sold"] == 3 and u["totals"]["ordersPerMinute"] == 1,
    )
    assert sold["categories"][0] | {"categoryName": "-"} == {
        "categoryId": floor.id,
        "categoryName": "-",
        "price": f"{floor.price:.2f}",
        "total": 10,
        "sold": 3,
        "held": 0,
        "available": 7,
        "waiting": 0,
        "revenue": f"{floor.price * 3:.2f}",
    }
    assert sold["totals"]["revenue"] == f"{floor.price * 3:.2f}"
    assert sold["totals"]["available"] == 10  # 15 - 3 sold - 2 held

    # A second watcher of the same event starts from the numbers as they are now.
    late = await connect(live_system.api, organizer.token)
    now = await board(late, event.id)
    assert (now["totals"]["sold"], now["totals"]["ordersPerMinute"]) == (3, 1)


async def test_nobody_else_may_watch(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(5,))
    for stranger in (await make_user(), await make_user(Role.ORGANIZER)):
        client = await connect(live_system.api, stranger.token)
        await client.emit("join-sales-dashboard", {"eventId": event.id, "userId": organizer.id})
        refused = await client.next("error")
        assert refused == {"message": NOT_THE_ORGANIZER}
        # Nothing more: a sale in the event never reaches this socket.
        async with httpx.AsyncClient(base_url=live_system.api, timeout=30) as http:
            answer = await http.post(
                "/api/orders",
                json={"eventId": event.id, "categoryId": event.categories[0].id, "quantity": 1},
                headers=stranger.headers,
            )
            assert answer.status_code == 201
        await client.round_trip()
        await client.round_trip()
        assert client.received["sales-dashboard"] == []


async def test_absurd_event_ids_and_floods_are_refused(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(5,))
    client = await connect(live_system.api, organizer.token)
    absurd: list[Any] = [
        {"eventId": 10**30},
        {"eventId": 2**31},
        {"eventId": -1},
        {"eventId": 0},
        {"eventId": "drop table"},
        {"eventId": True},
        {"eventId": None},
        {},
        "just a string",
        [event.id],
        None,
    ]
    for payload in absurd:
        await client.emit("join-sales-dashboard", payload)
        refused = await client.next("error")
        assert refused["message"].startswith("Invalid payload"), (payload, refused)
    # A numeric string is read as its number (as join-event-room does): someone else's event.
    await client.emit("join-sales-dashboard", {"eventId": "1"})
    assert (await client.next("error"))["message"] in {NOT_THE_ORGANIZER, "Event not found"}
    await client.emit("join-sales-dashboard", {"eventId": 2_147_483_000})
    assert await client.next("error") == {"message": "Event not found"}
    await client.round_trip()
    assert client.received["sales-dashboard"] == []

    # A flood: the socket's rate limit answers, and the socket still works afterwards.
    flooder = await connect(live_system.api, organizer.token)
    for _ in range(200):
        await flooder.emit("join-sales-dashboard", {"eventId": event.id})
    await flooder.until(
        lambda: any(e["message"] == "Rate limit exceeded" for e in flooder.received["error"])
    )
    await flooder.next("sales-dashboard")  # the joins the bucket let through are answered
    answered = len(flooder.received["sales-dashboard"])
    assert answered < 200
    # Once its bucket refills, the same socket is answered again.
    async with asyncio.timeout(15):
        while len(flooder.received["sales-dashboard"]) == answered:
            await flooder.emit("join-sales-dashboard", {"eventId": event.id})
            await asyncio.sleep(0.2)
