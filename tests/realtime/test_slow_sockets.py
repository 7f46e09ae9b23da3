"""A socket whose client never reads is dropped once its unread backlog passes the bound,
instead of queueing every change of its room forever. The client here speaks Engine.IO's
long-polling by hand, so "never reads" is exact: it simply stops polling.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import order_body, poll, reserve

StartSystem = Callable[..., Awaitable[LiveSystem]]
ENGINE = "/socket.io/?EIO=4&transport=polling"
SEPARATOR = "\x1e"


class PollingClient:
    """Engine.IO v4 long-polling, by hand: it reads only when told to."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.sid = ""

    async def open(self, token: str) -> None:
        opened = await self.http.get(ENGINE)
        assert opened.text.startswith("0"), opened.text
        self.sid = json.loads(opened.text[1:])["sid"]
        await self.send(f"40/realtime,{json.dumps({'token': token})}")
        await self.until(lambda packets: any(p.startswith("40/realtime") for p in packets))

    async def send(self, packet: str) -> None:
        sent = await self.http.post(f"{ENGINE}&sid={self.sid}", content=packet)
        assert sent.status_code == 200, sent.text

    async def emit(self, event: str, data: Any) -> None:
        await self.send(f"42/realtime,{json.dumps([event, data])}")

    async def read(self) -> httpx.Response:
        return await self.http.get(f"{ENGINE}&sid={self.sid}")

    async def until(self, done: Callable[[list[str]], bool]) -> list[str]:
        seen: list[str] = []

        async def arrived() -> bool:
            answer = await self.read()
            assert answer.status_code == 200, answer.text
            seen.extend(answer.text.split(SEPARATOR))
            return done(seen)

        await poll(arrived)
        return seen


async def test_a_socket_that_never_reads_is_dropped_past_its_backlog(
    start_system: StartSystem,
) -> None:
    # One buyer makes the twenty-one changes: more live holds than the default cap allows.
    live = await start_system(socket_send_queue_limit=5, max_live_holds_per_user=50)
    organizer = await create_user(live, Role.ORGANIZER)
    watcher = await create_user(live)
    buyer = await create_user(live)
    event = await create_event(live, organizer, (100,))
    category = event.categories[0].id
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        idle = PollingClient(http)
        await idle.open(watcher.token)
        await idle.emit("join-event-room", {"eventId": event.id})
        await idle.until(lambda packets: any("joined-event-room" in p for p in packets))
        reader = PollingClient(http)  # a socket that does read, in the same room
        await reader.open(watcher.token)
        await reader.emit("join-event-room", {"eventId": event.id})
        await reader.until(lambda packets: any("joined-event-room" in p for p in packets))

        # From here on `idle` never polls while the room changes many times.
        for _ in range(20):
            await reserve(http, buyer, event.id, category)
            await reader.until(lambda packets: any("availability-update" in p for p in packets))

        # Its backlog was dropped with it: no twenty updates waiting, the session is gone.
        gone = await idle.read()
        assert "availability-update" not in gone.text, gone.text[:300]
        after = await idle.read()
        assert after.status_code == 400, after.text
        # The reading socket is still in the room and still hears every change.
        await reserve(http, buyer, event.id, category)
        seen = await reader.until(
            lambda packets: any('"availableTickets":79' in p for p in packets)
        )
        assert seen
        assert (
            await http.post(
                "/api/orders", json=order_body(event.id, category), headers=buyer.headers
            )
        ).status_code == 201
