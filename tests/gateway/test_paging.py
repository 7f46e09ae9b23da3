"""A list without `limit` answers one page, never everything: 100 events, 1,000 orders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from persistence import catalog, ledger
from persistence.records import CategoryDraft, EventDraft, OrderDraft
from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error


async def test_event_lists_answer_a_page_of_100_without_a_limit(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    kind = f"Paged-{uuid.uuid4().hex[:8]}"
    draft = EventDraft(
        event_name="Paged",
        event_category=kind,
        description="",
        event_date=datetime.now(UTC) + timedelta(days=40),
        location="Hall",
        categories=(CategoryDraft("A", Decimal("1.00"), 1, ""),),
    )

    async def insert() -> None:
        async with live_system.runtime.db.begin() as conn:
            for _ in range(101):
                await catalog.create_event(conn, draft, organizer.id)

    await live_system.call(insert())
    first = (await client.get(f"/api/events/category/{kind}")).json()
    assert len(first) == 100
    rest = (await client.get(f"/api/events/category/{kind}?offset=100")).json()
    assert len(rest) == 1
    assert {e["idEvent"] for e in first}.isdisjoint(e["idEvent"] for e in rest)
    assert len((await client.get("/api/events")).json()) <= 100
    assert len((await client.get("/api/events/upcoming")).json()) <= 100
    assert_error(await client.get(f"/api/events/category/{kind}?limit=101"), 400)


async def test_order_lists_answer_a_page_of_1000_without_a_limit(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(2000,))
    category = event.categories[0]
    drafts = [
        (
            OrderDraft(buyer.id, event.id, category.id, 1, category.price, event.event_name, "A"),
            None,
        )
        for _ in range(1001)
    ]

    async def insert() -> None:
        async with live_system.runtime.db.begin() as conn:
            await ledger.insert_orders(conn, drafts)

    await live_system.call(insert())
    for path in ["/api/orders", "/api/orders/all", f"/api/orders/event/{event.id}"]:
        for who in (buyer, organizer):
            page = await client.get(path, headers=who.headers)
            assert page.status_code == 200, page.text
            expected = 0 if (who is organizer and path == "/api/orders") else 1000
            assert len(page.json()) == expected, (path, who.role)
    last = await client.get("/api/orders?offset=1000", headers=buyer.headers)
    assert len(last.json()) == 1
    assert_error(await client.get("/api/orders?limit=1001", headers=buyer.headers), 400)
