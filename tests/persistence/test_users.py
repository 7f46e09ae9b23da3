"""Users: unique usernames, lookups by name and id."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.users import UsernameTaken, create_user, get_user, get_user_by_username
from tests.persistence.conftest import unique


async def test_create_and_find_a_user(db: AsyncEngine) -> None:
    name = unique("ada") + "@example.com"
    async with db.begin() as conn:
        user = await create_user(conn, name, "bcrypt-hash", "organizer")
    async with db.connect() as conn:
        assert await get_user_by_username(conn, name) == user
        assert await get_user(conn, user.id) == user
        assert await get_user(conn, -1) is None
        assert await get_user_by_username(conn, unique("nobody")) is None
    assert user.role == "organizer" and user.password_hash == "bcrypt-hash"
    assert user.created_at.tzinfo is not None


async def test_taken_username_is_refused_and_the_transaction_survives(db: AsyncEngine) -> None:
    name = unique("bob")
    async with db.begin() as conn:
        await create_user(conn, name, "h", "user")
    async with db.begin() as conn:
        with pytest.raises(UsernameTaken):
            await create_user(conn, name, "other", "user")
        # The refusal did not abort the unit of work.
        other = await create_user(conn, unique("carol"), "h", "user")
    async with db.connect() as conn:
        kept = await get_user_by_username(conn, name)
        assert kept is not None and kept.password_hash == "h"
        assert await get_user(conn, other.id) is not None
