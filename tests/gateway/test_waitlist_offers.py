"""Offers that lapse pass on, driven by the actor's own expiry timer, and while anyone waits a
freed seat never reaches a buyer who is not waiting, even while too few are free for the head."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import available_seats, order_body, poll, reserve


async def test_a_lapsed_offer_passes_to_the_next_and_no_bystander_gets_the_seat(
    start_system: Callable[..., Awaitable[LiveSystem]],
) -> None:
    live = await start_system(waitlist_offer_seconds=1)
    organizer = await create_user(live, Role.ORGANIZER)
    holder, bystander = await create_user(live), await create_user(live)
    # A long line (each offer lasts a second): the seat stays with the list throughout.
    line = [await create_user(live) for _ in range(20)]
    first, second = line[:2]
    event = await create_event(live, organizer, (2,))
    ids = (event.id, event.categories[0].id)
    path = f"/api/events/{ids[0]}/categories/{ids[1]}/waitlist"

    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        holds = [await reserve(http, holder, *ids), await reserve(http, holder, *ids)]
        # The head wants both seats; everyone behind it one.
        for user, quantity in zip(line, [2] + [1] * (len(line) - 1), strict=True):
            joined = await http.post(path, json={"quantity": quantity}, headers=user.headers)
            assert joined.status_code == 201, joined.text

        async def release(lock_id: str) -> None:
            released = await http.post(
                "/api/events/tickets/release",
                json={"categoryId": ids[1], "lockId": lock_id},
                headers=holder.headers,
            )
            assert released.status_code == 200, released.text

        async def bystander_tries(times: int) -> list[int]:
            answers = []
            for _ in range(times):
                response = await http.post(
                    "/api/events/tickets/reserve",
                    json=order_body(*ids),
                    headers=bystander.headers,
                )
                answers.append(response.status_code)
            return answers

        async def offered_to(user_index: int) -> bool:
            waiting = [
                (await http.get(path, headers=user.headers)).status_code for user in (first, second)
            ]
            return waiting[: user_index + 1] == [404] * (user_index + 1)

        # One seat comes free: too few for the head, and strictly FIFO nobody behind it is
        # served first; the seat is set aside, never back on general sale.
        await release(holds[0]["lockId"])
        granted = await bystander_tries(20)
        assert set(granted) == {409}
        assert await available_seats(http, event.id) == [0]
        assert not await offered_to(0)
        assert (await http.get(path, headers=second.headers)).json()["position"] == 2
        # The second seat: the head is offered both.
        await release(holds[1]["lockId"])
        await poll(lambda: offered_to(0))
        granted += await bystander_tries(5)
        # Nobody calls the actor now: only its own expiry timer can pass the lapsed offer on.
        await poll(lambda: offered_to(1))
        assert granted and set(granted) == {409}
        assert await available_seats(http, event.id) == [0]
        # The back of the line is still waiting its turn.
        assert (await http.get(path, headers=line[-1].headers)).status_code == 200
