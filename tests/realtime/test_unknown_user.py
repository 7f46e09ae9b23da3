"""A socket connect with a token we signed for a user id that does not exist is refused, as
REST refuses it (both run `Authenticator.principal`)."""

from __future__ import annotations

import pytest
import socketio

from sales.identity import Role
from tests.fixtures.ghosts import ghost_token
from tests.fixtures.system import LiveSystem, create_user
from tests.realtime.conftest import Connect


@pytest.mark.parametrize("via", ["auth", "query"])
async def test_a_signed_token_of_a_user_that_does_not_exist_cannot_connect(
    live_system: LiveSystem, connect: Connect, via: str
) -> None:
    token = await ghost_token(live_system, Role.ORGANIZER)

    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(live_system.api, token, via=via, greeted=False)

    refused = connect.opened[-1]
    assert refused.received["connect_error"] == [{"message": "Unauthorized"}]
    assert not refused.received["connected"]
    # A real user's token connects the same way: the refusal was the user's.
    user = await create_user(live_system)
    await connect(live_system.api, user.token, via=via)
