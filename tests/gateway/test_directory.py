"""The gateway's read-through directory: an edit through one gateway reaches every other, a
crowd listing events costs one query per page, and a signed token whose user does not exist is
refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import sqlalchemy

from sales.directory import LISTING_CAPACITY, LISTING_LIFETIME_SECONDS
from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, order_body, poll, reserve


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


def _names(listed: httpx.Response) -> dict[int, str]:
    assert listed.status_code == 200, listed.text
    return {event["idEvent"]: event["eventName"] for event in listed.json()}


async def test_list_pages_follow_creates_edits_and_deletes_on_every_gateway(
    live_system: LiveSystem,
    start_system: Callable[..., Awaitable[LiveSystem]],
    make_user: MakeUser,
) -> None:
    """Each gateway keeps the pages it listed; a change through any gateway reaches them through
    the feed, not by the pages growing old (their lifetime is set past the test here)."""
    other = await start_system(ray_namespace=live_system.settings.ray_namespace)
    for system in (live_system, other):
        system.runtime.directory.listing_lifetime = 3600.0
    organizer = await make_user(Role.ORGANIZER)
    page = "/api/events?limit=100&offset=0"
    async with httpx.AsyncClient(timeout=30) as http:
        # A page far past the test's events would not change: list the page the new one is on.
        before = _names(await http.get(f"{other.api}{page}"))
        created = await http.post(
            f"{live_system.api}/api/events",
            json={
                "eventName": "Listed at once",
                "eventCategory": f"Listing-{organizer.id}",
                "description": "",
                "eventDate": "2000-01-01T00:00:00Z",  # first by date: on the first page
                "location": "Hall",
                "ticketCategories": [{"categoryName": "A", "price": 10, "totalSeats": 5}],
            },
            headers=organizer.headers,
        )
        assert created.status_code == 201, created.text
        event_id = created.json()["idEvent"]
        assert event_id not in before
        assert _names(await http.get(f"{live_system.api}{page}"))[event_id] == "Listed at once"

        async def listed_on_b(name: str | None) -> bool:
            return _names(await http.get(f"{other.api}{page}")).get(event_id) == name

        await poll(lambda: listed_on_b("Listed at once"), within=5)
        renamed = await http.put(
            f"{live_system.api}/api/events/{event_id}",
            json={"eventName": "Renamed"},
            headers=organizer.headers,
        )
        assert renamed.status_code == 200, renamed.text
        await poll(lambda: listed_on_b("Renamed"), within=5)
        deleted = await http.delete(
            f"{live_system.api}/api/events/{event_id}", headers=organizer.headers
        )
        assert deleted.status_code == 200, deleted.text
        await poll(lambda: listed_on_b(None), within=5)


async def test_a_crowd_listing_the_same_page_costs_one_query(
    live_system: LiveSystem, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    kind = f"Crowded-{organizer.id}"
    created = await client.post(
        "/api/events",
        json={
            "eventName": "Crowded",
            "eventCategory": kind,
            "description": "",
            "eventDate": "2030-01-01T00:00:00Z",
            "location": "Hall",
            "ticketCategories": [{"categoryName": "A", "price": 10, "totalSeats": 3}],
        },
        headers=organizer.headers,
    )
    assert created.status_code == 201, created.text
    event_id, category_id = created.json()["idEvent"], created.json()["ticketCategories"][0]["id"]
    directory = live_system.runtime.directory
    directory.listing_lifetime = 3600.0
    queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM events" in statement:
            queries.append(statement)

    engine = live_system.runtime.db.sync_engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", count)
    try:
        page = f"/api/events/category/{kind}"
        answers = await asyncio.gather(*(client.get(page) for _ in range(200)))
        assert {answer.status_code for answer in answers} == {200}
        assert len({answer.text for answer in answers}) == 1
        assert [e["idEvent"] for e in answers[0].json()] == [event_id]
        assert len(queries) == 1, queries
        # The kept page still shows live seats: a hold shows at once.
        await reserve(client, await make_user(), event_id, category_id, 2)
        queries.clear()
        listed = (await client.get(page)).json()
        assert queries == []
        assert listed[0]["ticketCategories"][0]["availableSeats"] == 1
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", count)
        directory.listing_lifetime = LISTING_LIFETIME_SECONDS


async def test_a_flood_of_distinct_pages_keeps_at_most_the_capacity(
    live_system: LiveSystem, client: httpx.AsyncClient
) -> None:
    directory = live_system.runtime.directory
    directory.listing_capacity = 50
    try:
        pages = [f"/api/events/upcoming?limit=1&offset={n}" for n in range(500_000, 500_300)]
        for start in range(0, len(pages), 50):
            answers = await asyncio.gather(*(client.get(p) for p in pages[start : start + 50]))
            assert {answer.status_code for answer in answers} == {200}
            assert all(answer.json() == [] for answer in answers)
        assert len(directory._listings) <= 50
        absurd = await client.get("/api/events/upcoming?limit=1&offset=99999999999999999999")
        assert_error(absurd, 400)
    finally:
        directory.listing_capacity = LISTING_CAPACITY
