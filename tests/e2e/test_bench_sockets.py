"""The fan-out scenario's hand-written Socket.IO client against a live system: it connects with a
token, joins a room and hears the room's updates; a bad token is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
import pytest

from benchmarks.sockets import RoomSocket, SocketError
from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, order_body

NAMESPACE = "/realtime"


async def test_joins_a_room_and_hears_its_updates(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(10,))
    category = event.categories[0].id
    watcher, buyer = await make_user(), await make_user()
    heard: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def next_event(name: str, where: Any = lambda data: True) -> Any:
        async with asyncio.timeout(15):
            while True:
                event_name, data = await heard.get()
                if event_name == name and where(data):
                    return data

    async with aiohttp.ClientSession() as session:
        socket = RoomSocket(session, live_system.api, NAMESPACE)
        await socket.connect(watcher.token, lambda name, data: heard.put_nowait((name, data)))
        try:
            await socket.emit("join-event-room", {"eventId": event.id})
            assert (await next_event("joined-event-room"))["success"] is True
            assert (await next_event("availability-update"))["availableTickets"] == 10

            async with httpx.AsyncClient(base_url=live_system.api) as http:
                held = await http.post(
                    "/api/events/tickets/reserve",
                    json=order_body(event.id, category, 3),
                    headers=buyer.headers,
                )
                assert held.status_code == 201, held.text

            update = await next_event("availability-update", lambda u: u["lockedTickets"] == 3)
            assert (update["categoryId"], update["availableTickets"]) == (category, 7)
        finally:
            await socket.close()


async def test_a_bad_token_is_refused(live_system: LiveSystem) -> None:
    async with aiohttp.ClientSession() as session:
        socket = RoomSocket(session, live_system.api, NAMESPACE)
        try:
            with pytest.raises(SocketError, match="refused"):
                await socket.connect("not-a-token", lambda name, data: None, within=15)
        finally:
            await socket.close()
