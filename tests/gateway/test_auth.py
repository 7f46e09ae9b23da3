"""Register, log in, read the profile; and every way a token can be forged or stale."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from typing import TYPE_CHECKING, Any

import httpx
import jwt

from sales.identity import Role
from tests.gateway.conftest import MakeUser, assert_error

if TYPE_CHECKING:
    from tests.fixtures.system import LiveSystem, TestUser

INVALID_TOKEN = {"statusCode": 401, "message": "Unauthorized", "error": "Invalid Token!"}


def _name() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@example.com"


async def _register(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/auth/register", json=body)


ROLES = [
    (None, "assistant"),
    ("assistant", "assistant"),
    ("organizer", "organizer"),
    ("customer", "assistant"),
]


async def test_register_roles(client: httpx.AsyncClient) -> None:
    for sent, kept in ROLES:
        body: dict[str, Any] = {"username": _name(), "password": "password123", "userId": 1}
        if sent is not None:
            body["role"] = sent
        response = await _register(client, **body)
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["user"]["role"] == kept
        assert answer["user"]["username"] == body["username"]
        profile = await client.get(
            "/api/user", headers={"Authorization": f"Bearer {answer['access_token']}"}
        )
        assert profile.json() == answer["user"]


async def test_register_refuses_unknown_role_and_duplicates(client: httpx.AsyncClient) -> None:
    assert_error(
        await _register(client, username=_name(), password="password123", role="admin"),
        400,
        "Validation failed",
    )
    name = _name()
    assert (await _register(client, username=name, password="password123")).status_code == 201
    assert_error(await _register(client, username=name, password="other-password"), 409)
    # Trimmed before comparison: the same name with spaces is the same user.
    assert_error(await _register(client, username=f"  {name} ", password="password123"), 409)


BAD_REGISTRATIONS: list[dict[str, Any]] = [
    {"username": "ab", "password": "password123"},
    {"username": "x" * 101, "password": "password123"},
    {"username": "bad\x00name", "password": "password123"},
    {"username": "bad\nname", "password": "password123"},
    {"username": "longenough", "password": "short"},
    {"username": "longenough", "password": "é" * 37},  # 74 bytes: beyond bcrypt's 72
    {"username": "longenough"},
    {"password": "password123"},
    {"username": 12345, "password": "password123"},
    {"username": "   ab   ", "password": "password123"},
]


async def test_register_validation(client: httpx.AsyncClient) -> None:
    for body in BAD_REGISTRATIONS:
        response = await client.post("/api/auth/register", json=body)
        assert_error(response, 400, "Validation failed")


async def test_login_and_wrong_credentials(client: httpx.AsyncClient) -> None:
    name = _name()
    created = (await _register(client, username=name, password="password123")).json()
    response = await client.post(
        "/api/auth/login", json={"username": name, "password": "password123"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "user"}
    assert body["user"] == created["user"]
    assert set(body["user"]) == {"id", "username", "role"}

    wrong = await client.post("/api/auth/login", json={"username": name, "password": "nope-nope"})
    unknown = await client.post(
        "/api/auth/login", json={"username": _name(), "password": "password123"}
    )
    assert_error(wrong, 401)
    assert_error(unknown, 401)
    assert wrong.json() == unknown.json()  # nothing tells which usernames exist


async def test_profile_comes_from_the_token(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user(Role.ORGANIZER)
    response = await client.get("/api/user", headers=user.headers)
    assert response.json() == {"id": user.id, "username": user.username, "role": "organizer"}


def _claims(user_id: int, role: str | None = "assistant", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": str(user_id), "role": role, "iat": now, "exp": now + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _hs512(claims: dict[str, Any], secret: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # our test secret is short for SHA-512; irrelevant here
        return jwt.encode(claims, secret, "HS512")


def _forgeries(live: LiveSystem, user: TestUser) -> dict[str, str | None]:
    secret = live.settings.jwt_secret
    assert secret
    _, payload, _ = user.token.split(".")
    signed_as_assistant = jwt.encode(_claims(user.id), secret, algorithm="HS256")
    h2, _, sig2 = signed_as_assistant.split(".")
    organizer_payload = jwt.utils.base64url_encode(
        json.dumps(_claims(user.id, "organizer")).encode()
    ).decode()
    unsigned = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    return {
        "missing": None,
        "garbage": "not-a-jwt",
        "alg none": f"{unsigned}.{payload}.",
        "wrong key": jwt.encode(_claims(user.id), "another-secret-" + "y" * 32, "HS256"),
        "expired": jwt.encode(
            _claims(user.id, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
            secret,
            "HS256",
        ),
        "tampered role": f"{h2}.{organizer_payload}.{sig2}",
        "missing exp": jwt.encode(_claims(user.id, exp=None), secret, "HS256"),
        "missing role": jwt.encode(_claims(user.id, role=None), secret, "HS256"),
        "unknown role": jwt.encode(_claims(user.id, role="admin"), secret, "HS256"),
        "bad subject": jwt.encode(_claims(user.id, sub="abc"), secret, "HS256"),
        "HS512": _hs512(_claims(user.id), secret),
    }


async def test_forged_tokens_are_refused(
    client: httpx.AsyncClient, live_system: LiveSystem, make_user: MakeUser
) -> None:
    user = await make_user(Role.ASSISTANT)
    forgeries = _forgeries(live_system, user)
    assert len(forgeries) == 11
    for attack, token in forgeries.items():
        await _expect_refused(client, attack, token)
    # The genuine token still works: the refusals above are about the forgeries.
    assert (await client.get("/api/user", headers=user.headers)).status_code == 200


async def _expect_refused(client: httpx.AsyncClient, attack: str, token: str | None) -> None:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    for method, path, body in [
        ("GET", "/api/user", None),
        ("GET", "/api/orders", None),
        ("POST", "/api/events", {"eventName": "x"}),
        ("POST", "/api/events/tickets/reserve", {"eventId": 1, "categoryId": 1, "quantity": 1}),
    ]:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (attack, path, response.text)
        assert response.json() == INVALID_TOKEN


async def test_scheme_other_than_bearer_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    response = await client.get("/api/user", headers={"Authorization": f"Basic {user.token}"})
    assert response.json() == INVALID_TOKEN
