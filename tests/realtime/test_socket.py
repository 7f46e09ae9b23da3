"""`/realtime` against a live system: connect and refuse, rooms, lock/unlock, my locks,
heartbeat, identity from the token only, and availability updates from the change feed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import socketio

from persistence.records import EventRecord
from realtime.server import UNAVAILABLE
from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.realtime.conftest import WAIT_SECONDS, Connect, Recorder

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser

MakeUser = Callable[..., Awaitable["TestUser"]]
MakeEvent = Callable[..., Awaitable[EventRecord]]


def parse_iso(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def joined(client: Recorder, event: EventRecord) -> list[dict[str, Any]]:
    """Join the event's room; the initial availability-update of each of its categories."""
    await client.emit("join-event-room", {"eventId": event.id, "userId": 999_999})
    reply = await client.next("joined-event-room")
    assert reply["success"] is True and reply["eventId"] == event.id
    updates = [await client.next("availability-update") for _ in event.categories]
    order = [category.id for category in event.categories]
    return sorted(updates, key=lambda update: order.index(update["categoryId"]))


async def lock(client: Recorder, event: EventRecord, quantity: int, index: int = 0) -> Any:
    """`lock-tickets`, sent again (as a client would) while the answer is "unavailable": a
    cold actor may miss its start deadline on a loaded machine (seen on a 2-core run where
    Ray was starting 26 worker processes at once)."""
    category = event.categories[index]
    body = {"eventId": event.id, "categoryId": category.id, "quantity": quantity}
    answers, errors = client.received["lock-tickets-response"], client.received["error"]

    def news(answered: int, failed: int) -> Callable[[], bool]:
        return lambda: len(answers) > answered or len(errors) > failed

    for _ in range(3):
        answered, failed = len(answers), len(errors)
        await client.emit("lock-tickets", body)
        await client.until(news(answered, failed))
        if len(answers) > answered:
            break
        assert errors[failed:] == [{"message": UNAVAILABLE}], errors[failed:]
    return await client.next("lock-tickets-response")


# -- connecting ----------------------------------------------------------------------------


async def test_connect_with_auth_token_is_greeted(
    live_system: LiveSystem, make_user: MakeUser, connect: Connect
) -> None:
    user = await make_user()
    client = await connect(live_system.api, user.token, greeted=False)
    greeting = await client.next("connected")
    assert greeting == {
        "success": True,
        "sessionId": client.sid,
        "message": "Connected to realtime service",
    }


async def test_connect_with_query_token_as_the_guide_does(
    live_system: LiveSystem, make_user: MakeUser, connect: Connect
) -> None:
    user = await make_user()
    client = await connect(live_system.api, user.token, via="query")
    await client.emit("heartbeat")
    reply = await client.next("heartbeat-response")
    assert abs(parse_iso(reply["timestamp"]).timestamp() - time.time()) < 60


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", "expired", "foreign"])
async def test_connect_without_a_valid_token_is_refused(
    live_system: LiveSystem, make_user: MakeUser, connect: Connect, token: str | None
) -> None:
    user = await make_user()
    tokens = live_system.runtime.tokens
    if token == "expired":
        token = tokens.issue(user.id, Role.ASSISTANT, now=time.time() - 10 * 86400)
    elif token == "foreign":
        token = user.token[:-4] + ("AAAA" if not user.token.endswith("AAAA") else "BBBB")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(live_system.api, token, greeted=False)
    refused = connect.opened[-1]
    assert refused.received["connect_error"] == [{"message": "Unauthorized"}]
    assert not refused.received["connected"]


# -- rooms ---------------------------------------------------------------------------------


async def test_join_event_room_answers_and_sends_current_availability(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(5, 8))
    client = await connect(live_system.api, (await make_user()).token)
    updates = await joined(client, event)
    assert [
        (u["categoryId"], u["availableTickets"], u["lockedTickets"], u["totalTickets"])
        for u in updates
    ] == [(event.categories[0].id, 5, 0, 5), (event.categories[1].id, 8, 0, 8)]
    for update in updates:
        assert update["eventId"] == event.id
        parse_iso(update["timestamp"])
    reply = client.received["joined-event-room"][0]
    assert set(reply) == {"success", "eventId", "message"}


@pytest.mark.parametrize("payload", [{"eventId": 987_654}, {"eventId": "x"}, None, [1]])
async def test_join_unknown_event_is_an_error(
    live_system: LiveSystem, make_user: MakeUser, connect: Connect, payload: Any
) -> None:
    client = await connect(live_system.api, (await make_user()).token)
    await client.emit("join-event-room", payload)
    assert await client.next("error") == {"message": "Failed to join event room"}
    assert not client.received["joined-event-room"]


async def test_leaving_the_room_stops_updates(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(5,))
    watcher = await connect(live_system.api, (await make_user()).token)
    locker = await connect(live_system.api, (await make_user()).token)
    await joined(watcher, event)
    await joined(locker, event)
    await watcher.emit("leave-event-room", {"eventId": event.id})
    assert (await watcher.next("left-event-room"))["success"] is True

    assert (await lock(locker, event, 1))["success"] is True
    # The room's broadcast of that change reached the locker, still in the room: had the
    # watcher been in it too, the same broadcast was queued to it before this heartbeat's answer.
    await locker.next("availability-update", lambda u: u["availableTickets"] == 4)
    await watcher.round_trip()
    # A later change must reach the watcher once it is back: its socket would have shown one.
    await joined(watcher, event)
    assert (await lock(locker, event, 1))["success"] is True
    await watcher.next("availability-update", lambda u: u["availableTickets"] == 3)

    seen = [u["availableTickets"] for u in watcher.received["availability-update"]]
    assert seen == [5, 4, 3]  # join, rejoin, the later change: nothing while it was away


# -- locks ---------------------------------------------------------------------------------


async def test_lock_tickets_answers_and_the_room_sees_it(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(10,))
    category = event.categories[0]
    watcher = await connect(live_system.api, (await make_user()).token)
    await joined(watcher, event)
    locker = await connect(live_system.api, (await make_user()).token)

    before = time.time()
    reply = await lock(locker, event, 3)
    assert reply["success"] is True
    assert set(reply) >= {"lockId", "expiresAt", "availableTickets", "eventId", "categoryId"}
    assert (reply["eventId"], reply["categoryId"], reply["quantity"]) == (event.id, category.id, 3)
    assert reply["availableTickets"] == 7
    ttl = live_system.settings.lock_ttl_seconds
    expires = parse_iso(reply["expiresAt"]).timestamp()
    assert before + ttl - 5 <= expires <= time.time() + ttl + 5

    update = await watcher.next("availability-update", lambda u: u["lockedTickets"] == 3)
    assert update == {
        "eventId": event.id,
        "categoryId": category.id,
        "availableTickets": 7,
        "lockedTickets": 3,
        "totalTickets": 10,
        "timestamp": update["timestamp"],
    }


async def test_a_room_update_reaches_websocket_and_polling_sockets_and_no_other_room(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    event = await make_event(organizer, seats=(10,))
    elsewhere = await make_event(organizer, seats=(10,))
    watchers = [
        await connect(live_system.api, (await make_user()).token, transports=transports)
        for transports in (("websocket",), ("polling",), ("polling",), ("websocket",))
    ]
    for watcher in watchers[:3]:
        await joined(watcher, event)
    await joined(watchers[3], elsewhere)
    locker = await connect(live_system.api, (await make_user()).token)

    assert (await lock(locker, event, 4))["success"] is True

    for watcher in watchers[:3]:
        update = await watcher.next("availability-update", lambda u: u["lockedTickets"] == 4)
        assert (update["eventId"], update["availableTickets"]) == (event.id, 6)
    await joined(watchers[3], event)  # its own room view proves the change was published
    assert [u["eventId"] for u in watchers[3].received["availability-update"]] == [
        elsewhere.id,
        event.id,
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quantity": 0}, "Invalid payload"),
        ({"quantity": 11}, "at most 10"),
        ({"quantity": "lots"}, "Invalid payload"),
        ({"categoryId": None}, "Invalid payload"),
        ({"eventId": 987_654}, "Event not found"),
    ],
)
async def test_bad_lock_requests_change_nothing(
    live_system: LiveSystem,
    make_user: MakeUser,
    make_event: MakeEvent,
    connect: Connect,
    change: dict[str, Any],
    message: str,
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(20,))
    client = await connect(live_system.api, (await make_user()).token)
    payload = {"eventId": event.id, "categoryId": event.categories[0].id, "quantity": 1} | change
    await client.emit("lock-tickets", payload)
    reply = await client.next("lock-tickets-response")
    assert reply["success"] is False and message in reply["message"]
    await client.emit("get-my-locks")
    assert (await client.next("my-locks-response"))["locks"] == []
    assert (await joined(client, event))[0]["availableTickets"] == 20


async def test_a_category_of_another_event_cannot_be_locked(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    first, second = await make_event(organizer, seats=(4,)), await make_event(organizer, seats=(4,))
    client = await connect(live_system.api, (await make_user()).token)
    payload = {"eventId": first.id, "categoryId": second.categories[0].id, "quantity": 1}
    await client.emit("lock-tickets", payload)
    reply = await client.next("lock-tickets-response")
    assert reply["success"] is False
    assert (await joined(client, second))[0]["availableTickets"] == 4


async def test_locking_more_than_is_left_is_refused(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(3,))
    first = await connect(live_system.api, (await make_user()).token)
    second = await connect(live_system.api, (await make_user()).token)
    assert (await lock(first, event, 2))["success"] is True
    refused = await lock(second, event, 2)
    assert refused["success"] is False and refused["message"]
    assert (await lock(second, event, 1))["availableTickets"] == 0


async def test_unlock_by_lock_id_and_by_category(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(10,))
    category = event.categories[0]
    client = await connect(live_system.api, (await make_user()).token)
    first = await lock(client, event, 2)
    await lock(client, event, 3)

    await client.emit("unlock-tickets", {"lockId": first["lockId"]})
    reply = await client.next("unlock-tickets-response")
    assert reply["success"] is True and reply["availableTickets"] == 7
    assert reply["lockIds"] == [first["lockId"]]

    payload = {"eventId": event.id, "categoryId": category.id, "quantity": 3, "userId": 1}
    await client.emit("unlock-tickets", payload)
    reply = await client.next("unlock-tickets-response")
    assert reply["success"] is True and reply["availableTickets"] == 10

    await client.emit("unlock-tickets", {"lockId": first["lockId"]})
    assert (await client.next("unlock-tickets-response"))["success"] is False
    await client.emit("unlock-tickets", {"categoryId": category.id})
    assert (await client.next("unlock-tickets-response"))["success"] is False


async def test_get_my_locks_lists_only_my_live_holds(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(10, 10))
    me = await connect(live_system.api, (await make_user()).token)
    other = await connect(live_system.api, (await make_user()).token)
    mine = [await lock(me, event, 1, 0), await lock(me, event, 2, 1)]
    await lock(other, event, 4, 0)

    await me.emit("get-my-locks", {"userId": 1})
    locks = (await me.next("my-locks-response"))["locks"]
    assert sorted(lk["lockId"] for lk in locks) == sorted(m["lockId"] for m in mine)
    by_id = {lk["lockId"]: lk for lk in locks}
    for reply in mine:
        assert by_id[reply["lockId"]] == {
            "lockId": reply["lockId"],
            "eventId": event.id,
            "categoryId": reply["categoryId"],
            "quantity": reply["quantity"],
            "expiresAt": reply["expiresAt"],
        }


async def test_heartbeat(live_system: LiveSystem, make_user: MakeUser, connect: Connect) -> None:
    client = await connect(live_system.api, (await make_user()).token)
    await client.emit("heartbeat")
    reply = await client.next("heartbeat-response")
    assert set(reply) == {"timestamp"}
    assert abs(parse_iso(reply["timestamp"]).timestamp() - time.time()) < 60


# -- identity ------------------------------------------------------------------------------


async def test_a_payload_user_id_never_changes_who_owns_a_lock(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(10,))
    victim, attacker = await make_user(), await make_user()
    attacker_socket = await connect(live_system.api, attacker.token)
    victim_socket = await connect(live_system.api, victim.token)

    payload = {
        "eventId": event.id,
        "categoryId": event.categories[0].id,
        "quantity": 2,
        "userId": victim.id,
    }
    await attacker_socket.emit("lock-tickets", payload)
    reply = await attacker_socket.next("lock-tickets-response")
    assert reply["success"] is True
    owned = live_system.runtime.seats.holds_of(attacker.id)
    assert [hold.lock_id for hold in owned] == [reply["lockId"]]

    await victim_socket.emit("get-my-locks")
    assert (await victim_socket.next("my-locks-response"))["locks"] == []

    # The victim cannot release the attacker's lock, nor buy with it.
    await victim_socket.emit("unlock-tickets", {"lockId": reply["lockId"], "userId": attacker.id})
    refused = await victim_socket.next("unlock-tickets-response")
    assert refused["success"] is False
    async with httpx.AsyncClient(base_url=live_system.api, timeout=WAIT_SECONDS) as http:
        answer = await http.post(
            "/api/orders/with-lock",
            headers=victim.headers,
            json={
                "eventId": event.id,
                "categoryId": event.categories[0].id,
                "quantity": 2,
                "lockId": reply["lockId"],
            },
        )
    assert answer.status_code == 403
    await attacker_socket.emit("get-my-locks")
    locks = (await attacker_socket.next("my-locks-response"))["locks"]
    assert [lk["lockId"] for lk in locks] == [reply["lockId"]]


# -- the feed: orders, expiry, bursts --------------------------------------------------------


async def test_buying_with_the_lock_brings_order_completed_and_the_sale_to_the_room(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(6,))
    buyer = await make_user()
    watcher = await connect(live_system.api, (await make_user()).token)
    await joined(watcher, event)
    buyer_socket = await connect(live_system.api, buyer.token)
    second_buyer_socket = await connect(live_system.api, buyer.token)
    reply = await lock(buyer_socket, event, 2)

    async with httpx.AsyncClient(base_url=live_system.api, timeout=WAIT_SECONDS) as http:
        answer = await http.post(
            "/api/orders/with-lock",
            headers=buyer.headers,
            json={
                "eventId": event.id,
                "categoryId": event.categories[0].id,
                "quantity": 2,
                "lockId": reply["lockId"],
            },
        )
    assert answer.status_code == 201, answer.text
    order_id = answer.json()["id"]
    for socket_of_buyer in (buyer_socket, second_buyer_socket):
        completed = await socket_of_buyer.next("order-completed")
        assert completed["orderId"] == order_id
        assert (completed["eventId"], completed["categoryId"], completed["quantity"]) == (
            event.id,
            event.categories[0].id,
            2,
        )
    sold = await watcher.next(
        "availability-update", lambda u: u["lockedTickets"] == 0 and u["availableTickets"] == 4
    )
    assert sold["totalTickets"] == 6
    assert not watcher.received["order-completed"]

    async with httpx.AsyncClient(base_url=live_system.api, timeout=WAIT_SECONDS) as http:
        answer = await http.post(f"/api/orders/{order_id}/cancel", headers=buyer.headers)
    assert answer.status_code == 200, answer.text
    cancelled = await buyer_socket.next("order-cancelled")
    assert cancelled["orderId"] == order_id
    await watcher.next("availability-update", lambda u: u["availableTickets"] == 6)


async def test_an_expired_lock_is_broadcast_with_nobody_calling(
    start_system: Callable[..., Awaitable[LiveSystem]], connect: Connect
) -> None:
    live = await start_system(lock_ttl_seconds=1)
    event = await create_event(live, await create_user(live, Role.ORGANIZER), (5,))
    watcher = await connect(live.api, (await create_user(live)).token)
    await joined(watcher, event)
    locker = await connect(live.api, (await create_user(live)).token)
    reply = await lock(locker, event, 2)
    assert reply["success"] is True

    # The hold's own state may never reach the watcher: it lives 1 s, and a socket that falls
    # behind is sent the newest state of a category in place of older unsent ones. What must
    # reach it is a state taken after the hold expired (`timestamp` and `expiresAt` are both
    # the actor's clock, in the same ISO format), with the seats back.
    expired = reply["expiresAt"]
    back = await watcher.next(
        "availability-update", lambda u: u["lockedTickets"] == 0 and u["timestamp"] >= expired
    )
    assert back["availableTickets"] == 5
    await locker.emit("get-my-locks")
    assert (await locker.next("my-locks-response"))["locks"] == []


async def test_a_burst_of_holds_is_coalesced_and_ends_on_the_final_state(
    live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent, connect: Connect
) -> None:
    event = await make_event(await make_user(Role.ORGANIZER), seats=(500,))
    category = event.categories[0]
    watcher = await connect(live_system.api, (await make_user()).token)
    await joined(watcher, event)
    holders = [await make_user() for _ in range(4)]
    engine = live_system.runtime.seats

    async def burst() -> None:
        await asyncio.gather(
            *(
                engine.hold(
                    user_id=holders[i % 4].id,
                    event_id=event.id,
                    category_id=category.id,
                    quantity=1,
                )
                for i in range(200)
            )
        )

    await live_system.call(burst())
    final = await watcher.next("availability-update", lambda u: u["lockedTickets"] == 200)
    assert final["availableTickets"] == 300
    await watcher.round_trip()
    updates = watcher.received["availability-update"][1:]  # after the join's snapshot
    assert updates[-1] == final
    assert len(updates) <= 50, f"{len(updates)} updates for 200 holds"
    locked = [u["lockedTickets"] for u in updates]
    assert locked == sorted(locked)


# -- limits --------------------------------------------------------------------------------


async def test_a_flood_is_rate_limited_and_the_server_stays_responsive(
    start_system: Callable[..., Awaitable[LiveSystem]], connect: Connect
) -> None:
    live = await start_system(socket_events_per_second=1, socket_event_burst=5)
    user = await create_user(live)
    flooder = await connect(live.api, user.token)
    for _ in range(30):
        await flooder.emit("heartbeat")
    await flooder.until(
        lambda: len(flooder.received["heartbeat-response"]) + len(flooder.received["error"]) >= 30
    )
    answered = len(flooder.received["heartbeat-response"])
    errors = flooder.received["error"]
    assert 5 <= answered < 30
    assert errors and all(e == {"message": "Rate limit exceeded"} for e in errors)
    assert answered + len(errors) == 30

    calm = await connect(live.api, (await create_user(live)).token)
    await calm.emit("heartbeat")
    assert await calm.next("heartbeat-response")


async def test_an_oversized_payload_drops_that_socket_only(
    live_system: LiveSystem, make_user: MakeUser, connect: Connect
) -> None:
    user = await make_user()
    big = await connect(live_system.api, user.token)
    limit = live_system.settings.socket_max_payload_bytes
    await big.emit("heartbeat", {"padding": "x" * (limit + 1)})
    await big.next("disconnect")
    assert not big.received["heartbeat-response"]
    other = await connect(live_system.api, user.token)
    await other.emit("heartbeat")
    assert await other.next("heartbeat-response")
