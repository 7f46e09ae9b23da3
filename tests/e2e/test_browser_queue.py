"""The waiting room on the browser page in a real headless Chromium: the queue screen with the
buyer's place, a progress bar and an ETA, then straight into the event once admitted, where the
pass goes with the lock and the purchase."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from playwright.async_api import async_playwright, expect

from sales.identity import Role
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, open_page, pytestmark
from tests.fixtures.system import LiveSystem

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser

__all__ = ["pytestmark"]


async def test_the_queue_screen_counts_down_then_lets_the_buyer_in(
    live_system: LiveSystem, make_user: Callable[..., Awaitable[TestUser]]
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    opens = datetime.now(UTC) + timedelta(hours=1)
    room: dict[str, Any] = {
        "enabled": True,
        "admitPerSecond": 1,
        "opensAt": opens.isoformat().replace("+00:00", "Z"),
    }
    body = {
        "eventName": f"Queued {datetime.now(UTC).timestamp()}",
        "eventCategory": "Music",
        "eventDate": "2031-07-15T18:00:00Z",
        "ticketCategories": [{"categoryName": "Floor", "price": 30, "totalSeats": 5}],
        "waitingRoom": room,
    }
    async with httpx.AsyncClient(base_url=live_system.api, timeout=30) as http:
        response = await http.post("/api/events", json=body, headers=organizer.headers)
        assert response.status_code == 201, response.text
        event = response.json()
        event_id, cid = event["idEvent"], event["ticketCategories"][0]["id"]
        # Someone else joins first; the draw decides who goes first, the page shows either.
        other = await make_user()
        joined = await http.post(f"/api/events/{event_id}/queue", headers=other.headers)
        assert joined.status_code == 201, joined.text
    buyer = await make_user()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await open_page(browser, live_system.api, buyer)
            await page.get_by_test_id(f"join-event-{event_id}").click()
            panel = page.get_by_test_id("queue-panel")
            await expect(panel).to_be_visible(timeout=WAIT_MS)
            await expect(page.get_by_test_id("categories")).to_be_hidden()
            await expect(page.get_by_test_id("queue-position")).to_have_text(
                "2 in the queue", timeout=WAIT_MS
            )
            await expect(page.get_by_test_id("queue-eta")).to_contain_text("drawn at random")
            # The organizer opens the sale now.
            room["opensAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            async with httpx.AsyncClient(base_url=live_system.api, timeout=30) as http:
                opened = await http.put(
                    f"/api/events/{event_id}",
                    json={"waitingRoom": room},
                    headers=organizer.headers,
                )
                assert opened.status_code == 200, opened.text
            # Admitted: straight into the event, the pass goes with the lock and the order.
            await expect(panel).to_be_hidden(timeout=2 * WAIT_MS)
            await expect(page.get_by_test_id("categories")).to_be_visible()
            await expect(page.get_by_test_id(f"available-{cid}")).to_have_text(
                re.compile(r"^[45]$"), timeout=WAIT_MS
            )
            await page.get_by_test_id(f"lock-{cid}").click()
            await expect(page.get_by_test_id("lock")).to_have_count(1, timeout=WAIT_MS)
            await page.get_by_test_id("lock").get_by_test_id("buy").click()
            completed = page.locator('[data-testid="toast"][data-source="order-completed"]')
            await expect(completed).to_be_visible(timeout=WAIT_MS)
        finally:
            await browser.close()
