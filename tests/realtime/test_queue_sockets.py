"""The waiting room over Socket.IO, across two gateways: join-queue, queue-status while
waiting, queue-admitted with the pass on every socket of the buyer, lock-tickets that needs
the caller's own pass, queue-closed at sell-out; floods, absurd payloads, borrowed identity."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from sales.identity import Role
from tests.fixtures.queues import open_waiting_room
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.realtime.conftest import WAIT_SECONDS, Connect, Recorder

JOIN_THE_QUEUE = "Join the queue for this event"


async def test_queued_sockets_hear_their_place_then_their_pass_on_any_gateway(
    live_system: LiveSystem, start_system: Callable[..., Awaitable[LiveSystem]], connect: Connect
) -> None:
    a = live_system
    b = await start_system(ray_namespace=a.settings.ray_namespace)
    event = await create_event(a, await create_user(a, Role.ORGANIZER), (10,))
    event = await open_waiting_room(a, event, rate=1, opens_in=3600)
    category = event.categories[0]
    first, second = await create_user(a), await create_user(a)
    lock = {"eventId": event.id, "categoryId": category.id, "quantity": 1}

    first_on_b = await connect(b.api, first.token)
    # Identity is the token's: a userId in the payload is ignored.
    await first_on_b.emit("join-queue", {"eventId": event.id, "userId": second.id})
    joined = await first_on_b.next("join-queue-response")
    assert joined["success"] is True and joined["position"] is None and joined["waiting"] == 1
    # The second buyer joins over REST on gateway A and watches on a socket on B that never
    # sent join-queue: the pass still reaches it (the buyer's sockets, wherever they are).
    second_on_b = await connect(b.api, second.token)
    async with httpx.AsyncClient(base_url=a.api, timeout=WAIT_SECONDS) as http:
        response = await http.post(f"/api/events/{event.id}/queue", headers=second.headers)
        assert response.status_code == 201, response.text

    # Waiting: queue-status, then drawn places once open; no seat without a pass.
    status = await first_on_b.next("queue-status", lambda status: status["waiting"] == 2)
    assert status["position"] is None and status["admitted"] is False
    await open_waiting_room(a, event, rate=1, opens_in=0.0)
    assert set(status) >= {"eventId", "position", "ahead", "etaSeconds", "admitted", "waiting"}
    await first_on_b.emit("lock-tickets", lock)
    refused = await first_on_b.next("lock-tickets-response")
    assert refused == {"success": False, "message": JOIN_THE_QUEUE}

    admitted = {}
    for socket, user in ((first_on_b, first), (second_on_b, second)):
        payload = await socket.next("queue-admitted")
        assert payload["eventId"] == event.id and payload["admitted"] is True
        admitted[user.id] = payload["admissionPass"]
    # One a second: the first admitted got no queue-status after admission.
    await first_on_b.round_trip()

    # Someone else's pass does not lock; one's own does.
    await first_on_b.emit("lock-tickets", lock | {"admissionPass": admitted[second.id]})
    assert (await first_on_b.next("lock-tickets-response"))["success"] is False
    await first_on_b.emit("lock-tickets", lock | {"admissionPass": 12345})
    assert (await first_on_b.next("lock-tickets-response"))["success"] is False
    await first_on_b.emit("lock-tickets", lock | {"admissionPass": admitted[first.id]})
    held = await first_on_b.next("lock-tickets-response")
    assert held["success"] is True, held


async def test_join_queue_floods_and_absurd_payloads_change_nothing(
    live_system: LiveSystem, connect: Connect
) -> None:
    a = live_system
    organizer = await create_user(a, Role.ORGANIZER)
    event = await open_waiting_room(
        a, await create_event(a, organizer, (10,)), rate=1, opens_in=3600
    )
    plain = await create_event(a, organizer, (10,))
    buyer = await create_user(a)
    socket = await connect(a.api, buyer.token)
    for payload in (None, "x", [1], {}, {"eventId": "one"}, {"eventId": 0}, {"eventId": 2**40}):
        await socket.emit("join-queue", payload)
        reply = await socket.next("join-queue-response")
        assert reply["success"] is False and reply["message"].startswith("Invalid payload")
    await socket.emit("join-queue", {"eventId": plain.id})
    assert (await socket.next("join-queue-response"))["success"] is False
    await socket.emit("join-queue", {"eventId": 2**31 - 1})
    assert (await socket.next("join-queue-response"))["message"] == "Event not found"
    for _ in range(60):
        await socket.emit("join-queue", {"eventId": event.id})
    await socket.next("error", lambda e: e == {"message": "Rate limit exceeded"})
    await socket.next("join-queue-response", lambda reply: reply["success"] is True)
    await socket.round_trip()
    async with httpx.AsyncClient(base_url=a.api, timeout=WAIT_SECONDS) as http:
        place = (await http.get(f"/api/events/{event.id}/queue", headers=buyer.headers)).json()
    assert place.get("waiting") == 1, place  # one entry, however many joins


async def test_everyone_still_waiting_hears_queue_closed_at_sell_out(
    live_system: LiveSystem, connect: Connect
) -> None:
    a = live_system
    event = await create_event(a, await create_user(a, Role.ORGANIZER), (1,))
    event = await open_waiting_room(a, event, rate=5, opens_in=0.5)
    buyers = [await create_user(a) for _ in range(3)]
    sockets = [await connect(a.api, buyer.token) for buyer in buyers]
    for socket in sockets:
        await socket.emit("join-queue", {"eventId": event.id})
        assert (await socket.next("join-queue-response"))["success"] is True
    # Two admissions at most (one seat: the first admitted covers it until they buy).
    admitted = await _first_admitted(sockets)
    index = sockets.index(admitted)
    payload = admitted.received["queue-admitted"][0]
    lock = {"eventId": event.id, "categoryId": event.categories[0].id, "quantity": 1}
    async with httpx.AsyncClient(base_url=a.api, timeout=WAIT_SECONDS) as http:
        bought = await http.post(
            "/api/orders",
            json=lock,
            headers=buyers[index].headers | {"X-Admission-Pass": payload["admissionPass"]},
        )
        assert bought.status_code == 201, bought.text
    for other in sockets:
        if other is not admitted:
            closed = await other.next("queue-closed")
            assert closed["eventId"] == event.id and "waitlist" in closed


async def _first_admitted(sockets: list[Recorder]) -> Recorder:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            for recorder in sockets:
                if recorder.received["queue-admitted"]:
                    return recorder
            await asyncio.sleep(0.05)
