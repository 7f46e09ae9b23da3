"""An engine per test, in the test's own loop, on its own Ray namespace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import SeatClient
from actors.config import ActorConfig
from persistence import catalog, users
from persistence.records import CategoryDraft, EventDraft, EventRecord
from tests.fixtures.ray_runtime import kill_namespace
from tests.fixtures.system import TEST_START_TIMEOUT_SECONDS

EngineFactory = Callable[..., Awaitable[SeatClient]]


@pytest.fixture
async def start_engine(
    database_url: str, db: AsyncEngine, ray_runtime: None
) -> AsyncIterator[EngineFactory]:
    engines: list[tuple[SeatClient, str]] = []

    async def start(**overrides: Any) -> SeatClient:
        values: dict[str, Any] = {
            "database_url": database_url,
            "namespace": f"actors-{uuid.uuid4().hex[:12]}",
            "snapshot_interval_seconds": 0.2,
            # These tests kill actors and call them at once: on a loaded machine Ray's restart
            # can take longer than the 5 s production deadline, which is not what they test
            # (tests/cluster does: a call past the deadline answers 503).
            "call_timeout_seconds": 30.0,
            "start_timeout_seconds": TEST_START_TIMEOUT_SECONDS,
        }
        values.update(overrides)
        config = ActorConfig(**values)
        engine = await SeatClient.start(config, db)
        engines.append((engine, config.namespace))
        return engine

    yield start
    for engine, namespace in engines:
        await engine.close()
        kill_namespace(namespace)


@pytest.fixture
async def engine(start_engine: EngineFactory) -> SeatClient:
    return await start_engine()


@pytest.fixture
def make_category(db: AsyncEngine) -> Callable[..., Awaitable[EventRecord]]:
    async def make(seats: int = 10) -> EventRecord:
        async with db.begin() as conn:
            owner = await users.create_user(conn, f"org-{uuid.uuid4().hex}", "x", "organizer")
            return await catalog.create_event(
                conn,
                EventDraft(
                    event_name="Actor test",
                    event_category="Test",
                    description=None,
                    event_date=datetime.now(UTC) + timedelta(days=1),
                    location=None,
                    categories=(CategoryDraft("General", Decimal("10.00"), seats, None),),
                ),
                owner.id,
            )

    return make


@pytest.fixture
def make_buyer(db: AsyncEngine) -> Callable[[], Awaitable[int]]:
    async def make() -> int:
        async with db.begin() as conn:
            user = await users.create_user(conn, f"buyer-{uuid.uuid4().hex}", "x", "assistant")
        return user.id

    return make
