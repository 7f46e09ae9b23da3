"""The waiting buyers of the `waitlist` scenario, run in a load-generator worker.

Each buyer opens one socket (`benchmarks.sockets`), joins the sold-out category's waiting list
with `join-waitlist` and listens. When its `waitlist-offer` arrives it records when, and most
buyers take the offer with `POST /api/orders/with-lock`. Of every `decline_every` buyers, one
declines at once with `unlock-tickets` and one lets the offer expire: either way the seat
passes on to the next in line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import aiohttp

from benchmarks.sockets import RoomSocket

Account = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Shared:
    """The parent's counters: sockets settled (joined or failed), offers heard, and stop."""

    ready: Synchronized[int] | None
    offers: Synchronized[int] | None
    stop: MpEvent | None


@dataclass(slots=True)
class Heard:
    # user id -> the place `join-waitlist-response` gave it (1 = next)
    joined: dict[int, int] = field(default_factory=dict)
    # received epoch, user id, place: every place heard, from the join on. Joins racing to the
    # actor take their places in the order their rows were written, so a place given at the
    # join can move back; the last one heard before seats come free is the buyer's rank.
    places: list[tuple[float, int, int]] = field(default_factory=list)
    # received epoch, user id, lockId, expiresAt, quantity
    offers: list[tuple[float, int, str, str, int]] = field(default_factory=list)
    positions: int = 0  # `waitlist-position` messages heard
    bought: int = 0
    let_expire: list[str] = field(default_factory=list)  # lockIds of offers left to expire
    # sent epoch, answered epoch, released: each `unlock-tickets` of an offer
    declined: list[tuple[float, float, bool]] = field(default_factory=list)
    buy_failures: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _bump(counter: Synchronized[int] | None) -> None:
    if counter is not None:
        with counter.get_lock():
            counter.value += 1


async def run(
    base_url: str,
    accounts: tuple[Account, ...],
    concurrency: int,
    params: dict[str, Any],
    shared: Shared,
) -> dict[str, Any]:
    event_id, category_id = int(params["event_id"]), int(params["category_id"])
    api = str(params["api"])
    decline_every = int(params.get("decline_every", 0))
    heard = Heard()
    closers: list[Callable[[], Awaitable[None]]] = []
    buys: set[asyncio.Task[None]] = set()
    gate = asyncio.Semaphore(concurrency)
    target = {"eventId": event_id, "categoryId": category_id}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def buy(token: str, offer: dict[str, Any]) -> None:
            body = {**target, "quantity": offer.get("quantity"), "lockId": offer.get("lockId")}
            headers = {"Authorization": f"Bearer {token}"}
            try:
                async with session.post(
                    f"{api}/api/orders/with-lock", json=body, headers=headers
                ) as resp:
                    if resp.status == 201:
                        heard.bought += 1
                    else:
                        heard.buy_failures.append(f"{resp.status}: {(await resp.text())[:120]}")
            except aiohttp.ClientError as exc:
                heard.buy_failures.append(f"{type(exc).__name__}: {exc}")

        async def wait_in_line(index: int, account: Account) -> None:
            user_id, token = account
            answered = asyncio.Event()
            socket = RoomSocket(session, base_url, "/realtime")
            lets_expire = decline_every > 0 and index % decline_every == decline_every - 1
            declines = decline_every > 1 and index % decline_every == decline_every // 2 - 1
            unlocked: list[float] = []  # when this buyer's `unlock-tickets` left

            def on_event(event: str, data: Any) -> None:
                if not isinstance(data, dict):
                    return
                if event == "join-waitlist-response":
                    if data.get("success"):
                        heard.joined[user_id] = int(data.get("position", 0))
                        heard.places.append((time.time(), user_id, heard.joined[user_id]))
                    else:
                        heard.failures.append(f"user {user_id}: {data.get('message')}")
                    answered.set()
                elif event == "unlock-tickets-response" and unlocked:
                    heard.declined.append((unlocked.pop(), time.time(), bool(data.get("success"))))
                elif event == "waitlist-position":
                    heard.positions += 1
                    heard.places.append((time.time(), user_id, int(data.get("position", 0))))
                elif event == "waitlist-offer" and data.get("categoryId") == category_id:
                    heard.offers.append(
                        (
                            time.time(),
                            user_id,
                            str(data.get("lockId")),
                            str(data.get("expiresAt")),
                            int(data.get("quantity", 0)),
                        )
                    )
                    _bump(shared.offers)
                    if lets_expire:
                        heard.let_expire.append(str(data.get("lockId")))
                    elif declines:
                        unlocked.append(time.time())
                        task = asyncio.get_running_loop().create_task(
                            socket.emit("unlock-tickets", {"lockId": data.get("lockId")})
                        )
                        buys.add(task)
                        task.add_done_callback(buys.discard)
                    else:
                        task = asyncio.get_running_loop().create_task(buy(token, data))
                        buys.add(task)
                        task.add_done_callback(buys.discard)

            async with gate:
                try:
                    async with asyncio.timeout(45):
                        await socket.connect(token, on_event)
                        await socket.emit("join-waitlist", {**target, "quantity": 1})
                        await answered.wait()
                    closers.append(socket.close)
                except Exception as exc:  # reported, not raised: one failure is a figure
                    heard.failures.append(f"user {user_id}: {type(exc).__name__}: {exc}")
                    await socket.close()
                finally:
                    _bump(shared.ready)

        await asyncio.gather(*(wait_in_line(i, account) for i, account in enumerate(accounts)))
        if shared.stop is not None:
            await asyncio.to_thread(shared.stop.wait)
        if buys:
            await asyncio.wait(set(buys), timeout=30)

        async def close(closer: Callable[[], Awaitable[None]]) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closer(), timeout=5)

        await asyncio.gather(*(close(closer) for closer in closers))
    return {
        "joined": sorted(heard.joined.items()),
        "places": heard.places,
        "offers": heard.offers,
        "position_updates": heard.positions,
        "bought": heard.bought,
        "let_expire": heard.let_expire,
        "declined": heard.declined,
        "buy_failures": heard.buy_failures,
        "failures": heard.failures,
        "connected": len(closers),
    }
