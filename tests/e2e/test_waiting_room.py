"""The waiting room end to end, over two gateway processes: 2,000 buyers join before the
opening, the queue admits them in the drawn order and later arrivals after them in arrival
order, a kill of the queue actor mid-admission loses nobody's place, and no request without
its buyer's own pass gets a seat."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import ray
from ray._private import state as ray_state
from sqlalchemy import insert, select

from actors.remote import Unavailable, queue_actor_name
from persistence import catalog
from persistence.models import queue_entries, users
from persistence.records import WaitingRoomConfig
from sales.identity import Role, user_stamp
from tests.fixtures import system as fixtures
from tests.fixtures.queues import open_waiting_room
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import poll

# The issue's 2,000 buyers passed here in 112 s on a 2-core machine at load average 14 (43 s
# of it the joins, at ~46/s); the suite runs 600 to stay fast, QUEUE_E2E_BUYERS=2000 runs all.
BUYERS = int(os.environ.get("QUEUE_E2E_BUYERS", "600"))
LATER = 20
RATE = BUYERS // 4  # four seconds of admitting: long enough to kill the queue mid-way


async def _many_users(live: LiveSystem, count: int) -> list[fixtures.TestUser]:
    """`count` buyers in one statement, each with their own token."""

    async def insert_all() -> list[fixtures.TestUser]:
        names = [f"queued-{uuid.uuid4().hex[:16]}@example.com" for _ in range(count)]
        async with live.runtime.db.begin() as conn:
            rows = await conn.execute(
                insert(users)
                .values([{"username": n, "password_hash": "x", "role": "assistant"} for n in names])
                .returning(users.c.id, users.c.username, users.c.created_at)
            )
            made = list(rows)
        tokens = live.runtime.tokens
        return [
            fixtures.TestUser(
                row.id,
                row.username,
                Role.ASSISTANT,
                tokens.issue(row.id, Role.ASSISTANT, since=user_stamp(row.created_at)),
            )
            for row in made
        ]

    return await live.call(insert_all())


async def _join_all(
    apis: list[str], path: str, buyers: list[fixtures.TestUser], at_once: int = 64
) -> None:
    """Every buyer joins over REST, alternating gateways, many at a time."""
    slots = asyncio.Semaphore(at_once)
    clients = [httpx.AsyncClient(base_url=api, timeout=60) for api in apis]

    async def join(index: int, buyer: fixtures.TestUser) -> None:
        async with slots:
            for attempt in range(3):
                try:
                    response = await clients[index % len(clients)].post(path, headers=buyer.headers)
                    break
                except httpx.TransportError:
                    # Seen once in six clean-clone runs: a ReadError on a pooled connection
                    # (cause not found). A join is once per user, so a buyer who got no answer
                    # asks again, as a client would; the order checks below are untouched.
                    if attempt == 2:
                        raise
            assert response.status_code == 201, response.text

    try:
        await asyncio.gather(*(join(index, buyer) for index, buyer in enumerate(buyers)))
    finally:
        for client in clients:
            await client.aclose()


async def _rows(live: LiveSystem, event_id: int) -> list[Any]:
    async def read() -> list[Any]:
        async with live.runtime.db.connect() as conn:
            statement = select(queue_entries).where(queue_entries.c.event_id == event_id)
            return list(await conn.execute(statement))

    return await live.call(read())


async def _restarted(actor: Any) -> bool:
    """Ray restarted `actor` after a kill and it is running again (Ray's own record)."""
    info = await asyncio.to_thread(ray_state.actors, actor._actor_id.hex())
    return bool(info["NumRestarts"] >= 1 and info["State"] == "ALIVE")


async def _line_once_answered(live: LiveSystem, event_id: int) -> list[int]:
    """The queue's line, asked until its actor answers within a call's deadline."""

    async def ask() -> list[int] | None:
        try:
            return await live.call(live.runtime.rooms.line(event_id))
        except Unavailable:
            return None

    line: list[int] = await poll(ask, within=fixtures.TEST_START_TIMEOUT_SECONDS, interval=0.5)
    return line


async def test_buyers_are_admitted_in_the_drawn_order_despite_a_kill(
    live_system: LiveSystem, start_system: Callable[..., Awaitable[LiveSystem]]
) -> None:
    a = live_system
    b = await start_system(ray_namespace=a.settings.ray_namespace)
    organizer = await create_user(a, Role.ORGANIZER)
    event = await create_event(a, organizer, (BUYERS + LATER,))
    event = await open_waiting_room(a, event, rate=RATE, opens_in=3600)
    category_id = event.categories[0].id
    early = await _many_users(a, BUYERS)
    later = await _many_users(a, LATER)
    path = f"/api/events/{event.id}/queue"

    await _join_all([a.api, b.api], path, early)

    # Open now: the queue re-reads its event within a couple of seconds and draws.
    async def open_now() -> None:
        room = WaitingRoomConfig(True, RATE, datetime.now(UTC) + timedelta(seconds=0.2))
        async with a.runtime.db.begin() as conn:
            await catalog.update_event(conn, event.id, catalog.waiting_room_columns(room))
        await a.runtime.directory.event_changed(event.id)

    await a.call(open_now())
    async with httpx.AsyncClient(base_url=b.api, timeout=30) as http:

        async def drawn_place() -> Any:
            return (await http.get(path, headers=early[0].headers)).json()["position"] is not None

        await poll(drawn_place, within=30)
        # Later arrivals, one after the other: they queue behind the draw in this order.
        for buyer in later:
            response = await http.post(path, headers=buyer.headers)
            assert response.status_code == 201, response.text
        line = await a.call(a.runtime.rooms.line(event.id))
        early_ids = {buyer.id for buyer in early}
        drawn = line[: len(line) - len(later)]
        assert set(drawn) >= early_ids
        assert line[len(line) - len(later) :] == [buyer.id for buyer in later]
        # A draw, not the arrival order.
        assert drawn != sorted(drawn, key=lambda user: [b.id for b in early].index(user))

        # Mid-admission: some admitted, most not. Kill the queue actor (Ray restarts it).
        async def admitted(at_least: int) -> bool:
            rows = await _rows(a, event.id)
            return sum(1 for row in rows if row.admitted_at is not None) >= at_least

        await poll(lambda: admitted(BUYERS // 10), within=30, interval=0.1)
        queue_actor = ray.get_actor(queue_actor_name(event.id), namespace=a.settings.ray_namespace)
        ray.kill(queue_actor, no_restart=False)
        # Meanwhile, nobody without their own pass gets a seat.
        body = {"eventId": event.id, "categoryId": category_id, "quantity": 1}
        stranger = await create_user(a)
        for route in ("/api/events/tickets/reserve", "/api/orders"):
            for headers in (early[0].headers, stranger.headers):
                refused = await http.post(route, json=body, headers=headers)
                assert refused.status_code == 403, refused.text

        await poll(lambda: admitted(len(line)), within=60, interval=0.2)
        # The line as the restarted actor rebuilt it from the ledger. Under CI's load the old
        # actor once admitted everyone before the kill landed, and the restart then outlasted
        # a call's 5 s deadline (503 to a buyer meanwhile, by design): wait for the restart.
        await poll(lambda: _restarted(queue_actor), within=fixtures.TEST_START_TIMEOUT_SECONDS)
        assert await _line_once_answered(a, event.id) == line  # same order after the kill

        # Admission order is the line's: admission times never go back along it.
        rows = {row.user_id: row for row in await _rows(a, event.id)}
        times = [rows[user].admitted_at for user in line]
        assert times == sorted(times)
        assert len(rows) == len(line)  # one entry per buyer, each admitted once

        # Passes: A's buys for A, not for B.
        first, second = early[0], early[1]
        place = (await http.get(path, headers=first.headers)).json()
        assert place["admitted"] is True
        with_pass = {"X-Admission-Pass": place["admissionPass"]}
        stolen = await http.post(
            "/api/events/tickets/reserve", json=body, headers=second.headers | with_pass
        )
        assert stolen.status_code == 403, stolen.text
        held = await http.post(
            "/api/events/tickets/reserve", json=body, headers=first.headers | with_pass
        )
        assert held.status_code == 201, held.text
        seats = (await http.get(f"/api/events/{event.id}/tickets")).json()[0]
        assert seats["availableSeats"] == BUYERS + LATER - 1  # only the one with a pass
