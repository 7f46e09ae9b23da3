"""The browser page in a real headless Chromium, two people at once: one locks seats and the
other watches availability drop; the first buys with the lock and gets the order toast.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from persistence.records import EventRecord
from sales.identity import Role
from tests.fixtures.system import LiveSystem

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WAIT_MS = 20_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None, reason="Debian's chromium is missing: run `make browser`"
    ),
]


async def open_page(browser: Browser, api: str, user: TestUser) -> Page:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    await page.goto(f"{api}/")
    await page.get_by_test_id("username").fill(user.username)
    await page.get_by_test_id("password").fill(user.password)
    await page.get_by_test_id("login").click()
    await expect(page.get_by_test_id("conn-status")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await expect(page.get_by_test_id("whoami")).to_contain_text(user.username)
    return page


async def test_two_people_lock_watch_and_buy(
    live_system: LiveSystem,
    make_user: Callable[..., Awaitable[TestUser]],
    make_event: Callable[..., Awaitable[EventRecord]],
    tmp_path: Path,
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(10, 4))
    category = event.categories[0]
    buyer, watcher = await make_user(), await make_user()
    shots = tmp_path / "screenshots"
    shots.mkdir()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            buyer_page = await open_page(browser, live_system.api, buyer)
            watcher_page = await open_page(browser, live_system.api, watcher)

            for page in (buyer_page, watcher_page):
                await page.get_by_test_id(f"join-event-{event.id}").click()
                await expect(page.get_by_test_id("event-title")).to_have_text(event.event_name)
                await expect(page.get_by_test_id(f"available-{category.id}")).to_have_text(
                    "10", timeout=WAIT_MS
                )
                await expect(page.get_by_test_id(f"locked-{category.id}")).to_have_text("0")
            await watcher_page.screenshot(path=shots / "1-watcher-before.png")

            # The buyer locks three seats: a countdown starts, the watcher sees seven left.
            await buyer_page.get_by_test_id(f"qty-{category.id}").fill("3")
            await buyer_page.get_by_test_id(f"lock-{category.id}").click()
            lock = buyer_page.get_by_test_id("lock")
            await expect(lock).to_have_count(1, timeout=WAIT_MS)
            await expect(lock.get_by_test_id("countdown")).to_have_text(
                re.compile(r"^\d+:\d\d left$"), timeout=WAIT_MS
            )
            watcher_available = watcher_page.get_by_test_id(f"available-{category.id}")
            await expect(watcher_available).to_have_text("7", timeout=WAIT_MS)
            await expect(watcher_page.get_by_test_id(f"locked-{category.id}")).to_have_text("3")
            await buyer_page.screenshot(path=shots / "2-buyer-locked.png")
            await watcher_page.screenshot(path=shots / "3-watcher-sees-lock.png")

            # The buyer buys with the lock: the order-completed toast, the order in the list.
            await lock.get_by_test_id("buy").click()
            toast = buyer_page.locator('[data-testid="toast"][data-source="order-completed"]')
            await expect(toast).to_be_visible(timeout=WAIT_MS)
            await expect(buyer_page.get_by_test_id("lock")).to_have_count(0)
            orders = buyer_page.get_by_test_id("orders-list").locator("li")
            await expect(orders).to_have_count(1, timeout=WAIT_MS)
            await expect(orders.first).to_have_attribute(
                "data-status", "completed", timeout=WAIT_MS
            )
            await buyer_page.screenshot(path=shots / "4-buyer-toast.png")

            # The sale stays sold for the watcher, and nobody else got the buyer's toast.
            await expect(watcher_page.get_by_test_id(f"locked-{category.id}")).to_have_text(
                "0", timeout=WAIT_MS
            )
            await expect(watcher_available).to_have_text("7")
            await expect(watcher_page.locator('[data-source="order-completed"]')).to_have_count(0)
            await watcher_page.screenshot(path=shots / "5-watcher-after-sale.png")
        finally:
            await browser.close()

    assert sorted(path.name for path in shots.iterdir()) == [
        "1-watcher-before.png",
        "2-buyer-locked.png",
        "3-watcher-sees-lock.png",
        "4-buyer-toast.png",
        "5-watcher-after-sale.png",
    ]
