"""Sockets are bounded too: connections per user, and a token that expires while its socket is
open stops working at its `exp` (the socket is told "Unauthorized" and dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
import socketio

from persistence import users
from sales.identity import Role, user_stamp
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import available_seats, poll
from tests.realtime.conftest import Connect

StartSystem = Callable[..., Awaitable[LiveSystem]]


async def _stamp_of(live: LiveSystem, user_id: int) -> int:
    async with live.runtime.db.connect() as conn:
        record = await users.get_user(conn, user_id)
    assert record is not None
    return user_stamp(record.created_at)


async def test_connections_per_user_are_bounded(
    start_system: StartSystem, connect: Connect
) -> None:
    live = await start_system(socket_connections_per_user=2)
    user = await create_user(live)
    other = await create_user(live)
    # A flood of connects at once: exactly the bound gets in, the rest are told why.
    attempts = await asyncio.gather(
        *(connect(live.api, user.token) for _ in range(8)), return_exceptions=True
    )
    inside = [a for a in attempts if not isinstance(a, BaseException)]
    assert len(inside) == 2, attempts
    refusals = [r.received["connect_error"] for r in connect.opened if r not in inside]
    assert refusals == [[{"message": "Too many connections for this user"}]] * 6
    first = inside[0]

    # Someone else's identity is someone else's budget.
    assert (await connect(live.api, other.token)).sid

    # A closed socket frees its place.
    await first.client.disconnect()

    async def admitted() -> bool:
        try:
            await connect(live.api, user.token)
        except socketio.exceptions.ConnectionError:
            return False
        return True

    await poll(admitted)


async def test_a_socket_whose_token_expires_is_told_and_dropped(
    start_system: StartSystem, connect: Connect
) -> None:
    live = await start_system()
    organizer = await create_user(live, Role.ORGANIZER)
    user = await create_user(live)
    event = await create_event(live, organizer, (10,))
    category = event.categories[0].id
    lifetime = live.settings.token_lifetime.total_seconds()
    since = await live.call(_stamp_of(live, user.id))
    token = live.runtime.tokens.issue(
        user.id, Role.ASSISTANT, now=time.time() - lifetime + 3, since=since
    )
    socket = await connect(live.api, token)
    lock = {"eventId": event.id, "categoryId": category, "quantity": 1}
    await socket.emit("lock-tickets", lock)
    assert (await socket.next("lock-tickets-response"))["success"] is True

    async def refused() -> bool:
        if not socket.received["error"]:
            # Once the token has expired, the next event is answered with the refusal.
            with contextlib.suppress(socketio.exceptions.BadNamespaceError):
                await socket.emit("heartbeat")
        return bool(socket.received["error"])

    await poll(refused, within=20, interval=0.2)
    assert socket.received["error"] == [{"message": "Unauthorized"}]
    await socket.until(lambda: bool(socket.received["disconnect"]))
    assert not socket.client.connected

    # Nothing more is held than the one lock taken while the token was valid.
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        assert await available_seats(http, event.id) == [9]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(live.api, token, greeted=False)
