"""A PostgreSQL outage, for real: every route and socket event answers 503 with `Retry-After`
(or its normal answer when it needs no database), never a 500 nor "Internal server error", the
log gets one line per failure and no traceback; after the restart everything works again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest

from actors.client import SeatClient
from actors.inventory import SaleRules
from actors.messages import OrderPlaced
from persistence.database import migrate_sync
from persistence.embedded import EmbeddedPostgres
from persistence.records import OrderDraft
from sales.identity import Principal, Role
from sales.outage import DATABASE, outage_of
from sales.service import Sales
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import assert_error, order_body, poll, reserve
from tests.realtime.conftest import Sockets

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser

OUR_LOGGERS = ("gateway", "realtime", "sales")


@dataclass
class Postgres:
    server: EmbeddedPostgres
    url: str

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)

    async def start(self) -> None:
        assert await asyncio.to_thread(self.server.start) == self.url


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[Postgres]:
    """A PostgreSQL of this test's own, so stopping it disturbs no other test."""
    server = EmbeddedPostgres(tmp_path / "pg")
    url = await asyncio.to_thread(server.start)
    await asyncio.to_thread(migrate_sync, url)
    yield Postgres(server, url)
    await asyncio.to_thread(server.stop)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    who: TestUser | None = None
    key: str | None = None


class StopsPostgresThenBuys:
    """The real seat client, except that the database goes down just before a purchase."""

    def __init__(self, seats: SeatClient, postgres: Postgres) -> None:
        self._seats = seats
        self._postgres = postgres

    def __getattr__(self, name: str) -> Any:
        return getattr(self._seats, name)

    async def buy(self, *, draft: OrderDraft, rules: SaleRules | None = None) -> OrderPlaced:
        await self._postgres.stop()
        return await self._seats.buy(draft=draft, rules=rules)


async def _refused_replay_lookup_fails(
    live: LiveSystem, postgres: Postgres, buyer: TestUser
) -> None:
    """A sold-out category refuses the purchase (no database needed), then the Idempotency-Key
    fallback (did a concurrent replay win?) meets the outage: the answer is an outage (503 in
    every adapter), neither a 500 nor a 409 that may be wrong (the client retries its key)."""
    runtime = live.runtime
    organizer = await create_user(live, Role.ORGANIZER)
    event = await create_event(live, organizer, (1,))
    category = event.categories[0].id
    caller = Principal(buyer.id, buyer.role)

    async def attempt() -> BaseException | None:
        sales = Sales(
            runtime.db,
            cast(SeatClient, StopsPostgresThenBuys(runtime.seats, postgres)),
            runtime.directory,
            runtime.orders,
            max_tickets_per_request=10,
        )
        await runtime.sales.place_order(
            caller,
            event_id=event.id,
            category_id=category,
            quantity=1,
            notes=None,
            request_key=None,
        )  # sold out now
        try:
            await sales.place_order(
                caller,
                event_id=event.id,
                category_id=category,
                quantity=1,
                notes=None,
                request_key=f"{buyer.id}:refused-then-lookup",
            )
        except Exception as exc:
            return exc
        return None

    failure = await live.call(attempt())
    assert failure is not None and outage_of(failure) == DATABASE, repr(failure)


def _requests(
    organizer: TestUser, seen: TestUser, unseen: TestUser, ids: dict[str, Any]
) -> list[Call]:
    event, category, order = ids["event"], ids["category"], ids["order"]
    buy = order_body(event, category)
    return [
        Call(
            "POST",
            "/api/auth/register",
            {"username": f"{uuid.uuid4().hex}@x.io", "password": "p" * 8},
        ),
        Call("POST", "/api/auth/login", {"username": seen.username, "password": seen.password}),
        Call("GET", "/api/user", who=seen),
        Call("GET", "/api/user", who=unseen),
        Call("GET", "/api/events"),
        Call("GET", "/api/events/upcoming"),
        Call("GET", "/api/events/category/Music"),
        Call("GET", f"/api/events/{ids['cold_event']}"),
        Call("GET", f"/api/events/{ids['cold_event']}/tickets"),
        Call("POST", "/api/events", _event_body(), who=organizer),
        Call("PUT", f"/api/events/{event}", {"location": "Elsewhere"}, who=organizer),
        Call("POST", "/api/events/tickets/reserve", buy, who=unseen),
        Call("POST", "/api/orders", buy, who=seen),
        Call("POST", "/api/orders", buy, who=seen, key="outage-1"),
        Call("POST", "/api/orders", buy, who=unseen),
        Call("POST", "/api/orders/with-lock", {**buy, "lockId": ids["lock"]}, who=seen),
        Call("GET", "/api/orders", who=seen),
        Call("GET", "/api/orders/all", who=organizer),
        Call("GET", f"/api/orders/event/{event}", who=organizer),
        Call("GET", f"/api/orders/{order}", who=seen),
        Call("POST", f"/api/orders/{order}/cancel", who=seen),
        Call("GET", "/api/health"),
    ]


def _event_body() -> dict[str, Any]:
    return {
        "eventName": "Outage",
        "eventCategory": "Music",
        "eventDate": "2031-01-01T20:00:00Z",
        "location": "Hall",
        "ticketCategories": [{"categoryName": "A", "price": 10, "totalSeats": 5}],
    }


async def _send(http: httpx.AsyncClient, call: Call) -> httpx.Response:
    headers = dict(call.who.headers) if call.who is not None else {}
    if call.key is not None:
        headers["Idempotency-Key"] = call.key
    return await http.request(call.method, call.path, json=call.body, headers=headers)


def _assert_unavailable(response: httpx.Response, call: Call) -> None:
    assert response.status_code == 503, (call, response.status_code, response.text)
    assert_error(response, 503, "Service Unavailable")
    assert response.headers["retry-after"].isdigit(), call


async def test_a_postgres_outage_answers_503_everywhere_and_recovers(
    own_postgres: Postgres,
    start_system: Callable[..., Awaitable[LiveSystem]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    live = await start_system(database_url=own_postgres.url)
    organizer = await create_user(live, Role.ORGANIZER)
    seen = await create_user(live)
    unseen = await create_user(live)  # written straight to the database: the gateway never saw it
    event = await create_event(live, organizer, (20,))
    cold_event = await create_event(live, organizer, (5,))
    category = event.categories[0].id
    sockets = Sockets()
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        try:
            placed = await http.post(
                "/api/orders", json=order_body(event.id, category), headers=seen.headers
            )
            assert placed.status_code == 201, placed.text
            hold = await reserve(http, seen, event.id, category)
            ids = {
                "event": event.id,
                "category": category,
                "cold_event": cold_event.id,
                "order": placed.json()["id"],
                "lock": hold["lockId"],
            }
            socket = await sockets(live.api, seen.token)

            await _refused_replay_lookup_fails(live, own_postgres, seen)  # stops PostgreSQL
            caplog.clear()
            with caplog.at_level(logging.INFO):
                for call in _requests(organizer, seen, unseen, ids):
                    _assert_unavailable(await _send(http, call), call)
                # Needs no database: the event is in the gateway's catalogue, seats in the actor.
                assert (await http.get(f"/api/events/{event.id}/tickets")).status_code == 200

                for name, payload in [
                    ("join-event-room", {"eventId": cold_event.id}),
                    ("unlock-tickets", {"categoryId": cold_event.categories[0].id, "quantity": 1}),
                ]:
                    await socket.emit(name, payload)
                    error = await socket.next("error")
                    assert error["message"] == "Service unavailable, try again shortly", name
                await socket.emit("heartbeat")
                await socket.next("heartbeat-response")
                with pytest.raises(Exception, match="One or more namespaces failed"):
                    await sockets(live.api, unseen.token, greeted=False)
                refused = sockets.opened[-1].received["connect_error"]
                assert refused == [{"message": "Service unavailable, try again shortly"}]
            ours = [r for r in caplog.records if r.name.startswith(OUR_LOGGERS)]
            assert not [r for r in ours if r.exc_info], "a traceback was logged for an outage"
            assert all("unavailable" in r.getMessage() for r in ours), [
                r.getMessage() for r in ours
            ]

            await own_postgres.start()

            async def healthy() -> bool:
                return (await http.get("/api/health")).status_code == 200

            await poll(healthy, within=60)

            async def buys() -> bool:
                answer = await http.post(
                    "/api/orders", json=order_body(event.id, category), headers=seen.headers
                )
                return answer.status_code == 201

            await poll(buys, within=60)  # the actor's own pool reconnects on its first commit
            for call in _requests(organizer, seen, unseen, ids):
                response = await _send(http, call)
                assert response.status_code < 300, (call, response.text)
            await socket.emit("join-event-room", {"eventId": cold_event.id})
            joined = await socket.next("joined-event-room")
            assert joined["eventId"] == cold_event.id
            assert (await sockets(live.api, unseen.token)).sid
        finally:
            await sockets.close()
