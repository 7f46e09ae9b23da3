"""The queue actor's shell in this process (its Ray wrapper aside), on the real ledger and the
real change feed: a fresh instance rebuilds the same order and admissions, and a queue that
nobody waits in retires after its idle time while one with buyers in line does not."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.queue_actor import QueueActor, QueueConfig
from persistence import catalog
from persistence.records import EventRecord, WaitingRoomConfig
from tests.fixtures.ray_runtime import kill_namespace
from tests.gateway.conftest import poll

Start = Callable[..., QueueActor]


@pytest.fixture
async def start_queue(database_url: str, ray_runtime: None) -> AsyncIterator[Start]:
    namespace = f"queue-{uuid.uuid4().hex[:12]}"
    actors: list[QueueActor] = []

    def start(event_id: int, retired: list[int] | None = None, **overrides: Any) -> QueueActor:
        config = QueueConfig(
            database_url=database_url,
            namespace=namespace,
            tick_seconds=0.05,
            refresh_seconds=0.1,
            **overrides,
        )
        actor = QueueActor(
            config,
            event_id,
            retire=lambda: (retired if retired is not None else []).append(event_id),
            wake=lambda: None,
            rng=random.Random(7),
        )
        actors.append(actor)
        return actor

    yield start
    for actor in actors:
        await actor.close()
    kill_namespace(namespace)


async def _room(db: AsyncEngine, event: EventRecord, *, rate: int, opens_in: float) -> EventRecord:
    room = WaitingRoomConfig(True, rate, datetime.now(UTC) + timedelta(seconds=opens_in))
    async with db.begin() as conn:
        changed = await catalog.update_event(conn, event.id, catalog.waiting_room_columns(room))
    assert changed is not None
    return changed


async def test_a_fresh_instance_rebuilds_the_same_order_and_admissions(
    db: AsyncEngine,
    start_queue: Start,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
) -> None:
    event = await _room(db, await make_category(seats=100), rate=20, opens_in=3600)
    buyers = [await make_buyer() for _ in range(30)]
    first = start_queue(event.id)
    places = await asyncio.gather(*(first.join(buyer) for buyer in buyers))
    assert all(place.position is None for place in places)  # joined before the opening
    await _room(db, event, rate=20, opens_in=0.1)  # the queue re-reads its event and opens

    async def ten_admitted() -> bool:
        return sum(p is not None and p.admitted for p in await first.places(buyers)) >= 10

    await poll(ten_admitted, within=20)
    await first.close()
    line = await first.line()
    before = {p.user_id: p for p in await first.places(buyers) if p is not None}

    second = start_queue(event.id)
    assert await second.line() == line
    after = await second.places(buyers)
    for place in after:
        assert place is not None
        earlier = before[place.user_id]
        assert place.admitted == earlier.admitted
        assert place.pass_expires_at == pytest.approx(earlier.pass_expires_at)
        assert place.position == earlier.position


async def test_an_idle_queue_retires_but_not_while_anyone_waits(
    db: AsyncEngine,
    start_queue: Start,
    make_category: Callable[..., Awaitable[EventRecord]],
    make_buyer: Callable[[], Awaitable[int]],
) -> None:
    empty = await _room(db, await make_category(), rate=5, opens_in=3600)
    waited = await _room(db, await make_category(), rate=5, opens_in=3600)
    retired: list[int] = []
    idle = start_queue(empty.id, retired, idle_seconds=0.3)
    busy = start_queue(waited.id, retired, idle_seconds=0.3)
    assert await idle.ready() == 0
    await busy.join(await make_buyer())

    async def retired_empty() -> bool:
        return empty.id in retired

    await poll(retired_empty, within=10)
    await asyncio.sleep(0.5)  # several refreshes past the idle time
    # (In this process the retire is only noted, so the idle one notes it on every refresh.)
    assert set(retired) == {empty.id}
