"""The organizer's page in a real headless Chromium, beside a buyer in a second context: the
organizer creates an event from the page, the buyer buys on the buyer page, the organizer's
dashboard shows the sale without a reload, the CSV export has the order, and a cancel from
the orders list puts the seats back."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.async_api import Browser, Page, async_playwright, expect

from sales.identity import Role
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, open_page, pytestmark
from tests.fixtures.system import LiveSystem

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser

__all__ = ["pytestmark"]


async def open_organizer(browser: Browser, api: str, user: TestUser) -> Page:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 1000}, accept_downloads=True
    )
    page = await context.new_page()
    await page.goto(f"{api}/organizer.html")
    await page.get_by_test_id("username").fill(user.username)
    await page.get_by_test_id("password").fill(user.password)
    await page.get_by_test_id("login").click()
    await expect(page.get_by_test_id("conn-status")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    return page


async def test_organizer_creates_watches_exports_and_cancels(
    live_system: LiveSystem, make_user: Callable[..., Awaitable[TestUser]], tmp_path: Path
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    name = f"Launch {int(time.time() * 1000)}"
    # Soon, so the buyer page's first page of events (by date) lists it.
    when = (datetime.now() + timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            board = await open_organizer(browser, live_system.api, organizer)
            await board.get_by_test_id("new-event").click()
            await board.get_by_test_id("f-name").fill(name)
            await board.get_by_test_id("f-date").fill(when)
            await board.get_by_test_id("f-location").fill("Hall 9")
            await board.get_by_test_id("cat-name-0").fill("Floor")
            await board.get_by_test_id("cat-price-0").fill("40")
            await board.get_by_test_id("cat-seats-0").fill("8")
            await board.get_by_test_id("cat-max-0").fill("4")
            await board.get_by_test_id("add-category").click()
            await board.get_by_test_id("cat-name-1").fill("Balcony")
            await board.get_by_test_id("cat-price-1").fill("25.50")
            await board.get_by_test_id("cat-seats-1").fill("5")
            await board.get_by_test_id("save-event").click()

            await expect(board.get_by_test_id("dash-title")).to_have_text(name, timeout=WAIT_MS)
            rows = board.get_by_test_id("dash-rows").locator("tr")
            await expect(rows).to_have_count(2, timeout=WAIT_MS)
            floor_id = (await rows.first.get_attribute("data-testid") or "").removeprefix(
                "dash-row-"
            )
            await expect(board.get_by_test_id("kpi-available")).to_have_text("13")
            await expect(board.get_by_test_id("kpi-sold")).to_have_text("0")

            # The buyer, in a second context, finds the event on the buyer page and buys two.
            shop = await open_page(browser, live_system.api, buyer)
            event_link = shop.get_by_test_id("events-list").get_by_text(name)
            await expect(event_link).to_be_visible(timeout=WAIT_MS)
            event_id = int(
                (
                    await shop.locator("li", has_text=name).get_attribute("data-testid") or ""
                ).removeprefix("event-")
            )
            await shop.get_by_test_id(f"join-event-{event_id}").click()
            await shop.get_by_test_id(f"qty-{floor_id}").fill("2")
            await shop.get_by_test_id(f"lock-{floor_id}").click()
            await expect(board.get_by_test_id(f"dash-held-{floor_id}")).to_have_text(
                "2", timeout=WAIT_MS
            )
            bought_at = time.monotonic()
            await shop.get_by_test_id("lock").get_by_test_id("buy").click()
            await expect(board.get_by_test_id("kpi-sold")).to_have_text("2", timeout=WAIT_MS)
            seen_after = time.monotonic() - bought_at
            print(f"dashboard showed the sale {seen_after * 1000:.0f} ms after the buy click")
            await expect(board.get_by_test_id(f"dash-held-{floor_id}")).to_have_text("0")
            await expect(board.get_by_test_id("kpi-revenue")).to_have_text("80.00")
            await expect(board.get_by_test_id("kpi-opm")).to_have_text("1", timeout=WAIT_MS)
            order_rows = board.get_by_test_id("order-rows").locator("tr")
            await expect(order_rows).to_have_count(1, timeout=WAIT_MS)
            order_id = (await order_rows.first.get_attribute("data-testid") or "").removeprefix(
                "order-row-"
            )
            await board.screenshot(path=tmp_path / "dashboard-after-sale.png")

            # The export has that order.
            async with board.expect_download() as downloading:
                await board.get_by_test_id("export-csv").click()
            download = await downloading.value
            saved = tmp_path / "orders.csv"
            await download.save_as(saved)
            exported = list(csv.DictReader(io.StringIO(saved.read_text())))
            assert [(row["orderId"], row["buyer"], row["quantity"]) for row in exported] == [
                (order_id, buyer.username, "2")
            ]

            # Filtering, then a cancel from the list: seats back, live, and in the trail.
            await board.get_by_test_id("order-status").select_option("cancelled")
            await expect(order_rows).to_have_count(0)
            await board.get_by_test_id("order-status").select_option("")
            board.once("dialog", lambda dialog: dialog.accept())
            await board.get_by_test_id(f"cancel-{order_id}").click()
            await expect(board.get_by_test_id("kpi-sold")).to_have_text("0", timeout=WAIT_MS)
            await expect(order_rows.first).to_have_attribute(
                "data-status", "cancelled", timeout=WAIT_MS
            )
            audit = board.get_by_test_id("audit-list").locator('[data-action="order.cancelled"]')
            await expect(audit).to_have_count(1, timeout=WAIT_MS)
            toast = shop.locator('[data-testid="toast"][data-source="order-cancelled"]')
            await expect(toast).to_be_visible(timeout=WAIT_MS)

            # Editing from the page: a new name and a sales close, both in the trail.
            closes = (datetime.now() + timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M")
            await board.get_by_test_id("edit-event").click()
            await expect(board.get_by_test_id("f-name")).to_have_value(name)
            await board.get_by_test_id("f-name").fill(f"{name} (moved)")
            await board.get_by_test_id("f-end").fill(closes)
            await board.get_by_test_id("save-event").click()
            await expect(board.get_by_test_id("dash-title")).to_have_text(
                f"{name} (moved)", timeout=WAIT_MS
            )
            for action in ("event.updated", "event.sales_window_changed", "event.created"):
                entry = board.get_by_test_id("audit-list").locator(f'[data-action="{action}"]')
                await expect(entry).to_have_count(1, timeout=WAIT_MS)
        finally:
            await browser.close()


async def test_a_buyer_on_the_organizer_page_sees_no_dashboard(
    live_system: LiveSystem, make_user: Callable[..., Awaitable[TestUser]]
) -> None:
    buyer = await make_user()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await open_organizer(browser, live_system.api, buyer)
            await expect(page.get_by_test_id("message")).to_contain_text("Only organizers")
            await page.evaluate("""() => { const s = io("/realtime", {auth: {token:
                JSON.parse(sessionStorage.getItem("boxoffice.session")).token}});
                window.refusals = []; s.on("error", (e) => window.refusals.push(e.message));
                s.on("connected", () => s.emit("join-sales-dashboard", {eventId: 1})); }""")
            await page.wait_for_function("window.refusals.length > 0", timeout=WAIT_MS)
            assert await page.evaluate("window.refusals") in (
                ["Only the organizer who created this event can see this"],
                ["Event not found"],
            )
        finally:
            await browser.close()


async def test_one_login_serves_both_pages(
    live_system: LiveSystem, make_user: Callable[..., Awaitable[TestUser]]
) -> None:
    # Both pages keep the login under one sessionStorage key (api.js): the buyer page's login
    # opens the organizer page logged in, and logging out there logs the buyer page out too.
    organizer = await make_user(Role.ORGANIZER)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await open_page(browser, live_system.api, organizer)
            await page.get_by_test_id("organizer-link").click()
            await page.wait_for_url(f"{live_system.api}/organizer.html")
            await expect(page.get_by_test_id("whoami")).to_contain_text(organizer.username)
            await expect(page.get_by_test_id("conn-status")).to_have_attribute(
                "data-state", "connected", timeout=WAIT_MS
            )
            await expect(page.get_by_test_id("auth-panel")).to_be_hidden()
            await expect(page.get_by_test_id("new-event")).to_be_visible()

            await page.get_by_test_id("logout").click()
            await expect(page.get_by_test_id("auth-panel")).to_be_visible()
            await page.get_by_test_id("buyer-link").click()
            await page.wait_for_url(f"{live_system.api}/")  # loaded: its script has run
            await expect(page.get_by_test_id("auth-panel")).to_be_visible()
            await expect(page.get_by_test_id("whoami")).to_be_hidden()
            assert await page.evaluate('sessionStorage.getItem("boxoffice.session")') is None
        finally:
            await browser.close()
