"""A token names one user row, not an id: after a wipe that hands the id to somebody else
(under the same secret), the old token is refused on REST and at socket connect."""

from __future__ import annotations

import uuid

import httpx
import pytest
import socketio
from sqlalchemy import delete, insert

from persistence.models import users
from sales.identity import Role, user_stamp
from tests.fixtures import system
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeUser, assert_error
from tests.realtime.conftest import Sockets


async def _reissue_id(live: LiveSystem, old: system.TestUser) -> system.TestUser:
    """What a wiped and refilled database does: the id now belongs to another person."""
    username = f"newcomer-{uuid.uuid4().hex[:10]}@example.com"

    async def swap() -> system.TestUser:
        runtime = live.runtime
        async with runtime.db.begin() as conn:
            await conn.execute(delete(users).where(users.c.id == old.id))
            row = (
                await conn.execute(
                    insert(users)
                    .values(id=old.id, username=username, password_hash="x", role="assistant")
                    .returning(users.c.created_at)
                )
            ).one()
        token = runtime.tokens.issue(old.id, Role.ASSISTANT, since=user_stamp(row.created_at))
        return system.TestUser(old.id, username, Role.ASSISTANT, token)

    return await live.call(swap())


async def test_a_token_of_a_reused_id_is_refused(
    live_system: LiveSystem, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    previous = await make_user(Role.ORGANIZER)  # its token was never shown to the gateway
    newcomer = await _reissue_id(live_system, previous)

    assert_error(await client.get("/api/user", headers=previous.headers), 401, "Unauthorized")
    assert_error(await client.get("/api/orders", headers=previous.headers), 401)
    mine = await client.get("/api/user", headers=newcomer.headers)
    assert mine.status_code == 200 and mine.json()["username"] == newcomer.username

    sockets = Sockets()
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sockets(live_system.api, previous.token, greeted=False)
        assert sockets.opened[-1].received["connect_error"] == [{"message": "Unauthorized"}]
        assert (await sockets(live_system.api, newcomer.token)).sid
    finally:
        await sockets.close()


async def test_a_token_without_its_user_stamp_is_refused(
    live_system: LiveSystem, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    bare = live_system.runtime.tokens.issue(user.id, Role.ASSISTANT)  # signed, but unbound
    assert_error(await client.get("/api/user", headers={"Authorization": f"Bearer {bare}"}), 401)
    assert (await client.get("/api/user", headers=user.headers)).status_code == 200
