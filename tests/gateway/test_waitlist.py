"""The waiting list over REST: join only when sold out, once; FIFO offers as seats come free;
durable across a full restart; every bad input a clear 4xx that changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from actors.messages import CategoryChanged, FeedItem
from sales.identity import Role
from tests.fixtures.ray_runtime import kill_namespace
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import (
    MakeEvent,
    MakeUser,
    assert_error,
    available_seats,
    order_body,
    poll,
    reserve,
)

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser


def _path(event_id: int, category_id: int) -> str:
    return f"/api/events/{event_id}/categories/{category_id}/waitlist"


async def _join(
    http: httpx.AsyncClient, user: TestUser, event_id: int, category_id: int, quantity: Any = 1
) -> httpx.Response:
    return await http.post(
        _path(event_id, category_id), json={"quantity": quantity}, headers=user.headers
    )


async def _place(
    http: httpx.AsyncClient, user: TestUser, event_id: int, category_id: int
) -> int | None:
    """The user's position, or None when not on the list."""
    response = await http.get(_path(event_id, category_id), headers=user.headers)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    position: int = response.json()["position"]
    return position


async def test_join_only_when_sold_out_then_offers_in_order(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    holder, first, second, bystander = (
        await make_user(),
        await make_user(),
        await make_user(),
        await make_user(),
    )
    event = await make_event(organizer, (2,))
    category = event.categories[0]
    ids = (event.id, category.id)

    early = await _join(client, first, *ids)
    assert_error(early, 409)
    assert "2 tickets are available" in early.json()["error"]

    holds = [await reserve(client, holder, *ids), await reserve(client, holder, *ids)]
    joined = await _join(client, first, *ids)
    assert joined.status_code == 201, joined.text
    assert joined.json() | {"message": ""} == {
        "success": True,
        "message": "",
        "eventId": event.id,
        "categoryId": category.id,
        "quantity": 1,
        "position": 1,
        "waiting": 1,
    }
    assert (await _join(client, second, *ids)).json()["position"] == 2
    twice = await _join(client, first, *ids)
    assert_error(twice, 409)
    assert await _place(client, first, *ids) == 1
    assert await _place(client, second, *ids) == 2
    assert await _place(client, bystander, *ids) is None
    assert_error(await client.delete(_path(*ids), headers=bystander.headers), 404)

    # A seat comes free: it goes to the head of the list, never back on sale.
    await _release(client, holder, category.id, holds[0]["lockId"])
    assert await _place(client, first, *ids) is None
    assert await _place(client, second, *ids) == 1
    assert await available_seats(client, event.id) == [0]
    refused = await client.post(
        "/api/events/tickets/reserve", json=order_body(*ids), headers=bystander.headers
    )
    assert_error(refused, 409)
    await _release(client, holder, category.id, holds[1]["lockId"])
    assert await _place(client, second, *ids) is None
    assert await available_seats(client, event.id) == [0]


async def _release(http: httpx.AsyncClient, user: TestUser, category_id: int, lock_id: str) -> None:
    released = await http.post(
        "/api/events/tickets/release",
        json={"categoryId": category_id, "lockId": lock_id},
        headers=user.headers,
    )
    assert released.status_code == 200, released.text


async def test_leaving_the_list(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, holder, first, second = (
        await make_user(Role.ORGANIZER),
        await make_user(),
        await make_user(),
        await make_user(),
    )
    event = await make_event(organizer, (1,))
    ids = (event.id, event.categories[0].id)
    await reserve(client, holder, *ids)
    assert (await _join(client, first, *ids)).status_code == 201
    assert (await _join(client, second, *ids)).status_code == 201
    left = await client.delete(_path(*ids), headers=first.headers)
    assert left.status_code == 200, left.text
    assert left.json()["position"] == 0
    assert await _place(client, first, *ids) is None
    assert await _place(client, second, *ids) == 1
    assert_error(await client.delete(_path(*ids), headers=first.headers), 404)
    # Leaving lets one join again, at the back.
    assert (await _join(client, first, *ids)).json()["position"] == 2


async def test_bad_joins_change_nothing(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, holder, buyer = (
        await make_user(Role.ORGANIZER),
        await make_user(),
        await make_user(),
    )
    event = await make_event(organizer, (3, 5))
    sold_out, other = event.categories
    await reserve(client, holder, event.id, sold_out.id, quantity=3)
    for quantity in (0, -1, 10**9, "1", True, None, 1.5):
        assert_error(await _join(client, buyer, event.id, sold_out.id, quantity), 400)
    assert_error(await _join(client, buyer, event.id, sold_out.id, 11), 400)  # per request
    assert_error(await _join(client, buyer, event.id, sold_out.id, 4), 409)  # 3 in all
    assert_error(await _join(client, buyer, event.id, 2**31 - 1), 404)
    assert_error(await _join(client, buyer, 2**31 - 1, sold_out.id), 404)
    assert_error(await _join(client, buyer, event.id, 0), 400)
    foreign = await make_event(organizer, (1,))
    assert_error(await _join(client, buyer, foreign.id, sold_out.id), 404)  # wrong event
    assert_error(await _join(client, buyer, event.id, other.id), 409)  # seats on sale
    unauthenticated = await client.post(_path(event.id, sold_out.id), json={"quantity": 1})
    assert_error(unauthenticated, 401)
    assert await _place(client, buyer, event.id, sold_out.id) is None
    assert await available_seats(client, event.id) == [0, 5]


async def test_a_flood_of_joins_by_one_user_makes_one_entry(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer, holder, buyer = (
        await make_user(Role.ORGANIZER),
        await make_user(),
        await make_user(),
    )
    event = await make_event(organizer, (1,))
    ids = (event.id, event.categories[0].id)
    await reserve(client, holder, *ids)
    answers = await asyncio.gather(*(_join(client, buyer, *ids) for _ in range(40)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 39
    listed = await client.get(_path(*ids), headers=buyer.headers)
    assert listed.json()["waiting"] == 1


async def test_the_list_survives_a_full_restart_in_order(
    start_system: Callable[..., Awaitable[LiveSystem]],
) -> None:
    before = await start_system()
    organizer, holder = await create_user(before, Role.ORGANIZER), await create_user(before)
    waiting = [await create_user(before) for _ in range(3)]
    event = await create_event(before, organizer, (2,))
    ids = (event.id, event.categories[0].id)
    async with httpx.AsyncClient(base_url=before.api, timeout=30) as http:
        order = await http.post("/api/orders", json=order_body(*ids, 2), headers=holder.headers)
        assert order.status_code == 201, order.text
        for user in waiting:
            assert (await _join(http, user, *ids)).status_code == 201

    # Everything stops: the gateway and every actor of its namespace.
    await asyncio.to_thread(before._stop)
    before._stop = lambda: None  # stopped once already; the fixture's teardown must not again
    kill_namespace(before.settings.ray_namespace)

    after = await start_system(jwt_secret=before.settings.jwt_secret)
    async with httpx.AsyncClient(base_url=after.api, timeout=30) as http:
        assert [await _place(http, user, *ids) for user in waiting] == [1, 2, 3]
        cancelled = await http.post(
            f"/api/orders/{order.json()['id']}/cancel", headers=holder.headers
        )
        assert cancelled.status_code == 200, cancelled.text

        async def two_served() -> bool:
            return [await _place(http, user, *ids) for user in waiting] == [None, None, 1]

        await poll(two_served)
        assert await available_seats(http, event.id) == [0]


async def test_a_refused_join_on_a_cold_category_never_shows_its_seats_set_aside(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    """A fresh actor wakes itself as it starts; had that activation loaded the row of a join
    not yet decided, the feed would show every free seat set aside for it (0 on sale) until
    the join was refused. Every state the feed carries for these categories is recorded."""
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = await make_event(organizer, (3,) * 8)
    watched = {category.id for category in event.categories}
    shown: list[CategoryChanged] = []

    def record(item: FeedItem) -> None:
        if isinstance(item, CategoryChanged) and item.availability.category_id in watched:
            shown.append(item)

    unsubscribe = live_system.runtime.seats.subscribe(record)
    try:
        refusals = await asyncio.gather(
            *(_join(client, buyer, event.id, category.id) for category in event.categories)
        )
        assert {answer.status_code for answer in refusals} == {409}, [a.text for a in refusals]
        await poll(lambda: _all_shown(shown, watched))
    finally:
        unsubscribe()
    assert [s.availability for s in shown if s.availability.available != 3] == []
    assert await available_seats(client, event.id) == [3] * 8


async def _all_shown(shown: list[CategoryChanged], watched: set[int]) -> bool:
    return {item.availability.category_id for item in shown} == watched
