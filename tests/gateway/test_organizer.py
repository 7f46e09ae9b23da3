"""The organizer's REST side: the audit trail written with each change, and the CSV export of
an event's orders; both for the event's organizer only."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import func, select

from persistence.models import audit_log
from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeUser, assert_error, order_body

WINDOW_START = "2031-06-01T10:00:00Z"


def _event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventName": "Audit Night",
        "eventCategory": "Music",
        "eventDate": "2031-07-15T18:00:00Z",
        "location": "Hall",
        "ticketCategories": [
            {"categoryName": "Floor", "price": 40, "totalSeats": 20, "maxPerUser": 4},
            {"categoryName": "Balcony", "price": 25.5, "totalSeats": 10},
        ],
    }
    body.update(changes)
    return body


async def _trail(client: httpx.AsyncClient, event_id: int, headers: dict[str, str]) -> Any:
    response = await client.get(f"/api/events/{event_id}/audit", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _rows(live: LiveSystem, event_id: int) -> int:
    async def count() -> int:
        async with live.runtime.db.connect() as conn:
            statement = select(func.count()).where(audit_log.c.event_id == event_id)
            return int((await conn.execute(statement)).scalar_one())

    return await live.call(count())


async def test_every_change_leaves_one_entry_with_who_made_it(
    client: httpx.AsyncClient, make_user: MakeUser, live_system: LiveSystem
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    created = await client.post("/api/events", json=_event(), headers=organizer.headers)
    assert created.status_code == 201, created.text
    event = created.json()
    event_id, floor = event["idEvent"], event["ticketCategories"][0]["id"]

    renamed = await client.put(
        f"/api/events/{event_id}",
        json={"eventName": "Audit Night II", "salesStartAt": WINDOW_START},
        headers=organizer.headers,
    )
    assert renamed.status_code == 200, renamed.text
    # The same values again change nothing, so they leave no entry.
    same = await client.put(
        f"/api/events/{event_id}", json={"eventName": "Audit Night II"}, headers=organizer.headers
    )
    assert same.status_code == 200
    await client.put(
        f"/api/events/{event_id}", json={"salesStartAt": None}, headers=organizer.headers
    )
    bought = await client.post(
        "/api/orders", json=order_body(event_id, floor, 2), headers=buyer.headers
    )
    assert bought.status_code == 201, bought.text
    order_id = bought.json()["id"]
    cancelled = await client.post(f"/api/orders/{order_id}/cancel", headers=organizer.headers)
    assert cancelled.status_code == 200, cancelled.text

    page = await _trail(client, event_id, organizer.headers)
    actions = [(item["action"], item["actorId"]) for item in page["items"]]
    assert actions == [
        ("order.cancelled", organizer.id),
        ("event.sales_window_changed", organizer.id),
        ("event.updated", organizer.id),
        ("event.sales_window_changed", organizer.id),
        ("event.created", organizer.id),
    ]
    cancel, _, rename, window, creation = page["items"]
    assert cancel["details"] == {
        "orderId": order_id,
        "buyerId": buyer.id,
        "categoryId": floor,
        "quantity": 2,
        "totalPrice": "80.00",
    }
    assert rename["details"] == {"event_name": {"from": "Audit Night", "to": "Audit Night II"}}
    assert window["details"]["sales_start_at"]["from"] is None
    assert window["details"]["sales_start_at"]["to"].startswith("2031-06-01T10:00:00")
    assert [c["maxPerUser"] for c in creation["details"]["categories"]] == [4, None]
    assert page["nextBefore"] is None

    # Paged: two at a time, older pages through `before`, nothing seen twice.
    seen: list[int] = []
    before: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"before": before} if before else {})
        response = await client.get(
            f"/api/events/{event_id}/audit", params=params, headers=organizer.headers
        )
        body = response.json()
        seen += [item["id"] for item in body["items"]]
        before = body["nextBefore"]
        if before is None:
            break
    assert seen == [item["id"] for item in page["items"]]

    # A delete is recorded too, in its own transaction with the delete (and outlives the row).
    fresh = (await client.post("/api/events", json=_event(), headers=organizer.headers)).json()
    deleted = await client.delete(f"/api/events/{fresh['idEvent']}", headers=organizer.headers)
    assert deleted.status_code == 200, deleted.text
    assert await _rows(live_system, fresh["idEvent"]) == 2


async def test_a_refused_change_leaves_no_entry(
    client: httpx.AsyncClient, make_user: MakeUser, live_system: LiveSystem
) -> None:
    organizer, other = await make_user(Role.ORGANIZER), await make_user(Role.ORGANIZER)
    event = (await client.post("/api/events", json=_event(), headers=organizer.headers)).json()
    event_id = event["idEvent"]
    refused = await client.put(
        f"/api/events/{event_id}", json={"eventName": "Mine now"}, headers=other.headers
    )
    assert_error(refused, 403)
    backwards = await client.put(
        f"/api/events/{event_id}",
        json={"salesStartAt": "2031-06-02T00:00:00Z", "salesEndAt": "2031-06-01T00:00:00Z"},
        headers=organizer.headers,
    )
    assert_error(backwards, 400)
    assert await _rows(live_system, event_id) == 1  # the creation only


async def test_only_the_events_organizer_reads_its_trail_or_exports_it(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    other, buyer = await make_user(Role.ORGANIZER), await make_user()
    event_id = (await client.post("/api/events", json=_event(), headers=organizer.headers)).json()[
        "idEvent"
    ]
    paths = [f"/api/events/{event_id}/audit", f"/api/orders/event/{event_id}/export?format=csv"]
    for path in paths:
        for stranger in (other, buyer):
            assert_error(await client.get(path, headers=stranger.headers), 403, "Forbidden")
        assert_error(await client.get(path), 401)
        forged = {"Authorization": f"Bearer {organizer.token[:-4]}AAAA"}
        assert_error(await client.get(path, headers=forged), 401)
    # Absurd ids and parameters: a 4xx in the error shape, never a 5xx.
    for path in [
        "/api/events/0/audit",
        "/api/events/-5/audit",
        "/api/events/99999999999999999999999/audit",
        "/api/events/abc/audit",
        f"/api/events/{event_id}/audit?limit=0",
        f"/api/events/{event_id}/audit?limit=100000",
        f"/api/events/{event_id}/audit?before=-1",
        f"/api/events/{event_id}/audit?before=1e400",
        "/api/orders/event/0/export?format=csv",
        "/api/orders/event/abc/export?format=csv",
        f"/api/orders/event/{event_id}/export?format=xlsx",
        f"/api/orders/event/{event_id}/export?format=",
    ]:
        response = await client.get(path, headers=organizer.headers)
        assert_error(response, 400)
    assert_error(await client.get("/api/events/2147483000/audit", headers=organizer.headers), 404)


async def test_the_export_has_one_quoted_row_per_order(
    client: httpx.AsyncClient, make_user: MakeUser, live_system: LiveSystem
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    buyers = [await make_user() for _ in range(3)]
    event = (await client.post("/api/events", json=_event(), headers=organizer.headers)).json()
    event_id, floor = event["idEvent"], event["ticketCategories"][0]["id"]
    notes = ['Row "A", seat 3\nplease', '=HYPERLINK("http://evil")', None]
    placed = []
    for buyer, note in zip(buyers, notes, strict=True):
        body = order_body(event_id, floor, 1) | ({"notes": note} if note else {})
        response = await client.post("/api/orders", json=body, headers=buyer.headers)
        assert response.status_code == 201, response.text
        placed.append(response.json()["id"])
    # Someone else's event's orders never appear.
    elsewhere = (await client.post("/api/events", json=_event(), headers=organizer.headers)).json()
    await client.post(
        "/api/orders",
        json=order_body(elsewhere["idEvent"], elsewhere["ticketCategories"][0]["id"], 1),
        headers=buyers[0].headers,
    )

    response = await client.get(
        f"/api/orders/event/{event_id}/export", params={"format": "csv"}, headers=organizer.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(row["orderId"]) for row in rows] == placed
    assert [row["buyer"] for row in rows] == [buyer.username for buyer in buyers]
    assert rows[0]["notes"] == 'Row "A", seat 3\nplease'
    assert rows[1]["notes"] == '\'=HYPERLINK("http://evil")'  # never a formula
    assert rows[2]["notes"] == ""
    assert {row["totalPrice"] for row in rows} == {"40.00"}
    assert {row["category"] for row in rows} == {"Floor"}


async def test_the_export_streams_page_after_page(
    client: httpx.AsyncClient, make_user: MakeUser, live_system: LiveSystem
) -> None:
    """More orders than one page of the keyset query: every one exactly once, in order."""
    from sales import organizer as organizer_module

    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = (
        await client.post(
            "/api/events",
            json=_event(ticketCategories=[{"categoryName": "A", "price": 1, "totalSeats": 50}]),
            headers=organizer.headers,
        )
    ).json()
    event_id, category = event["idEvent"], event["ticketCategories"][0]["id"]
    for _ in range(7):
        response = await client.post(
            "/api/orders", json=order_body(event_id, category, 1), headers=buyer.headers
        )
        assert response.status_code == 201
    page = organizer_module.EXPORT_PAGE
    organizer_module.EXPORT_PAGE = 3
    try:
        response = await client.get(
            f"/api/orders/event/{event_id}/export?format=csv", headers=organizer.headers
        )
    finally:
        organizer_module.EXPORT_PAGE = page
    ids = [int(row["orderId"]) for row in csv.DictReader(io.StringIO(response.text))]
    assert len(ids) == 7 and ids == sorted(ids)


async def test_a_flood_of_exports_and_audit_reads_is_bounded(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    organizer, buyer = await make_user(Role.ORGANIZER), await make_user()
    event = (await client.post("/api/events", json=_event(), headers=organizer.headers)).json()
    event_id = event["idEvent"]
    body = order_body(event_id, event["ticketCategories"][0]["id"], 1)
    assert (await client.post("/api/orders", json=body, headers=buyer.headers)).status_code == 201

    exports = await asyncio.gather(
        *(
            client.get(f"/api/orders/event/{event_id}/export?format=csv", headers=organizer.headers)
            for _ in range(12)
        )
    )
    statuses = Counter(response.status_code for response in exports)
    assert set(statuses) == {200, 429}, statuses
    assert 1 <= statuses[200] <= 4  # the burst, and perhaps one more token meanwhile
    for response in exports:
        if response.status_code == 429:
            assert_error(response, 429)
            assert int(response.headers["retry-after"]) >= 1
        else:
            assert len(list(csv.DictReader(io.StringIO(response.text)))) == 1
    # Another organizer's own exports are not held up by this one's flood.
    other = await make_user(Role.ORGANIZER)
    theirs = (await client.post("/api/events", json=_event(), headers=other.headers)).json()
    answer = await client.get(
        f"/api/orders/event/{theirs['idEvent']}/export?format=csv", headers=other.headers
    )
    assert answer.status_code == 200

    reads = await asyncio.gather(
        *(client.get(f"/api/events/{event_id}/audit", headers=organizer.headers) for _ in range(60))
    )
    assert {response.status_code for response in reads} == {200}
    assert {len(response.json()["items"]) for response in reads} == {1}


async def test_the_api_docs_list_both_routes_as_needing_a_token(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    assert paths["/api/events/{id}/audit"]["get"]["security"] == [{"bearer": []}]
    export = paths["/api/orders/event/{event_id}/export"]["get"]
    assert export["security"] == [{"bearer": []}]
    assert "text/csv" in export["responses"]["200"]["content"]
