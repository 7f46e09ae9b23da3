"""Row factories for persistence tests: every test makes its own users, events and categories.

One database serves the whole run, so names are unique (uuid) and nothing is cleaned up.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.catalog import create_event
from persistence.records import CategoryDraft, EventDraft, EventRecord, UserRecord
from persistence.users import create_user

MakeUser = Callable[..., Awaitable[UserRecord]]
MakeEvent = Callable[..., Awaitable[EventRecord]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_user(db: AsyncEngine) -> MakeUser:
    async def factory(role: str = "user") -> UserRecord:
        async with db.begin() as conn:
            return await create_user(conn, unique("user") + "@example.com", "hash", role)

    return factory


@pytest.fixture
def make_event(db: AsyncEngine, make_user: MakeUser) -> MakeEvent:
    async def factory(
        *seats: int,
        created_by: int | None = None,
        event_category: str = "Music",
        days_ahead: float = 30,
    ) -> EventRecord:
        if created_by is None:
            created_by = (await make_user("organizer")).id
        draft = EventDraft(
            event_name=unique("event"),
            event_category=event_category,
            description="a test event",
            event_date=datetime.now(UTC) + timedelta(days=days_ahead),
            location="Hall",
            categories=tuple(
                CategoryDraft(f"C{index}", Decimal("12.50"), total, None)
                for index, total in enumerate(seats or (10,))
            ),
        )
        async with db.begin() as conn:
            return await create_event(conn, draft, created_by)

    return factory
