"""The waiting list over Socket.IO: join and leave, the live position, and the offer pushed to
the buyer's sockets on whichever gateway they are connected to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.realtime.conftest import WAIT_SECONDS, Connect


async def test_an_offer_reaches_the_buyer_on_the_other_gateway(
    start_system: Callable[..., Awaitable[LiveSystem]], connect: Connect
) -> None:
    a = await start_system()
    b = await start_system(ray_namespace=a.settings.ray_namespace)
    event = await create_event(a, await create_user(a, Role.ORGANIZER), (1,))
    category = event.categories[0]
    holder, first, second = await create_user(a), await create_user(a), await create_user(a)
    where = {"eventId": event.id, "categoryId": category.id}

    holder_on_a = await connect(a.api, holder.token)
    await holder_on_a.emit("lock-tickets", where | {"quantity": 1})
    held = await holder_on_a.next("lock-tickets-response")
    assert held["success"] is True

    first_on_b = await connect(b.api, first.token)
    first_on_b_too = await connect(b.api, first.token)  # every socket of the buyer hears it
    second_on_b = await connect(b.api, second.token)
    # Identity comes from the token: a userId in the payload changes nothing.
    await first_on_b.emit("join-waitlist", where | {"quantity": 1, "userId": second.id})
    joined = await first_on_b.next("join-waitlist-response")
    assert joined == {
        "success": True,
        "message": "Joined the waiting list",
        "quantity": 1,
        "eventId": event.id,
        "categoryId": category.id,
        "position": 1,
        "waiting": 1,
    }
    await second_on_b.emit("join-waitlist", where | {"quantity": 1})
    assert (await second_on_b.next("join-waitlist-response"))["position"] == 2
    await second_on_b.next("waitlist-position", lambda p: p["position"] == 2)

    # The seat comes free through gateway A: the offer goes to the head, on gateway B.
    await holder_on_a.emit("unlock-tickets", {"lockId": held["lockId"]})
    assert (await holder_on_a.next("unlock-tickets-response"))["success"] is True
    offer = await first_on_b.next("waitlist-offer")
    assert offer == (await first_on_b_too.next("waitlist-offer"))
    assert (offer["eventId"], offer["categoryId"], offer["quantity"]) == (
        event.id,
        category.id,
        1,
    )
    assert set(offer) == {"lockId", "eventId", "categoryId", "quantity", "expiresAt"}
    moved = await second_on_b.next("waitlist-position", lambda p: p["position"] == 1)
    assert moved == {"eventId": event.id, "categoryId": category.id, "position": 1, "waiting": 1}
    assert not second_on_b.received["waitlist-offer"]
    assert not holder_on_a.received["waitlist-offer"]

    # The offer is an ordinary lock: listed, and turned into an order with the lock flow.
    await first_on_b.emit("get-my-locks")
    locks = (await first_on_b.next("my-locks-response"))["locks"]
    assert [lock["lockId"] for lock in locks] == [offer["lockId"]]
    async with httpx.AsyncClient(base_url=a.api, timeout=WAIT_SECONDS) as http:
        # Nobody else can use it.
        stolen = await http.post(
            "/api/orders/with-lock",
            headers=second.headers,
            json=where | {"quantity": 1, "lockId": offer["lockId"]},
        )
        assert stolen.status_code == 403, stolen.text
        bought = await http.post(
            "/api/orders/with-lock",
            headers=first.headers,
            json=where | {"quantity": 1, "lockId": offer["lockId"]},
        )
        assert bought.status_code == 201, bought.text


async def test_socket_joins_refuse_bad_payloads_and_floods_make_one_entry(
    live_system: LiveSystem, connect: Connect
) -> None:
    live = live_system
    event = await create_event(live, await create_user(live, Role.ORGANIZER), (1,))
    category = event.categories[0]
    holder, buyer = await create_user(live), await create_user(live)
    where = {"eventId": event.id, "categoryId": category.id}
    buyer_socket = await connect(live.api, buyer.token)

    await buyer_socket.emit("join-waitlist", where | {"quantity": 1})
    early = await buyer_socket.next("join-waitlist-response")
    assert early["success"] is False and "available" in early["message"]

    holder_socket = await connect(live.api, holder.token)
    await holder_socket.emit("lock-tickets", where | {"quantity": 1})
    assert (await holder_socket.next("lock-tickets-response"))["success"] is True

    bad: list[object] = [
        None,
        "join",
        where,  # no quantity
        where | {"quantity": 0},
        where | {"quantity": 10**12},
        where | {"quantity": True},
        {"eventId": -1, "categoryId": category.id, "quantity": 1},
        where | {"categoryId": 2**31 - 1, "quantity": 1},
    ]
    for payload in bad:
        await buyer_socket.emit("join-waitlist", payload)
        refused = await buyer_socket.next("join-waitlist-response")
        assert refused["success"] is False and refused["message"], payload

    # A flood: the rate limit answers the excess with `error`; exactly one entry results.
    for _ in range(60):
        await buyer_socket.emit("join-waitlist", where | {"quantity": 1})
    received = buyer_socket.received
    before = len(bad) + 1
    await buyer_socket.until(
        lambda: len(received["join-waitlist-response"]) - before + len(received["error"]) >= 60
    )
    answers = received["join-waitlist-response"][before:]
    assert [answer["success"] for answer in answers].count(True) == 1
    assert buyer_socket.received["error"]

    async with httpx.AsyncClient(base_url=live.api, timeout=WAIT_SECONDS) as http:
        place = await http.get(
            f"/api/events/{event.id}/categories/{category.id}/waitlist", headers=buyer.headers
        )
        assert place.json()["waiting"] == 1
        # Leaving by socket; someone else's leave refuses and changes nothing.
        await holder_socket.emit("leave-waitlist", where)
        assert (await holder_socket.next("leave-waitlist-response"))["success"] is False
        rested = await connect(live.api, buyer.token)  # the flooded socket's bucket is empty
        await rested.emit("leave-waitlist", where)
        assert (await rested.next("leave-waitlist-response"))["success"] is True
        gone = await http.get(
            f"/api/events/{event.id}/categories/{category.id}/waitlist", headers=buyer.headers
        )
        assert gone.status_code == 404
