"""The waiting room over REST: settings on the event, joining once, the pass that buying
needs while the room is on, and every bad input a clear 4xx that changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, order_body, poll
from tests.gateway.test_hotpaths import FastPath, _both, fast_path

__all__ = ["fast_path"]  # the fast path's spy, a fixture shared with its own tests

JOIN_THE_QUEUE = "Join the queue for this event"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event_body(room: dict[str, Any] | None, seats: int = 10) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventName": "Queue night",
        "eventCategory": "Music",
        "eventDate": _iso(datetime.now(UTC) + timedelta(days=30)),
        "ticketCategories": [{"categoryName": "Floor", "price": 10, "totalSeats": seats}],
    }
    if room is not None:
        body["waitingRoom"] = room
    return body


async def create_queued_event(
    client: httpx.AsyncClient,
    organizer_headers: dict[str, str],
    *,
    rate: int = 50,
    opens_in: float = 0.0,
    seats: int = 10,
) -> dict[str, Any]:
    room = {
        "enabled": True,
        "admitPerSecond": rate,
        "opensAt": _iso(datetime.now(UTC) + timedelta(seconds=opens_in)),
    }
    response = await client.post(
        "/api/events", json=event_body(room, seats), headers=organizer_headers
    )
    assert response.status_code == 201, response.text
    event: dict[str, Any] = response.json()
    return event


async def test_an_organizer_sets_the_room_and_it_shows_in_the_event(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await create_queued_event(client, organizer.headers, rate=250)
    room = event["waitingRoom"]
    assert room["enabled"] is True and room["admitPerSecond"] == 250
    assert room["opensAt"].endswith("Z")
    # An event without a room keeps the guide's shape.
    plain = await make_event(organizer)
    shown = (await client.get(f"/api/events/{plain.id}")).json()
    assert "waitingRoom" not in shown
    # Off, then removed, by its organizer only.
    path = f"/api/events/{event['idEvent']}"
    off = {"waitingRoom": {"enabled": False, "admitPerSecond": 5}}
    other = await make_user(Role.ORGANIZER)
    assert_error(await client.put(path, json=off, headers=other.headers), 403)
    changed = await client.put(path, json=off, headers=organizer.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["waitingRoom"] == {"enabled": False, "admitPerSecond": 5, "opensAt": None}
    removed = await client.put(path, json={"waitingRoom": None}, headers=organizer.headers)
    assert "waitingRoom" not in removed.json()


async def test_absurd_room_settings_are_refused_and_change_nothing(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await create_queued_event(client, organizer.headers, rate=20)
    path = f"/api/events/{event['idEvent']}"
    absurd: list[Any] = [
        {"enabled": True, "admitPerSecond": -5},
        {"enabled": True, "admitPerSecond": 0},
        {"enabled": True, "admitPerSecond": 10**9},
        {"enabled": True, "admitPerSecond": 2.5},
        {"enabled": True, "admitPerSecond": "10"},
        {"enabled": "yes", "admitPerSecond": 10},
        {"enabled": True},
        {"enabled": True, "admitPerSecond": 10, "opensAt": "tomorrow"},
        {"enabled": True, "admitPerSecond": 10, "opensAt": "0001-01-01T00:00:00Z"},
        {"enabled": True, "admitPerSecond": 10, "opensAt": "9999-12-31T00:00:00Z"},
        {"enabled": True, "admitPerSecond": 10, "opensAt": "2030-01-01T00:00:00"},
        [1, 2],
        "on",
    ]
    for room in absurd:
        created = await client.post("/api/events", json=event_body(room), headers=organizer.headers)
        assert_error(created, 400, "Validation failed")
        updated = await client.put(path, json={"waitingRoom": room}, headers=organizer.headers)
        assert_error(updated, 400, "Validation failed")
    unchanged = (await client.get(path)).json()
    assert unchanged["waitingRoom"]["admitPerSecond"] == 20


async def test_buying_needs_the_callers_own_pass_while_the_room_is_on(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await create_queued_event(client, organizer.headers, rate=50, opens_in=3600)
    event_id, category_id = event["idEvent"], event["ticketCategories"][0]["id"]
    alice, bob = await make_user(), await make_user()
    queue = f"/api/events/{event_id}/queue"
    body = order_body(event_id, category_id)

    # Not in line yet: no place, and no seat without a pass, by any route.
    assert_error(await client.get(queue, headers=alice.headers), 404)
    for path in ("/api/events/tickets/reserve", "/api/orders"):
        assert_error(await client.post(path, json=body, headers=alice.headers), 403)
        refused = await client.post(path, json=body, headers=alice.headers)
        assert refused.json()["error"] == JOIN_THE_QUEUE

    joined = await client.post(queue, headers=alice.headers)
    assert joined.status_code == 201, joined.text
    assert joined.json()["admitted"] is False
    assert joined.json()["position"] is None  # before the opening draw
    again = await client.post(queue, headers=alice.headers)
    assert again.status_code == 201 and again.json() == joined.json()  # one entry per user
    await client.post(queue, headers=bob.headers)
    assert (await client.get(queue, headers=alice.headers)).json()["waiting"] == 2
    # The organizer opens it now: the queue re-reads its event, draws and admits.
    opening = {"enabled": True, "admitPerSecond": 50, "opensAt": _iso(datetime.now(UTC))}
    opened = await client.put(
        f"/api/events/{event_id}", json={"waitingRoom": opening}, headers=organizer.headers
    )
    assert opened.status_code == 200, opened.text

    async def admitted() -> dict[str, Any] | None:
        place = (await client.get(queue, headers=alice.headers)).json()
        return place if place["admitted"] else None

    place = await poll(admitted, within=20)
    admission_pass = place["admissionPass"]
    assert place["position"] == 0 and place["passExpiresAt"].endswith("Z")

    # Bob (admitted or not) cannot buy with Alice's pass; junk is no pass either.
    for headers in (
        {**bob.headers, "X-Admission-Pass": admission_pass},
        {**alice.headers, "X-Admission-Pass": "junk"},
        {**alice.headers, "X-Admission-Pass": alice.token},  # a login token is not a pass
        {**alice.headers, "X-Admission-Pass": "x" * 5000},
    ):
        for path in ("/api/events/tickets/reserve", "/api/orders"):
            refused = await client.post(path, json=body, headers=headers)
            assert_error(refused, 403)
    assert (await client.get(f"/api/events/{event_id}/tickets")).json()[0]["availableSeats"] == 10

    # Alice's own pass buys, over REST's reserve and order.
    mine = {**alice.headers, "X-Admission-Pass": admission_pass}
    held = await client.post("/api/events/tickets/reserve", json=body, headers=mine)
    assert held.status_code == 201, held.text
    bought = await client.post("/api/orders", json=body, headers=mine)
    assert bought.status_code == 201, bought.text
    # A pass is not a login: alone it is a 401.
    assert_error(
        await client.get(queue, headers={"Authorization": f"Bearer {admission_pass}"}), 401
    )


async def test_a_flood_of_joins_leaves_one_entry(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await create_queued_event(client, organizer.headers, rate=10, opens_in=3600)
    buyer = await make_user()
    queue = f"/api/events/{event['idEvent']}/queue"
    answers = await asyncio.gather(*(client.post(queue, headers=buyer.headers) for _ in range(50)))
    assert {answer.status_code for answer in answers} == {201}
    assert {answer.json()["waiting"] for answer in answers} == {1}
    assert (await client.get(queue, headers=buyer.headers)).json()["waiting"] == 1


async def test_queue_requests_for_events_without_a_room_or_absurd_ids(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent, live_system: LiveSystem
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    plain = await make_event(organizer)
    no_room = await client.post(f"/api/events/{plain.id}/queue", headers=buyer.headers)
    assert_error(no_room, 409)
    assert_error(await client.get(f"/api/events/{plain.id}/queue", headers=buyer.headers), 409)
    assert_error(await client.post("/api/events/999999999/queue", headers=buyer.headers), 404)
    for bad in ("0", "-1", "abc", "99999999999999999999", "1.5"):
        assert_error(await client.post(f"/api/events/{bad}/queue", headers=buyer.headers), 400)
    assert_error(await client.post(f"/api/events/{plain.id}/queue"), 401)
    # Buying from an event without a room needs no pass (and ignores one).
    body = order_body(plain.id, plain.categories[0].id)
    held = await client.post(
        "/api/events/tickets/reserve", json=body, headers={**buyer.headers, "X-Admission-Pass": "x"}
    )
    assert held.status_code == 201, held.text


async def test_the_hot_path_refuses_as_fastapi_does_and_leaves_passes_to_the_route(
    client: httpx.AsyncClient, make_user: MakeUser, fast_path: FastPath
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await create_queued_event(client, organizer.headers, rate=100)
    body = order_body(event["idEvent"], event["ticketCategories"][0]["id"])
    buyer = await make_user()
    fast, slow = await _both(client, fast_path, buyer.headers, json=body)
    assert fast_path.took(fast)
    assert_error(fast, 403)
    assert fast.json() == slow.json()
    queue = f"/api/events/{event['idEvent']}/queue"
    await client.post(queue, headers=buyer.headers)

    async def admitted() -> str | None:
        place = (await client.get(queue, headers=buyer.headers)).json()
        return place["admissionPass"] if place["admitted"] else None

    with_pass = fast_path.probe({**buyer.headers, "X-Admission-Pass": await poll(admitted)})
    held = await client.post("/api/events/tickets/reserve", json=body, headers=with_pass)
    assert held.status_code == 201, held.text
    assert not fast_path.took(held)  # the route reads the pass header, not the fast path
