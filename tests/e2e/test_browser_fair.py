"""Fair sales on the browser page in a real headless Chromium: a sale window counting down to
its opening with the limit shown, then a sold-out category's waiting list, its live position,
and the offer toast with its countdown and a buy button."""

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


async def _create(live: LiveSystem, organizer: TestUser, **fields: Any) -> dict[str, Any]:
    category = {"categoryName": "Floor", "price": 30, "totalSeats": 1} | fields.pop("category")
    body = {
        "eventName": f"Fair {datetime.now(UTC).timestamp()}",
        "eventCategory": "Music",
        "eventDate": "2031-07-15T18:00:00Z",
        "ticketCategories": [category],
    } | fields
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        response = await http.post("/api/events", json=body, headers=organizer.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_window_counts_down_and_a_waiting_buyer_gets_the_offer(
    live_system: LiveSystem, make_user: Callable[..., Awaitable[TestUser]]
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    sold_out = await _create(live_system, organizer, category={"totalSeats": 1})
    holder, waiter = await make_user(), await make_user()
    event_id, cid = sold_out["idEvent"], sold_out["ticketCategories"][0]["id"]

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            holder_page = await open_page(browser, live_system.api, holder)
            waiter_page = await open_page(browser, live_system.api, waiter)

            # The window: a countdown, the lock button off until the instant, the limit shown.
            # The sale opens 20 s after the pages are up, not after the test began: a loaded run
            # spent more than 12 s starting the browser and was already past the opening.
            opens = datetime.now(UTC) + timedelta(seconds=20)
            later = await _create(
                live_system,
                organizer,
                category={"totalSeats": 5, "maxPerUser": 2},
                salesStartAt=opens.isoformat().replace("+00:00", "Z"),
            )
            later_id, later_cid = later["idEvent"], later["ticketCategories"][0]["id"]
            await waiter_page.get_by_test_id("refresh-events").click()
            await waiter_page.get_by_test_id(f"join-event-{later_id}").click()
            window = waiter_page.get_by_test_id(f"window-{later_cid}")
            await expect(window).to_have_text(
                re.compile(r"^Sales open in 0:\d\d$"), timeout=WAIT_MS
            )
            await expect(waiter_page.get_by_test_id(f"lock-{later_cid}")).to_be_disabled()
            await expect(waiter_page.get_by_test_id(f"limit-{later_cid}")).to_have_text(
                "Max 2 per customer"
            )
            await expect(window).to_have_attribute("data-state", "open", timeout=2 * WAIT_MS)
            await expect(waiter_page.get_by_test_id(f"lock-{later_cid}")).to_be_enabled()

            # The sold-out category: the holder takes the only seat, the waiter joins the list.
            for page in (holder_page, waiter_page):
                await page.get_by_test_id(f"join-event-{event_id}").click()
                await expect(page.get_by_test_id(f"available-{cid}")).to_have_text(
                    "1", timeout=WAIT_MS
                )
            join = waiter_page.get_by_test_id(f"waitlist-join-{cid}")
            await expect(join).to_be_hidden()
            await holder_page.get_by_test_id(f"lock-{cid}").click()
            await expect(holder_page.get_by_test_id("lock")).to_have_count(1, timeout=WAIT_MS)
            await expect(join).to_be_visible(timeout=WAIT_MS)
            await join.click()
            position = waiter_page.get_by_test_id(f"waitlist-position-{cid}")
            await expect(position).to_have_text("#1 of 1 waiting", timeout=WAIT_MS)

            # The holder lets go: the seat is offered to the waiter, as a toast that counts down.
            await holder_page.get_by_test_id("lock").get_by_test_id("release").click()
            offer = waiter_page.locator('[data-testid="toast"][data-source="waitlist-offer"]')
            await expect(offer).to_be_visible(timeout=WAIT_MS)
            await expect(offer.get_by_test_id("offer-countdown")).to_have_text(
                re.compile(r"^\d+:\d\d left$"), timeout=WAIT_MS
            )
            await expect(position).to_have_text("")
            await expect(holder_page.get_by_test_id(f"available-{cid}")).to_have_text("0")
            await offer.get_by_test_id("offer-buy").click()
            completed = waiter_page.locator('[data-testid="toast"][data-source="order-completed"]')
            await expect(completed).to_be_visible(timeout=WAIT_MS)
            await expect(holder_page.locator('[data-source="waitlist-offer"]')).to_have_count(0)
        finally:
            await browser.close()
