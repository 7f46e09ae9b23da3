"""The text of the sales service's own refusal of a second cancel, as a buyer reads it in
`error`. (Found by `make mutate`: its text mutants survived, as the tests checked the status.)"""

from __future__ import annotations

import httpx

from sales.identity import Role
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error, order_body


async def test_a_second_cancel_says_the_order_is_already_cancelled(
    client: httpx.AsyncClient, make_user: MakeUser, make_event: MakeEvent
) -> None:
    buyer = await make_user()
    event = await make_event(await make_user(Role.ORGANIZER), seats=(3,))
    bought = await client.post(
        "/api/orders", json=order_body(event.id, event.categories[0].id), headers=buyer.headers
    )
    assert bought.status_code == 201, bought.text
    cancel = f"/api/orders/{bought.json()['id']}/cancel"
    assert (await client.post(cancel, headers=buyer.headers)).status_code == 200

    again = await client.post(cancel, headers=buyer.headers)

    assert_error(again, 409)
    assert again.json()["error"] == "Order is already cancelled"
