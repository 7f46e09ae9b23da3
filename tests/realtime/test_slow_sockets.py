"""A socket that falls behind gets the latest state of each category, not a backlog of stale
ones; one whose client never reads is dropped once its unread backlog passes the bound. The
client here speaks Engine.IO's long-polling by hand, so "never reads" is exact: it simply
stops polling.
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
PING, PONG = "2", "3"


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
            packets = answer.text.split(SEPARATOR)
            if PING in packets:
                # A reading client answers the server's ping, or the session ends when
                # pingInterval + pingTimeout (45 s) pass: a slow run got there.
                await self.send(PONG)
            seen.extend(packets)
            return done(seen)

        await poll(arrived)
        return seen


async def joined(client: PollingClient, token: str, event_id: int, categories: int) -> None:
    """Open, join the event's room, and read what joining sends (one state per category)."""
    await client.open(token)
    await client.emit("join-event-room", {"eventId": event_id})
    await client.until(
        lambda packets: (
            any("joined-event-room" in p for p in packets)
            and sum("availability-update" in p for p in packets) == categories
        )
    )


def states(packets: list[str]) -> list[dict[str, Any]]:
    """The `availability-update` payloads among Socket.IO packets, in order."""
    found = []
    for packet in packets:
        if packet.startswith("42/realtime,"):
            event, data = json.loads(packet[len("42/realtime,") :])
            if event == "availability-update":
                found.append(data)
    return found


def shows(left: int) -> Callable[[list[str]], bool]:
    return lambda packets: any(state["availableTickets"] == left for state in states(packets))


async def test_a_socket_behind_gets_the_latest_state_not_the_backlog(
    live_system: LiveSystem,
) -> None:
    organizer = await create_user(live_system, Role.ORGANIZER)
    watcher = await create_user(live_system)
    buyers = [await create_user(live_system) for _ in range(3)]  # each under the hold cap
    event = await create_event(live_system, organizer, (100, 50))
    first, second = (category.id for category in event.categories)
    # Started before `behind` stops reading: it must outlast the changes, not actor starts
    # (a socket that never answers a ping is ended 45 s after it was last heard).
    await live_system.runtime.seats.activate([first, second])
    async with httpx.AsyncClient(base_url=live_system.api, timeout=30) as http:
        behind = PollingClient(http)
        await joined(behind, watcher.token, event.id, 2)
        reader = PollingClient(http)  # a socket that reads every change, in the same room
        await joined(reader, watcher.token, event.id, 2)

        heard: list[int] = []
        for n in range(1, 21):  # `behind` does not read while its room changes twenty times
            await reserve(http, buyers[n % 3], event.id, first)
            seen = await reader.until(shows(100 - n))
            heard.extend(state["availableTickets"] for state in states(seen))
        await reserve(http, buyers[0], event.id, second)
        await reader.until(lambda packets: any(s["categoryId"] == second for s in states(packets)))
        # A socket that keeps up misses nothing (the category's actor may first announce the
        # state it started in, 100, as it activates).
        assert [left for left in heard if left < 100] == list(range(99, 79, -1))

        # One read brings the newest state of each category, nothing older.
        caught_up = states((await behind.read()).text.split(SEPARATOR))
        assert [(s["categoryId"], s["availableTickets"]) for s in caught_up] == [
            (first, 80),
            (second, 49),
        ]
        # And it hears the next change as before.
        await reserve(http, buyers[1], event.id, first)
        seen = await behind.until(lambda packets: bool(states(packets)))
        assert [s["availableTickets"] for s in states(seen)] == [79]


async def test_a_socket_that_never_reads_is_dropped_past_its_backlog(
    start_system: StartSystem,
) -> None:
    # Only the latest state of a category waits for a socket, so the backlog that passes the
    # bound (5) is one of several categories: eight, each changed three times.
    live = await start_system(socket_send_queue_limit=5, max_live_holds_per_user=50)
    organizer = await create_user(live, Role.ORGANIZER)
    watcher = await create_user(live)
    buyer = await create_user(live)
    event = await create_event(live, organizer, (100,) * 8)
    categories = [category.id for category in event.categories]
    await live.runtime.seats.activate(categories)  # started before `idle` stops reading
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        idle = PollingClient(http)
        await joined(idle, watcher.token, event.id, 8)
        reader = PollingClient(http)  # a socket that does read, in the same room
        await joined(reader, watcher.token, event.id, 8)

        # From here on `idle` never polls while the room changes many times.
        for n in range(24):
            await reserve(http, buyer, event.id, categories[n % 8])
            await reader.until(lambda packets: any("availability-update" in p for p in packets))

        # Its backlog was dropped with it: no updates waiting, the session is gone.
        gone = await idle.read()
        assert "availability-update" not in gone.text, gone.text[:300]
        after = await idle.read()
        assert after.status_code == 400, after.text
        # The reading socket is still in the room and still hears every change.
        await reserve(http, buyer, event.id, categories[0])
        seen = await reader.until(
            lambda packets: any('"availableTickets":96' in p for p in packets)
        )
        assert seen
        assert (
            await http.post(
                "/api/orders", json=order_body(event.id, categories[0]), headers=buyer.headers
            )
        ).status_code == 201
