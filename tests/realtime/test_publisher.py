"""The feed publisher alone: a slow room emit never blocks the engine, and while one emit of a
category is in flight newer states replace each other, the latest going out last.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actors.messages import Availability, CategoryChanged, UserNotice
from realtime.server import FeedPublisher


class SlowRoom:
    """Stands in for the Socket.IO server: each emit waits until the test lets it finish."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any, str]] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.progress = asyncio.Event()

    async def emit(self, event: str, data: Any, *, room: str, namespace: str) -> None:
        self.started.set()
        await self.gate.wait()
        self.emitted.append((event, data, room))
        self.progress.set()


def changed(category_id: int, held: int, version: int) -> CategoryChanged:
    return CategoryChanged(Availability(7, category_id, 100, held, 0, version, 1_700_000_000.0))


async def settle(room: SlowRoom, count: int) -> None:
    async with asyncio.timeout(5):
        while len(room.emitted) < count:
            room.progress.clear()
            await room.progress.wait()


async def test_newer_states_replace_each_other_while_an_emit_is_in_flight() -> None:
    room = SlowRoom()
    publisher = FeedPublisher(room)
    publisher.bind(asyncio.get_running_loop())

    publisher(changed(1, held=1, version=1))
    await room.started.wait()  # the first emit is now in flight and stuck
    for held in range(2, 101):
        publisher(changed(1, held=held, version=held))  # returns at once: never blocks
    publisher(changed(2, held=5, version=1))  # another category is not held back by the first
    room.gate.set()
    await settle(room, 3)

    by_category: dict[int, list[int]] = {}
    for event, data, room_name in room.emitted:
        assert event == "availability-update" and room_name == "event:7"
        by_category.setdefault(data["categoryId"], []).append(data["lockedTickets"])
    assert by_category == {1: [1, 100], 2: [5]}


async def test_a_late_older_state_is_never_sent_after_a_newer_one() -> None:
    room = SlowRoom()
    room.gate.set()
    publisher = FeedPublisher(room)
    publisher.bind(asyncio.get_running_loop())
    publisher(changed(1, held=3, version=5))
    await settle(room, 1)
    publisher(changed(1, held=2, version=4))
    publisher(changed(1, held=4, version=6))
    await settle(room, 2)
    assert [data["lockedTickets"] for _, data, _ in room.emitted] == [3, 4]


async def test_user_notices_go_to_the_user_room() -> None:
    room = SlowRoom()
    room.gate.set()
    publisher = FeedPublisher(room)
    publisher.bind(asyncio.get_running_loop())
    publisher(UserNotice(42, "order-completed", {"orderId": 3}))
    await settle(room, 1)
    assert room.emitted == [("order-completed", {"orderId": 3}, "user:42")]


async def test_without_any_socket_the_feed_is_ignored() -> None:
    room = SlowRoom()
    room.gate.set()
    publisher = FeedPublisher(room)
    publisher(changed(1, held=1, version=1))
    await asyncio.sleep(0)
    assert room.emitted == []
