"""The waiting room's rows: one per buyer, arrival order, the draw and admissions in one
statement each, read back whole."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from persistence import catalog, queue
from persistence.records import WaitingRoomConfig
from tests.persistence.conftest import MakeEvent, MakeUser


async def test_entries_keep_arrival_order_and_one_row_per_user(
    db: AsyncEngine, make_user: MakeUser, make_event: MakeEvent
) -> None:
    event = await make_event(10)
    users = [(await make_user()).id for _ in range(4)]
    async with db.begin() as conn:
        first = await queue.add(conn, event.id, users[:3], early=True)
        again = await queue.add(conn, event.id, [users[1], users[3]], early=False)
    assert [user for user, _ in first] == users[:3]
    assert [user for user, _ in again] == [users[3]]  # users[1] is already in line
    async with db.begin() as conn:
        await queue.store_draw(conn, event.id, [users[2], users[0], users[1]])
        await queue.admit(conn, event.id, [users[2], users[0]], 1_000.0, 1_600.0)
    async with db.connect() as conn:
        rows = await queue.entries(conn, event.id)
        assert await queue.count(conn, event.id) == 4
        assert await queue.buyers(conn, event.id, users) == set()
    assert [row.user_id for row in rows] == users
    assert [row.rank for row in rows] == [1, 2, 0, None]
    assert [row.early for row in rows] == [True, True, True, False]
    assert [row.admitted_at for row in rows] == [1_000.0, None, 1_000.0, None]
    assert rows[2].pass_expires_at == 1_600.0


async def test_the_waiting_room_settings_round_trip(db: AsyncEngine, make_event: MakeEvent) -> None:
    event = await make_event(10)
    assert event.waiting_room is None and not event.queued
    async with db.begin() as conn:
        changed = await catalog.update_event(
            conn,
            event.id,
            catalog.waiting_room_columns(WaitingRoomConfig(True, 250, event.event_date)),
        )
    assert changed is not None and changed.queued
    assert changed.waiting_room == WaitingRoomConfig(True, 250, event.event_date)
