"""User accounts: create one with a unique username, find one by name or id.

Repositories take the caller's connection and never commit.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.arrays import among
from persistence.errors import UsernameTaken
from persistence.models import users
from persistence.records import UserRecord

__all__ = [
    "UsernameTaken",
    "create_user",
    "creation_times",
    "get_user",
    "get_user_by_username",
]


def _record(row: Any) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        role=row.role,
        created_at=row.created_at,
    )


async def create_user(
    conn: AsyncConnection, username: str, password_hash: str, role: str
) -> UserRecord:
    """Insert a user; raises UsernameTaken without aborting the caller's transaction."""
    statement = (
        insert(users)
        .values(username=username, password_hash=password_hash, role=role)
        .on_conflict_do_nothing(index_elements=[users.c.username])
        .returning(*users.c)
    )
    row = (await conn.execute(statement)).first()
    if row is None:
        raise UsernameTaken(username)
    return _record(row)


async def get_user_by_username(conn: AsyncConnection, username: str) -> UserRecord | None:
    row = (await conn.execute(select(users).where(users.c.username == username))).first()
    return None if row is None else _record(row)


async def get_user(conn: AsyncConnection, user_id: int) -> UserRecord | None:
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return None if row is None else _record(row)


async def creation_times(conn: AsyncConnection, user_ids: Collection[int]) -> dict[int, datetime]:
    """`created_at` of each of these users that exists, in one query."""
    statement = select(users.c.id, users.c.created_at).where(among(users.c.id, user_ids))
    return {row.id: row.created_at for row in await conn.execute(statement)}
