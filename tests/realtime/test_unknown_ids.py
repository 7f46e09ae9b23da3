"""Unknown ids never start an actor process: a flood of socket unlocks (and their REST twins)
naming categories, events or locks that do not exist, or a category whose event was deleted,
answers "not found" and leaves the namespace's actors as they were.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import ray

from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import poll
from tests.realtime.conftest import Connect

StartSystem = Callable[..., Awaitable[LiveSystem]]
UNKNOWN = 2_000_000_000  # a category id no test ever creates
FLOOD = 60


def named_actors(namespace: str) -> set[str]:
    return {
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["namespace"] == namespace
    }


def _unknown_unlocks(user_id: int, known_event: int) -> list[dict[str, Any]]:
    payloads: list[dict[str, Any]] = []
    for i in range(FLOOD):
        category = UNKNOWN + i
        payloads += [
            {"categoryId": category, "quantity": 1},
            {"lockId": f"lock_{category}_{user_id}_{i:016x}"},
            {"lockId": f"sale_{category}_{user_id}_{i:016x}"},
            {"eventId": known_event, "categoryId": category, "quantity": 1},
        ]
    return payloads


async def test_a_flood_of_unknown_ids_starts_no_actor(
    start_system: StartSystem, connect: Connect
) -> None:
    live = await start_system(
        socket_events_per_second=10_000, socket_event_burst=10_000, actor_idle_seconds=1
    )
    namespace = live.settings.ray_namespace
    organizer = await create_user(live, Role.ORGANIZER)
    user = await create_user(live)
    kept = await create_event(live, organizer, (5,))
    doomed = await create_event(live, organizer, (5,))
    gone = doomed.categories[0].id
    socket = await connect(live.api, user.token)

    # A category this gateway has met, then its event deleted: still unknown from then on.
    await socket.emit("unlock-tickets", {"categoryId": gone, "quantity": 1})
    assert (await socket.next("unlock-tickets-response"))["success"] is False
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        deleted = await http.delete(f"/api/events/{doomed.id}", headers=organizer.headers)
        assert deleted.status_code == 200, deleted.text

    async def passivated() -> bool:
        return f"category:{gone}" not in named_actors(namespace)

    await poll(passivated, within=30)
    before = named_actors(namespace)

    payloads = _unknown_unlocks(user.id, kept.id)
    payloads += [{"categoryId": gone, "quantity": 1}] * FLOOD
    payloads += [{"lockId": f"lock_{gone}_{user.id}_{i:016x}"} for i in range(FLOOD)]
    # Any actor started meanwhile shows by its name (it lives about a second, loading).
    seen: set[str] = set()

    async def watch() -> None:
        while True:
            seen.update(named_actors(namespace))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        for payload in payloads:
            await socket.emit("unlock-tickets", payload)
        answers = await socket.count("unlock-tickets-response", len(payloads) + 1)
    except TimeoutError:
        answers = []
    finally:
        watcher.cancel()
    assert seen <= before, f"actors started by unknown ids: {sorted(seen - before)[:5]}"
    assert answers, "the flood was not answered in time"
    flood_answers = answers[1:]
    assert all(answer["success"] is False for answer in flood_answers)
    assert {answer["message"] for answer in flood_answers} <= {
        "Ticket category not found",
        "Ticket category not found for this event",
        "Lock not found or already released",
    }, {answer["message"] for answer in flood_answers}
    for i in range(FLOOD):
        await socket.emit(
            "lock-tickets", {"eventId": kept.id, "categoryId": UNKNOWN + i, "quantity": 1}
        )
    locks = await socket.count("lock-tickets-response", FLOOD)
    assert all(answer["success"] is False for answer in locks)
    assert not socket.received["error"]

    # The REST twins of the same requests.
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        for category in [UNKNOWN, UNKNOWN + 1, gone]:
            answers_rest = [
                await http.post(
                    "/api/events/tickets/release",
                    json={"categoryId": category, "quantity": 1},
                    headers=user.headers,
                ),
                await http.post(
                    "/api/events/tickets/release",
                    json={"categoryId": category, "lockId": f"lock_{category}_{user.id}_{0:016x}"},
                    headers=user.headers,
                ),
                await http.post(
                    "/api/orders/with-lock",
                    json={
                        "eventId": kept.id,
                        "categoryId": category,
                        "quantity": 1,
                        "lockId": f"lock_{category}_{user.id}_{0:016x}",
                    },
                    headers=user.headers,
                ),
            ]
            for answer in answers_rest:
                assert answer.status_code == 404, answer.text

    assert named_actors(namespace) <= before
