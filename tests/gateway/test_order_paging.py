"""`limit` and `offset` page every order list, newest first: a buyer's own, the organizer's
view, an event's. (Found by `make mutate`: dropping either in the sales service survived.)"""

from __future__ import annotations

import httpx

from sales.identity import Role
from tests.gateway.conftest import MakeEvent, MakeUser, order_body


async def test_every_order_list_pages_newest_first(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyer = await make_user()
    event = await make_event(organizer, seats=(10,))
    placed = []
    for _ in range(3):
        order = await client.post(
            "/api/orders", json=order_body(event.id, event.categories[0].id), headers=buyer.headers
        )
        assert order.status_code == 201, order.text
        placed.append(order.json()["id"])
    newest_first = placed[::-1]

    lists = [
        ("/api/orders", buyer),  # the buyer's own
        ("/api/orders/all", buyer),  # not an organizer: their own again
        ("/api/orders/all", organizer),  # the orders of the events the organizer created
        (f"/api/orders/event/{event.id}", organizer),  # the event's creator: all of them
        (f"/api/orders/event/{event.id}", buyer),  # anyone else: their own
    ]
    for path, who in lists:
        pages = {
            query: await _ids(client, f"{path}{query}", who.headers)
            for query in ("", "?limit=2", "?limit=2&offset=2", "?offset=1")
        }
        assert pages == {
            "": newest_first,
            "?limit=2": newest_first[:2],
            "?limit=2&offset=2": newest_first[2:],
            "?offset=1": newest_first[1:],
        }, path


async def _ids(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[int]:
    answer = await client.get(path, headers=headers)
    assert answer.status_code == 200, (path, answer.text)
    return [order["id"] for order in answer.json()]
