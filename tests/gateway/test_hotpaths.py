"""The hot routes' fast path answers exactly as their FastAPI routes do, changes nothing when it
refuses, and is really the one answering.

A request with an `Origin` header is always served by FastAPI (CORS is its job), so sending each
request with and without one compares the two paths over the same live system. Which path
answered is told by a spy on `HotPaths._answer`, the one place the fast path sends from: each
request carries a probe header, and the spy records the probes it answered. Nothing in the
production path changes for it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.hotpaths import HotPaths
from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import (
    MakeEvent,
    MakeUser,
    assert_error,
    available_seats,
    order_body,
    reserve,
)

RESERVE = "/api/events/tickets/reserve"
ORDERS = "/api/orders"
WITH_LOCK = "/api/orders/with-lock"
ORIGIN = {"Origin": "http://localhost:3000"}
VARIABLE = {"lockId", "expiresAt", "availableSeats"}
ORDER_VARIABLE = {"id", "createdAt", "updatedAt"}
PROBE = "x-test-probe"


class FastPath:
    """Which probed requests the fast path answered."""

    def __init__(self) -> None:
        self.answered: set[str] = set()

    @staticmethod
    def probe(headers: dict[str, str] | None = None) -> dict[str, str]:
        return {**(headers or {}), PROBE: uuid.uuid4().hex}

    def took(self, response: httpx.Response) -> bool:
        return response.request.headers[PROBE] in self.answered


@pytest.fixture
def fast_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[FastPath]:
    spy = FastPath()
    answer = HotPaths._answer

    async def answered(
        self: HotPaths, scope: Scope, receive: Receive, send: Send, work: Awaitable[Response]
    ) -> None:
        for name, value in scope["headers"]:
            if name == PROBE.encode():
                spy.answered.add(value.decode())
        await answer(self, scope, receive, send, work)

    monkeypatch.setattr(HotPaths, "_answer", answered)
    yield spy


async def _both(
    client: httpx.AsyncClient, fast_path: FastPath, headers: dict[str, str], **request: Any
) -> tuple[httpx.Response, httpx.Response]:
    fast = await client.post(RESERVE, headers=fast_path.probe(headers), **request)
    slow = await client.post(RESERVE, headers=fast_path.probe({**headers, **ORIGIN}), **request)
    assert not fast_path.took(slow), "a cross-origin call must be FastAPI's"
    return fast, slow


def _same_answer(
    fast: httpx.Response, slow: httpx.Response, variable: set[str] = VARIABLE
) -> dict[str, Any]:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert "Origin" in fast.headers.get("vary", "")
    body: dict[str, Any] = fast.json()
    other: dict[str, Any] = slow.json()
    if fast.status_code == 201:
        assert set(body) == set(other)
        body = {k: v for k, v in body.items() if k not in variable}
        other = {k: v for k, v in other.items() if k not in variable}
    assert body == other
    return body


async def test_every_answer_matches_the_fastapi_route(
    client: httpx.AsyncClient,
    live_system: LiveSystem,
    make_user: MakeUser,
    make_event: MakeEvent,
    fast_path: FastPath,
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(15, 4))
    other = await make_event(organizer, seats=(5,))
    first, second = (c.id for c in event.categories)
    limit = live_system.settings.max_tickets_per_request
    auth = buyer.headers
    json = {**auth, "Content-Type": "application/json"}
    unusual_json = {**auth, "Content-Type": "Application/JSON ; charset=UTF-8"}
    two_params = "application/json; charset=utf-8; profile=x"
    # A body of exactly the size limit is the fast path's; one byte more is refused by FastAPI.
    head = b'{"eventId": %d, "categoryId": %d, "quantity": 1, "pad": "' % (event.id, first)
    pad = live_system.settings.max_body_bytes - len(head) - len(b'"}')
    at_limit, past_limit = (head + b"x" * size + b'"}' for size in (pad, pad + 1))

    # (status, answered by the fast path, headers, request)
    cases: list[tuple[int, bool, dict[str, str], dict[str, Any]]] = [
        (201, True, auth, {"json": order_body(event.id, first, 2)}),
        (201, True, auth, {"json": {**order_body(event.id, first, 1), "userId": organizer.id}}),
        (400, False, auth, {"json": order_body(event.id, first, 0)}),
        (400, True, auth, {"json": order_body(event.id, first, limit + 1)}),
        (400, False, auth, {"json": {"eventId": event.id, "categoryId": first}}),
        (400, False, auth, {"json": {**order_body(event.id, first), "quantity": "1"}}),
        (400, False, auth, {"json": [order_body(event.id, first)]}),
        (400, False, json, {"content": b'{"eventId": 1,'}),
        (401, True, {}, {"json": order_body(event.id, first)}),
        (401, True, {"Authorization": "Bearer not-a-token"}, {"json": order_body(event.id, first)}),
        (
            401,
            True,
            {"Authorization": f"Basic {buyer.token}"},
            {"json": order_body(event.id, first)},
        ),
        (404, True, auth, {"json": order_body(event.id, 2**31 - 1)}),
        (404, True, auth, {"json": order_body(event.id, other.categories[0].id)}),
        (404, True, auth, {"json": order_body(2**31 - 1, first)}),
        (409, True, auth, {"json": order_body(event.id, second, 5)}),
        (413, False, auth, {"json": {**order_body(event.id, first), "pad": "x" * 70_000}}),
        (201, True, unusual_json, {"json": order_body(event.id, first, 1)}),
        (201, True, {**json, "Content-Type": two_params}, {"json": order_body(event.id, first, 1)}),
        (201, True, json, {"content": at_limit}),
        (413, False, json, {"content": past_limit}),
    ]
    for status, hot, headers, request in cases:
        fast, slow = await _both(client, fast_path, headers, **request)
        assert fast_path.took(fast) is hot, (status, request)
        body = _same_answer(fast, slow)
        if status >= 400:
            assert_error(fast, status)
        else:
            assert fast.status_code == status, fast.text
            assert body["success"] is True

    # Only the 201s (each twice: once per path) changed anything.
    assert await available_seats(client, event.id) == [15 - 2 * (2 + 1 + 1 + 1 + 1), 4]
    assert await available_seats(client, other.id) == [5]


async def test_every_order_answer_matches_the_fastapi_route(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    make_event: MakeEvent,
    fast_path: FastPath,
) -> None:
    """Buying, with a lock and without: each case is sent once per path, each with a hold of
    its own where it needs one (a lock is bought once)."""
    organizer = await make_user(Role.ORGANIZER)
    buyer, stranger = await make_user(), await make_user()
    event = await make_event(organizer, seats=(12, 2))
    first, second = (c.id for c in event.categories)

    async def locks(quantity: int = 1, owner: Any = buyer) -> list[str]:
        return [(await reserve(client, owner, event.id, first, quantity))["lockId"] for _ in "ab"]

    def with_lock(lock_id: str, quantity: int = 1) -> dict[str, Any]:
        return {**order_body(event.id, first, quantity), "lockId": lock_id}

    auth = buyer.headers
    # (status, answered by the fast path, headers, path, a body per path)
    cases: list[tuple[int, bool, dict[str, str], str, list[dict[str, Any]]]] = [
        (201, True, auth, WITH_LOCK, [with_lock(lock, 2) for lock in await locks(2)]),
        (403, True, auth, WITH_LOCK, [with_lock(lock) for lock in await locks(owner=stranger)]),
        (404, True, auth, WITH_LOCK, [with_lock("lock_nobody_made_this")] * 2),
        (400, True, auth, WITH_LOCK, [with_lock(lock, 2) for lock in await locks(1)]),
        (401, True, {}, WITH_LOCK, [with_lock(lock) for lock in await locks()]),
        (400, False, auth, WITH_LOCK, [{**with_lock("lock_x"), "quantity": 0}] * 2),
        (400, False, auth, WITH_LOCK, [{**with_lock("lock_x"), "lockId": ""}] * 2),
        (201, True, auth, ORDERS, [order_body(event.id, second, 1)] * 2),
        (409, True, auth, ORDERS, [order_body(event.id, second, 1)] * 2),
        (404, True, auth, ORDERS, [order_body(event.id, 2**31 - 1)] * 2),
    ]
    for status, hot, headers, path, (fast_body, slow_body) in cases:
        fast = await client.post(path, json=fast_body, headers=fast_path.probe(headers))
        slow = await client.post(path, json=slow_body, headers=fast_path.probe(headers | ORIGIN))
        assert not fast_path.took(slow)
        assert fast_path.took(fast) is hot, (status, path, fast_body)
        body = _same_answer(fast, slow, ORDER_VARIABLE)
        if status >= 400:
            assert_error(fast, status)
        else:
            assert fast.status_code == status, fast.text
            assert body["status"] == "pending" and body["userId"] == buyer.id

    # Sold: 2 + 2 with the lock, 1 + 1 without; the refused cases' holds are still held (6).
    assert await available_seats(client, event.id) == [12 - 4 - 6, 0]
    mine = (await client.get("/api/orders", headers=auth)).json()
    assert sorted(order["quantity"] for order in mine) == [1, 1, 2, 2]


@pytest.mark.parametrize("valid_first", [True, False])
async def test_two_authorization_headers_are_read_alike_by_both_paths(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    make_event: MakeEvent,
    fast_path: FastPath,
    valid_first: bool,
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))
    tokens = [f"Bearer {buyer.token}", "Bearer not-a-token"]
    if not valid_first:
        tokens.reverse()
    body = order_body(event.id, event.categories[0].id)
    answers = []
    for extra in ({}, ORIGIN):
        headers = [
            *((name, value) for name, value in fast_path.probe(extra).items()),
            *(("Authorization", token) for token in tokens),
        ]
        answers.append(await client.post(RESERVE, json=body, headers=headers))
    fast, slow = answers

    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.status_code == (201 if valid_first else 401), fast.text  # the first one counts
    assert not fast_path.took(fast) and not fast_path.took(slow)
    assert await available_seats(client, event.id) == [5 - 2 * valid_first]


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 7):
        yield body[start : start + 7]


@pytest.mark.parametrize("quantity", [1, 99])
async def test_a_body_in_many_chunks_is_read_whole(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    make_event: MakeEvent,
    fast_path: FastPath,
    quantity: int,
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))
    category = event.categories[0].id
    body = b'{"eventId": %d, "categoryId": %d, "quantity": %d}' % (event.id, category, quantity)

    response = await client.post(
        RESERVE,
        content=_chunks(body),
        headers=fast_path.probe(
            {**buyer.headers, "Content-Type": "application/json; charset=utf-8"}
        ),
    )

    assert fast_path.took(response)  # read whole, then decided by the fast path
    if quantity == 1:
        assert response.status_code == 201, response.text
        assert response.json()["availableSeats"] == 4
    else:
        assert_error(response, 400, "Validation failed")
    assert await available_seats(client, event.id) == [5 - (quantity == 1)]


async def test_a_body_that_is_not_json_goes_to_the_fastapi_route(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent, fast_path: FastPath
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))
    form = {"eventId": str(event.id), "categoryId": str(event.categories[0].id), "quantity": "1"}

    fast, slow = await _both(client, fast_path, buyer.headers, data=form)

    assert not fast_path.took(fast)
    _same_answer(fast, slow)
    assert fast.status_code >= 400
    assert await available_seats(client, event.id) == [5]


async def test_cross_origin_calls_still_get_cors_headers(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent, fast_path: FastPath
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))

    response = await client.post(
        RESERVE,
        json=order_body(event.id, event.categories[0].id),
        headers=fast_path.probe({**buyer.headers, **ORIGIN}),
    )

    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN["Origin"]
    assert not fast_path.took(response)


async def test_live_seats_reads_match_the_fastapi_route(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent, fast_path: FastPath
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(9, 4))
    held = await client.post(
        RESERVE, json=order_body(event.id, event.categories[1].id, 3), headers=buyer.headers
    )
    assert held.status_code == 201, held.text

    # (status, answered by the fast path, path)
    paths = [
        (200, True, f"/api/events/{event.id}/tickets"),
        (200, False, f"/api/events/{event.id}/tickets?x=1"),
        (200, True, f"/api/events/0{event.id}/tickets"),
        (400, False, f"/api/events/{'7' * 5000}/tickets"),  # past int()'s 4,300 digits
        (200, False, f"/api/events/{event.id:0>11}/tickets"),  # more digits than any id has
        (404, True, f"/api/events/{2**31 - 1}/tickets"),
        (400, False, f"/api/events/{2**31}/tickets"),
        (400, False, f"/api/events/{'9' * 11}/tickets"),
        (400, False, "/api/events/0/tickets"),
        (400, False, "/api/events/-1/tickets"),
        (400, False, "/api/events/abc/tickets"),
        (400, False, "/api/events/%D9%A1/tickets"),  # an Arabic-Indic digit one
        (404, False, f"/api/orders/{event.id}/tickets"),  # as long a prefix, but not the route
    ]
    for status, hot, path in paths:
        fast = await client.get(path, headers=fast_path.probe())
        slow = await client.get(path, headers=fast_path.probe(ORIGIN))
        assert fast.status_code == slow.status_code == status, (path, fast.text, slow.text)
        assert fast_path.took(fast) is hot, path
        assert not fast_path.took(slow), path
        assert fast.json() == slow.json(), path
        assert "Origin" in fast.headers.get("vary", "")
        if status == 200:
            seats = [(c["reservedSeats"], c["availableSeats"]) for c in fast.json()]
            assert seats == [(0, 9), (3, 1)]
        else:
            assert_error(fast, status)

    # Id 1, the lowest, is the fast path's too (whether this database has that event or not).
    fast = await client.get("/api/events/1/tickets", headers=fast_path.probe())
    slow = await client.get("/api/events/1/tickets", headers=ORIGIN)
    assert fast_path.took(fast)
    assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())


@pytest.mark.parametrize(
    ("origin", "allowed"), [("http://localhost:3000", True), ("https://elsewhere.example", False)]
)
async def test_cross_origin_live_seats_reads_get_cors_headers_for_allowed_origins_only(
    client: httpx.AsyncClient,
    live_system: LiveSystem,
    make_user: MakeUser,
    make_event: MakeEvent,
    fast_path: FastPath,
    origin: str,
    allowed: bool,
) -> None:
    assert (origin in live_system.settings.cors_origins) is allowed
    event = await make_event(await make_user(Role.ORGANIZER), seats=(4,))

    response = await client.get(
        f"/api/events/{event.id}/tickets", headers=fast_path.probe({"Origin": origin})
    )

    assert response.status_code == 200, response.text
    assert [c["availableSeats"] for c in response.json()] == [4]
    assert not fast_path.took(response)
    if allowed:
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-credentials"] == "true"
    else:
        assert "access-control-allow-origin" not in response.headers
    assert "Origin" in response.headers["vary"]


async def _asgi_post(
    live: LiveSystem, headers: dict[str, str], parts: list[bytes]
) -> tuple[int, dict[str, Any]]:
    """POST `parts` as that many ASGI body messages to a HotPaths over the live runtime.

    Over a socket the server joins whatever body bytes have arrived before the app reads, so
    whether a body comes in one message or several depends on timing; here it is exact.
    """
    from gateway.app import create_api, hot_reads, hot_routes

    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def post() -> None:
        runtime = live.runtime
        app = HotPaths(
            create_api(runtime), hot_routes(), runtime.settings.max_body_bytes, hot_reads()
        )
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": RESERVE,
            "raw_path": RESERVE.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)

    await live.call(post())
    assert not messages, "the whole body was read"
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    answer: dict[str, Any] = orjson.loads(body)
    return start["status"], answer


async def test_a_body_in_several_messages_is_held_or_replayed_whole(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, fast_path: FastPath
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(5,))
    category = event.categories[0].id
    headers = {**buyer.headers, "Content-Type": "application/json"}

    def split(body: bytes) -> list[bytes]:
        return [body[i : i + 5] for i in range(0, len(body), 5)]

    held = fast_path.probe(headers)
    body = b'{"eventId": %d, "categoryId": %d, "quantity": 2}' % (event.id, category)
    status, answer = await _asgi_post(live_system, held, split(body))
    assert (status, answer["quantity"], answer["availableSeats"]) == (201, 2, 3), answer
    assert held[PROBE] in fast_path.answered

    # Invalid once whole (a string quantity): replayed whole to FastAPI, which names the field.
    replayed = fast_path.probe(headers)
    body = b'{"eventId": %d, "categoryId": %d, "quantity": "2"}' % (event.id, category)
    status, answer = await _asgi_post(live_system, replayed, split(body))
    assert status == 400, answer
    assert answer["error"].startswith("quantity"), answer
    assert replayed[PROBE] not in fast_path.answered

    # Past the size limit part-way: replayed to FastAPI with what was read, refused as too large.
    limit = live_system.settings.max_body_bytes
    large = fast_path.probe(headers)
    status, answer = await _asgi_post(live_system, large, [b"x" * (limit // 2)] * 3)
    assert status == 413, answer
    assert large[PROBE] not in fast_path.answered

    assert (await live_system.call(live_system.runtime.seats.availability([category])))[
        category
    ].available == 3
