"""A screenshot of the organizer's live dashboard during a short load, for the README.

Starts `boxoffice serve` on a private DATA_DIR and free ports, signs up an organizer and some
buyers, creates an event, opens the dashboard in headless Chromium, then lets the buyers hold,
buy and release for a few seconds and takes the picture mid-load. Not a benchmark.

    python tools/dashboard_shot.py [--out docs/dashboard.png] [--seconds 12] [--buyers 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "dashboard-shot-pw"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_ready(http: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("boxoffice serve exited")
        try:
            if (await http.get("/api/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise TimeoutError("the system did not start")


async def sign_up(http: httpx.AsyncClient, name: str, role: str) -> dict[str, Any]:
    body = {"username": name, "password": PASSWORD, "role": role}
    response = await http.post("/api/auth/register", json=body)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def shop(http: httpx.AsyncClient, token: str, event: dict[str, Any], until: float) -> None:
    """One buyer: hold one to three seats, then mostly buy them, sometimes let them go."""
    headers = {"Authorization": f"Bearer {token}"}
    categories = [c["id"] for c in event["ticketCategories"]]
    while time.monotonic() < until:
        category = random.choice(categories)
        body = {
            "eventId": event["idEvent"],
            "categoryId": category,
            "quantity": random.randint(1, 3),
        }
        held = await http.post("/api/events/tickets/reserve", json=body, headers=headers)
        await asyncio.sleep(random.uniform(0.2, 1.2))
        if held.status_code == 201:
            lock = held.json()["lockId"]
            if random.random() < 0.75:
                await http.post(
                    "/api/orders/with-lock", json=body | {"lockId": lock}, headers=headers
                )
            else:
                await http.post(
                    "/api/events/tickets/release", json={"lockId": lock}, headers=headers
                )
        await asyncio.sleep(random.uniform(0.1, 0.8))


async def run(
    api: str, server: subprocess.Popen[bytes], out: Path, seconds: float, buyers: int
) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        await wait_ready(http, server)
        organizer = await sign_up(http, "organizer@example.com", "organizer")
        event_body = {
            "eventName": "Spring Tour · opening night",
            "eventCategory": "Music",
            "eventDate": "2031-04-18T19:30:00Z",
            "location": "Arena",
            "ticketCategories": [
                {"categoryName": "Floor", "price": 89, "totalSeats": 300, "maxPerUser": 6},
                {"categoryName": "Seated", "price": 59.5, "totalSeats": 200},
                {"categoryName": "VIP", "price": 249, "totalSeats": 40, "maxPerUser": 2},
            ],
        }
        headers = {"Authorization": f"Bearer {organizer['access_token']}"}
        created = await http.post("/api/events", json=event_body, headers=headers)
        created.raise_for_status()
        event = created.json()
        tokens = [
            (await sign_up(http, f"buyer{i}@example.com", "assistant"))["access_token"]
            for i in range(buyers)
        ]
        # Wake each category's actor first (a process start each): the picture is of the sale.
        warm = {"Authorization": f"Bearer {tokens[0]}"}
        for category in event["ticketCategories"]:
            body = {"eventId": event["idEvent"], "categoryId": category["id"], "quantity": 1}
            held = await http.post("/api/events/tickets/reserve", json=body, headers=warm)
            held.raise_for_status()
            release = {"lockId": held.json()["lockId"]}
            await http.post("/api/events/tickets/release", json=release, headers=warm)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            await page.goto(f"{api}/organizer.html")
            await page.fill("#username", "organizer@example.com")
            await page.fill("#password", PASSWORD)
            await page.click("#login-btn")
            await page.click(f"[data-testid=open-{event['idEvent']}]")
            await page.wait_for_selector("[data-testid=dash-rows] tr")
            until = time.monotonic() + seconds
            load = asyncio.gather(*(shop(http, t, event, until) for t in tokens))
            await asyncio.sleep(seconds * 0.85)
            out.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(out), full_page=True)
            await load
            await browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--buyers", type=int, default=40)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dashboard-shot-") as data_dir:
        env = os.environ | {
            "DATA_DIR": data_dir,
            "API_GATEWAY_PORT": str(port),
            "REALTIME_SERVICE_PORT": str(free_port()),
            "RAY_NAMESPACE": f"shot-{port}",
            "BCRYPT_ROUNDS": "4",
            "AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS": "10000",
        }
        boxoffice = str(Path(sys.executable).with_name("boxoffice"))
        server = subprocess.Popen([boxoffice, "serve"], env=env, cwd=ROOT)
        try:
            api = f"http://127.0.0.1:{port}"
            asyncio.run(run(api, server, args.out, args.seconds, args.buyers))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
