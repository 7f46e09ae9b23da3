"""The reserve route's fast path answers exactly as its FastAPI route does, and changes nothing
when it refuses.

A request with an `Origin` header is always served by FastAPI (CORS is its job), so sending each
request with and without one compares the two paths over the same live system.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, available_seats, order_body

RESERVE = "/api/events/tickets/reserve"
ORIGIN = {"Origin": "http://localhost:3000"}
VARIABLE = {"lockId", "expiresAt", "availableSeats"}


async def _both(
    client: httpx.AsyncClient, headers: dict[str, str], **request: Any
) -> tuple[httpx.Response, httpx.Response]:
    fast = await client.post(RESERVE, headers=headers, **request)
    slow = await client.post(RESERVE, headers={**headers, **ORIGIN}, **request)
    return fast, slow


def _same_answer(fast: httpx.Response, slow: httpx.Response) -> dict[str, Any]:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert "Origin" in fast.headers.get("vary", "")
    body: dict[str, Any] = fast.json()
    other: dict[str, Any] = slow.json()
    if fast.status_code == 201:
        assert set(body) == set(other)
        body = {k: v for k, v in body.items() if k not in VARIABLE}
        other = {k: v for k, v in other.items() if k not in VARIABLE}
    assert body == other
    return body


async def test_every_answer_matches_the_fastapi_route(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(9, 4))
    other = await make_event(organizer, seats=(5,))
    first, second = (c.id for c in event.categories)
    limit = live_system.settings.max_tickets_per_request
    auth = buyer.headers

    cases: list[tuple[int, dict[str, str], dict[str, Any]]] = [
        (201, auth, {"json": order_body(event.id, first, 2)}),
        (201, auth, {"json": {**order_body(event.id, first, 1), "userId": organizer.id}}),
        (400, auth, {"json": order_body(event.id, first, 0)}),
        (400, auth, {"json": order_body(event.id, first, limit + 1)}),
        (400, auth, {"json": {"eventId": event.id, "categoryId": first}}),
        (400, auth, {"json": {**order_body(event.id, first), "quantity": "1"}}),
        (400, auth, {"json": [order_body(event.id, first)]}),
        (400, {**auth, "Content-Type": "application/json"}, {"content": b'{"eventId": 1,'}),
        (401, {}, {"json": order_body(event.id, first)}),
        (401, {"Authorization": "Bearer not-a-token"}, {"json": order_body(event.id, first)}),
        (401, {"Authorization": f"Basic {buyer.token}"}, {"json": order_body(event.id, first)}),
        (404, auth, {"json": order_body(event.id, 2**31 - 1)}),
        (404, auth, {"json": order_body(event.id, other.categories[0].id)}),
        (404, auth, {"json": order_body(2**31 - 1, first)}),
        (409, auth, {"json": order_body(event.id, second, 5)}),
        (413, auth, {"json": {**order_body(event.id, first), "pad": "x" * 70_000}}),
    ]
    for status, headers, request in cases:
        fast, slow = await _both(client, headers, **request)
        body = _same_answer(fast, slow)
        if status >= 400:
            assert_error(fast, status)
        else:
            assert fast.status_code == status, fast.text
            assert body["success"] is True

    # Only the four 201s (two per path) changed anything.
    assert await available_seats(client, event.id) == [9 - 2 - 2 - 1 - 1, 4]
    assert await available_seats(client, other.id) == [5]


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 7):
        yield body[start : start + 7]


@pytest.mark.parametrize("quantity", [1, 99])
async def test_a_body_in_many_chunks_is_read_whole(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent, quantity: int
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))
    category = event.categories[0].id
    body = b'{"eventId": %d, "categoryId": %d, "quantity": %d}' % (event.id, category, quantity)

    response = await client.post(
        RESERVE,
        content=_chunks(body),
        headers={**buyer.headers, "Content-Type": "application/json; charset=utf-8"},
    )

    if quantity == 1:
        assert response.status_code == 201, response.text
        assert response.json()["availableSeats"] == 4
    else:
        assert_error(response, 400, "Validation failed")
    assert await available_seats(client, event.id) == [5 - (quantity == 1)]


async def test_a_body_that_is_not_json_goes_to_the_fastapi_route(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))
    form = {"eventId": str(event.id), "categoryId": str(event.categories[0].id), "quantity": "1"}

    fast, slow = await _both(client, buyer.headers, data=form)

    _same_answer(fast, slow)
    assert fast.status_code >= 400
    assert await available_seats(client, event.id) == [5]


async def test_cross_origin_calls_still_get_cors_headers(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))

    response = await client.post(
        RESERVE,
        json=order_body(event.id, event.categories[0].id),
        headers={**buyer.headers, **ORIGIN},
    )

    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN["Origin"]


async def test_live_seats_reads_match_the_fastapi_route(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(9, 4))
    held = await client.post(
        RESERVE, json=order_body(event.id, event.categories[1].id, 3), headers=buyer.headers
    )
    assert held.status_code == 201, held.text

    paths = [
        (200, f"/api/events/{event.id}/tickets"),
        (200, f"/api/events/{event.id}/tickets?x=1"),
        (200, f"/api/events/0{event.id}/tickets"),
        (404, f"/api/events/{2**31 - 1}/tickets"),
        (400, f"/api/events/{2**31}/tickets"),
        (400, "/api/events/0/tickets"),
        (400, "/api/events/-1/tickets"),
        (400, "/api/events/abc/tickets"),
        (400, "/api/events/%D9%A1/tickets"),  # an Arabic-Indic digit one
    ]
    for status, path in paths:
        fast = await client.get(path)
        slow = await client.get(path, headers=ORIGIN)
        assert fast.status_code == slow.status_code == status, (path, fast.text, slow.text)
        assert fast.json() == slow.json(), path
        assert "Origin" in fast.headers.get("vary", "")
        if status == 200:
            seats = [(c["reservedSeats"], c["availableSeats"]) for c in fast.json()]
            assert seats == [(0, 9), (3, 1)]
        else:
            assert_error(fast, status)
