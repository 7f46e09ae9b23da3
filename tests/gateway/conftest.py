"""Gateway test helpers: an HTTP client on the live system and small REST shortcuts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from persistence.records import EventRecord
from tests.fixtures.system import LiveSystem, TestUser

MakeUser = Callable[..., Awaitable[TestUser]]
MakeEvent = Callable[..., Awaitable[EventRecord]]


@pytest.fixture
async def client(live_system: LiveSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_system.api, timeout=30) as http:
        yield http


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> None:
    """The guide's error shape, with the given status (and reason phrase, if given)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"statusCode", "message", "error"}, body
    assert body["statusCode"] == status
    assert isinstance(body["error"], str) and body["error"]
    if message is not None:
        assert body["message"] == message, body


async def poll(
    check: Callable[[], Awaitable[Any]], *, within: float = 15.0, interval: float = 0.05
) -> Any:
    """Call `check` until it returns something truthy, or fail after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(interval)


def order_body(event_id: int, category_id: int, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {"eventId": event_id, "categoryId": category_id, "quantity": quantity, **extra}


async def reserve(
    client: httpx.AsyncClient, user: TestUser, event_id: int, category_id: int, quantity: int = 1
) -> dict[str, Any]:
    response = await client.post(
        "/api/events/tickets/reserve",
        json=order_body(event_id, category_id, quantity),
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def available_seats(client: httpx.AsyncClient, event_id: int) -> list[int]:
    """Each category's live `availableSeats`, from the public tickets route."""
    categories = (await client.get(f"/api/events/{event_id}/tickets")).json()
    return [category["availableSeats"] for category in categories]
