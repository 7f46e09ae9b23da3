"""Bad input of every kind gets a 4xx in the guide's shape and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from sales.identity import Role
from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import MakeEvent, MakeUser, assert_error


async def test_unknown_routes_and_wrong_methods(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/nothing-here"), 404, "Not Found")
    assert_error(await client.get("/api"), 404, "Not Found")
    assert_error(await client.post("/api/events/1/nothing"), 404, "Not Found")
    assert_error(await client.get("/no-such-page.html"), 404, "Not Found")
    wrong = await client.patch("/api/events")
    assert_error(wrong, 405, "Method Not Allowed")
    assert wrong.headers["allow"]
    assert_error(await client.delete("/api/orders"), 405)
    assert_error(await client.get("/api/auth/login"), 405)


async def test_malformed_json_and_wrong_shapes(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user(Role.ORGANIZER)
    json_headers = {**user.headers, "Content-Type": "application/json"}
    malformed = await client.post("/api/orders", content=b'{"eventId": 1,', headers=json_headers)
    assert_error(malformed, 400, "Validation failed")
    assert "Malformed JSON" in malformed.json()["error"]
    for raw in [b"[1, 2]", b'"text"', b"null", b"42", b""]:
        response = await client.post("/api/events", content=raw, headers=json_headers)
        assert_error(response, 400, "Validation failed")
    not_json = await client.post(
        "/api/auth/login",
        content=b"username=a&password=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(not_json, 400)


async def test_validation_names_the_field(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user(Role.ORGANIZER)
    response = await client.post(
        "/api/events",
        json={
            "eventCategory": "Music",
            "eventDate": "2030-01-01T00:00:00Z",
            "ticketCategories": [{"categoryName": "A", "price": 1, "totalSeats": 1}],
        },
        headers=user.headers,
    )
    assert response.json() == {
        "statusCode": 400,
        "message": "Validation failed",
        "error": "eventName is required",
    }


async def test_bad_ids(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    for path in [
        "/api/events/abc",
        "/api/events/0",
        "/api/events/-1",
        "/api/events/1.5",
        f"/api/events/{2**31}",
        f"/api/events/{10**30}",
        "/api/events/abc/tickets",
    ]:
        assert_error(await client.get(path), 400, "Validation failed")
    for path in [
        "/api/orders/abc",
        "/api/orders/0",
        f"/api/orders/{2**40}",
        "/api/orders/event/abc",
    ]:
        assert_error(await client.get(path, headers=user.headers), 400, "Validation failed")
    assert_error(await client.get("/api/events/2147483647"), 404, "Not Found")
    assert_error(await client.get("/api/orders/2147483647", headers=user.headers), 404)
    for body in [
        {"eventId": "1", "categoryId": 1, "quantity": 1},
        {"eventId": 1, "categoryId": 1.5, "quantity": 1},
        {"eventId": 1, "categoryId": 1, "quantity": True},
        {"eventId": 1, "categoryId": 1, "quantity": 0},
        {"eventId": 1, "categoryId": 1, "quantity": -3},
        {"eventId": 1, "categoryId": 1, "quantity": "2"},
        {"eventId": 2**40, "categoryId": 1, "quantity": 1},
        {"eventId": 1, "categoryId": 1},
    ]:
        response = await client.post("/api/orders", json=body, headers=user.headers)
        assert_error(response, 400, "Validation failed")


async def test_paging_bounds(client: httpx.AsyncClient) -> None:
    for query in ["limit=0", "limit=101", "limit=abc", "offset=-1", "offset=x"]:
        assert_error(await client.get(f"/api/events?{query}"), 400, "Validation failed")
    response = await client.get("/api/events?limit=1&offset=0")
    assert response.status_code == 200
    assert isinstance(response.json(), list) and len(response.json()) <= 1


async def test_oversize_bodies(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser, make_event: MakeEvent
) -> None:
    organizer = await make_user(Role.ORGANIZER)
    limit = live_system.settings.max_body_bytes
    big = b'{"eventName": "' + b"x" * limit + b'"}'
    declared = await client.post(
        "/api/events",
        content=big,
        headers={**organizer.headers, "Content-Type": "application/json"},
    )
    assert_error(declared, 413)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = await client.post(
        "/api/events",
        content=chunks(),
        headers={**organizer.headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413)
    # Below the limit, the same route still answers normally.
    event = await make_event(organizer)
    assert (await client.get(f"/api/events/{event.id}")).status_code == 200


async def test_cors(client: httpx.AsyncClient) -> None:
    allowed = await client.options(
        "/api/events",
        headers={
            "Origin": "http://localhost:4200",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:4200"
    refused = await client.options(
        "/api/events",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in refused.headers
    simple = await client.get("/api/events", headers={"Origin": "http://localhost:8080"})
    assert simple.headers["access-control-allow-origin"] == "http://localhost:8080"
    unauthorized = await client.get("/api/user", headers={"Origin": "http://localhost:3000"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == "http://localhost:3000"
    # Without an Origin there are no CORS headers, but caches still learn the answer varies.
    plain = await client.get("/api/events")
    assert "access-control-allow-origin" not in plain.headers
    assert "Origin" in plain.headers["vary"]


async def test_cors_origins_are_configurable(start_system) -> None:  # type: ignore[no-untyped-def]
    live = await start_system(cors_origins="https://tickets.example")
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        ours = await http.get("/api/events", headers={"Origin": "https://tickets.example"})
        default = await http.get("/api/events", headers={"Origin": "http://localhost:4200"})
    assert ours.headers["access-control-allow-origin"] == "https://tickets.example"
    assert "access-control-allow-origin" not in default.headers


async def test_docs_health_and_page(client: httpx.AsyncClient) -> None:
    docs = await client.get("/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = (await client.get("/api/openapi.json")).json()
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/user",
        "/api/events",
        "/api/events/upcoming",
        "/api/events/category/{category}",
        "/api/events/{id}",
        "/api/events/{id}/tickets",
        "/api/events/tickets/reserve",
        "/api/events/tickets/release",
        "/api/orders",
        "/api/orders/with-lock",
        "/api/orders/all",
        "/api/orders/event/{event_id}",
        "/api/orders/{id}",
        "/api/orders/{id}/cancel",
        "/api/health",
    ]:
        assert path in schema["paths"], path
    # The docs say which operations need a token, and only those.
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = schema["paths"]
    assert paths["/api/events/tickets/reserve"]["post"]["security"] == [{"bearer": []}]
    assert paths["/api/events"]["post"]["security"] == [{"bearer": []}]
    assert paths["/api/orders/{id}/cancel"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in paths["/api/events"]["get"]
    assert "security" not in paths["/api/auth/login"]["post"]
    health = await client.get("/api/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": True, "ray": True, "realtime": True}
    page = await client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
