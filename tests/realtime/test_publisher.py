"""The feed publisher alone: it never blocks the engine, states of a category arriving together
go out as one broadcast of the latest, and a room never goes back in time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actors.messages import Availability, CategoryChanged, UserNotice
from realtime.server import FeedPublisher


class Rooms:
    """Stands in for the Socket.IO server and records what would reach each room."""

    def __init__(self) -> None:
        self.broadcasts: list[tuple[str, dict[str, Any], str]] = []
        self.states_of: list[Any] = []  # each broadcast's `state_of`
        self.emitted: list[tuple[str, Any, str]] = []
        self.heard = asyncio.Event()

    def broadcast(
        self, event: str, data: dict[str, Any], room: str, *, state_of: Any = None
    ) -> None:
        self.broadcasts.append((event, data, room))
        self.states_of.append(state_of)
        self.heard.set()

    async def emit(self, event: str, data: Any, *, room: str, namespace: str) -> None:
        self.emitted.append((event, data, room))


def changed(category_id: int, held: int, version: int) -> CategoryChanged:
    return CategoryChanged(Availability(7, category_id, 100, held, 0, version, 1_700_000_000.0))


def held_by_category(rooms: Rooms) -> dict[int, list[int]]:
    by_category: dict[int, list[int]] = {}
    for event, data, room in rooms.broadcasts:
        assert event == "availability-update" and room == "event:7"
        by_category.setdefault(data["categoryId"], []).append(data["lockedTickets"])
    return by_category


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_states_arriving_together_go_out_once_as_the_latest() -> None:
    rooms = Rooms()
    publisher = FeedPublisher(rooms)
    publisher.bind(asyncio.get_running_loop())

    for held in range(1, 101):
        publisher(changed(1, held=held, version=held))  # returns at once: never blocks
    publisher(changed(2, held=5, version=1))  # another category is not held back by the first
    assert rooms.broadcasts == []
    await next_turn()
    publisher(changed(1, held=101, version=101))
    await next_turn()

    assert held_by_category(rooms) == {1: [100, 101], 2: [5]}
    # Each is the whole state of its category: a socket behind on it gets only the newest.
    assert rooms.states_of == [data["categoryId"] for _, data, _ in rooms.broadcasts]


async def test_a_late_older_state_is_never_sent_after_a_newer_one() -> None:
    rooms = Rooms()
    publisher = FeedPublisher(rooms)
    publisher.bind(asyncio.get_running_loop())
    publisher(changed(1, held=3, version=5))
    await next_turn()
    publisher(changed(1, held=2, version=4))
    await next_turn()
    publisher(changed(1, held=4, version=6))
    await next_turn()
    assert held_by_category(rooms) == {1: [3, 4]}


async def test_a_state_from_another_thread_is_sent_on_the_sockets_loop() -> None:
    rooms = Rooms()
    publisher = FeedPublisher(rooms)
    publisher.bind(asyncio.get_running_loop())
    await asyncio.to_thread(publisher, changed(1, held=9, version=1))
    async with asyncio.timeout(5):
        await rooms.heard.wait()
    assert held_by_category(rooms) == {1: [9]}


async def test_user_notices_go_to_the_user_room() -> None:
    rooms = Rooms()
    publisher = FeedPublisher(rooms)
    publisher.bind(asyncio.get_running_loop())
    publisher(UserNotice(42, "order-completed", {"orderId": 3}))
    await next_turn()
    assert rooms.emitted == [("order-completed", {"orderId": 3}, "user:42")]


async def test_without_any_socket_the_feed_is_ignored() -> None:
    rooms = Rooms()
    publisher = FeedPublisher(rooms)
    publisher(changed(1, held=1, version=1))
    await next_turn()
    assert rooms.broadcasts == [] and rooms.emitted == []


def line_changed(waiting: tuple[int, ...], version: int) -> CategoryChanged:
    availability = Availability(7, 1, 10, 10, 0, version, 1_700_000_000.0, waiting=waiting)
    return CategoryChanged(availability)


def places(rooms: Rooms) -> list[tuple[str, int]]:
    return [
        (room, data["position"])
        for event, data, room in rooms.broadcasts
        if event == "waitlist-position"
    ]


async def test_places_go_out_at_once_then_at_most_once_an_interval_ending_on_the_current_line(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("realtime.server.POSITION_INTERVAL_SECONDS", 0.3)
    rooms = Rooms()
    publisher = FeedPublisher(rooms)
    publisher.bind(asyncio.get_running_loop())
    line = tuple(range(101, 121))  # twenty buyers waiting

    publisher(line_changed(line, version=1))
    await next_turn()
    assert len(places(rooms)) == 20  # the first line: everyone told at once

    # Ten offers in quick succession, each moving everyone up one place.
    for served in range(1, 11):
        publisher(line_changed(line[served:], version=1 + served))
        await next_turn()
    assert len(places(rooms)) == 20  # nothing more inside the interval

    await asyncio.sleep(0.45)
    told = places(rooms)[20:]
    # One round, for the line as it is now: buyer 111 is first, 120 tenth.
    assert sorted(told) == sorted((f"user:{u}", p) for p, u in enumerate(line[10:], 1))
