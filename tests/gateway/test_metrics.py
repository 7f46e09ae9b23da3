"""`/metrics`: counters that move as the load that was sent, bounded labels, and who may read."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from gateway.limits import Limits
from gateway.metrics import MetricsEndpoint, RequestTally, Sources, registry_of
from realtime.telemetry import SocketTally
from sales.identity import Role
from sales.tally import SalesTally
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, order_body, poll
from tests.realtime.conftest import Sockets

RESERVE = "/api/events/tickets/reserve"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_counters_move_with_the_load(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(30,))
    category = event.categories[0].id
    buyers = [await make_user() for _ in range(10)]
    before = await scrape(client)

    async def hold(index: int) -> int:
        buyer = buyers[index % len(buyers)]
        body = order_body(event.id, category, 1)
        response = await client.post(RESERVE, json=body, headers=buyer.headers)
        return response.status_code

    load = asyncio.gather(*(hold(i) for i in range(60)))
    during = await scrape(client)  # scraped while the load runs: never an error
    statuses = Counter(await load)
    after = await scrape(client)
    assert statuses[201] == 30 and statuses[409] == 30, statuses

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("boxoffice_holds_total", outcome="placed") == statuses[201]
    assert delta("boxoffice_holds_total", outcome="not_enough_seats") == statuses[409]
    assert delta("boxoffice_refusals_total", operation="hold", reason="not_enough_seats") == 30
    for status, count in statuses.items():
        labels = {"route": RESERVE, "method": "POST", "status": str(status)}
        assert delta("boxoffice_http_requests_total", **labels) == count
        assert delta("boxoffice_http_request_duration_seconds_count", **labels) == count
        inf = value(after, "boxoffice_http_request_duration_seconds_bucket", le="+Inf", **labels)
        assert inf == value(after, "boxoffice_http_request_duration_seconds_count", **labels)
    assert value(during, "boxoffice_holds_total", outcome="placed") <= value(
        after, "boxoffice_holds_total", outcome="placed"
    )

    # Raw paths never become labels: ids, unknown routes and junk collapse into templates.
    for path in [f"/api/events/{event.id}", "/api/events/123456", "/api/no/such/thing?x=1"]:
        await client.get(path)
    await client.get(f"/api/events/{event.id}/tickets")
    routes = {
        dict(labels)["route"]
        for (name, labels) in (await scrape(client))
        if name == "boxoffice_http_requests_total"
    }
    assert "/api/events/{id}" in routes and "/api/events/{id}/tickets" in routes
    assert "unmatched" in routes
    assert not any(str(event.id) in route or "no/such" in route for route in routes)


async def test_an_order_and_a_socket_event_are_counted(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    make_event: MakeEvent,
    live_system: LiveSystem,
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(2,))
    buyer = await make_user()
    sockets = Sockets()
    before = await scrape(client)
    watcher = await sockets(live_system.api, buyer.token)
    await watcher.emit("join-event-room", {"eventId": event.id})
    await watcher.next("joined-event-room")
    body = order_body(event.id, event.categories[0].id, 1)
    keyed = {**buyer.headers, "Idempotency-Key": "metrics-1"}
    assert (await client.post("/api/orders", json=body, headers=keyed)).status_code == 201
    assert (await client.post("/api/orders", json=body, headers=keyed)).status_code == 201
    too_many = order_body(event.id, event.categories[0].id, 5)
    assert (await client.post("/api/orders", json=too_many, headers=buyer.headers)).is_error
    after = await scrape(client)
    placed = value(after, "boxoffice_orders_total", outcome="placed")
    assert placed - value(before, "boxoffice_orders_total", outcome="placed") == 1
    replayed = value(after, "boxoffice_orders_total", outcome="replayed")
    assert replayed - value(before, "boxoffice_orders_total", outcome="replayed") == 1

    # The actor's own numbers come with its next report on the feed (every few seconds).
    async def reported() -> Samples | None:
        now = await scrape(client)
        batches = value(now, "boxoffice_actor_group_commit_batch_size_count")
        done = batches > value(before, "boxoffice_actor_group_commit_batch_size_count")
        return now if done else None

    now = await poll(reported, within=20)
    assert value(now, "boxoffice_actor_categories_live") >= 1
    assert value(now, "boxoffice_actor_activation_seconds_count") >= 1
    assert value(now, "boxoffice_actor_group_commit_seconds_count") == value(
        now, "boxoffice_actor_group_commit_batch_size_count"
    )
    await watcher.next("availability-update", lambda update: update["availableTickets"] == 1)
    now = await scrape(client)
    await sockets.close()
    assert value(now, "boxoffice_feed_lag_seconds_count") > value(
        before, "boxoffice_feed_lag_seconds_count"
    )
    assert value(now, "boxoffice_socket_connections") >= 1
    joined = value(now, "boxoffice_socket_events_total", event="join-event-room")
    assert joined - value(before, "boxoffice_socket_events_total", event="join-event-room") == 1


async def test_every_request_has_an_id_echoed_back(client: httpx.AsyncClient) -> None:
    first = await client.get("/api/health")
    second = await client.get("/api/health")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    mine = await client.get("/api/health", headers={"X-Request-ID": "trace-42.a:b"})
    assert mine.headers["x-request-id"] == "trace-42.a:b"
    for hostile in ["x" * 65, "bad id", "é", "a\tb"]:
        answer = await client.get("/api/health", headers={b"X-Request-ID": hostile.encode()})
        assert answer.headers["x-request-id"] != hostile
        assert answer.headers["x-request-id"]


async def _inner(scope: object, receive: object, send: object) -> None:
    raise AssertionError("only /metrics is asked for")


@pytest.mark.parametrize("token", [None, "s3cret-token-0123456789"])
async def test_who_may_read_the_metrics(token: str | None) -> None:
    sources = Sources(
        RequestTally(), SalesTally(), SocketTally(), Limits.from_settings(Settings()), lambda: 0
    )
    endpoint = MetricsEndpoint(_inner, registry_of(sources), token)

    async def get(address: str, headers: dict[str, str] | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=endpoint, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            return await http.get("/metrics", headers=headers)

    if token is None:
        assert (await get("127.0.0.1")).status_code == 200
        assert (await get("::1")).status_code == 200
        assert_error(await get("203.0.113.9"), 403)
        assert_error(await get("203.0.113.9", {"Authorization": "Bearer anything"}), 403)
    else:
        good = {"Authorization": f"Bearer {token}"}
        assert (await get("203.0.113.9", good)).status_code == 200
        for bad in [None, {"Authorization": "Bearer wrong"}, {"Authorization": token}]:
            assert_error(await get("203.0.113.9", bad), 401)
        # With a token, loopback needs it too (a proxy on the same host is loopback).
        assert_error(await get("127.0.0.1"), 401)
    post = httpx.ASGITransport(app=endpoint, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=post, base_url="http://gw") as http:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert_error(await http.post("/metrics", headers=headers), 405)
