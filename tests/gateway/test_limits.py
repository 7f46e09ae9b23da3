"""No one caller can exhaust a gateway: login and register attempts per address and per
username, requests per user and per address (429 with Retry-After), and a bounded password
hashing pool (503 at once when full, never an unbounded queue).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from pydantic import ValidationError

from gateway.config import Settings
from gateway.limits import KeyedLimiter
from sales.identity import HashingBusy, PasswordHasher
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.gateway.conftest import assert_error, order_body

StartSystem = Callable[..., Awaitable[LiveSystem]]
NEVER_REFILLS = 0.0001  # tokens per second: nothing comes back during a test


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def assert_throttled(response: httpx.Response) -> int:
    assert_error(response, 429, "Too Many Requests")
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


# -- the limiter itself -----------------------------------------------------------------------


def test_a_key_gets_its_burst_then_waits_for_the_rate() -> None:
    clock = FakeClock()
    limiter = KeyedLimiter(rate=0.5, burst=2, capacity=10, clock=clock)
    assert [limiter.retry_after("a") for _ in range(3)] == [0, 0, 2]
    assert limiter.retry_after("b") == 0  # another key has its own bucket
    clock.now += 2
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == 2


def test_a_flood_of_new_keys_never_grows_past_the_capacity() -> None:
    clock = FakeClock()
    limiter = KeyedLimiter(rate=1, burst=1, capacity=100, clock=clock)
    limiter.retry_after("victim")
    for i in range(10_000):
        limiter.retry_after(f"address-{i}")
        assert len(limiter) <= 100
    # The least recently seen key was forgotten: forgiven, never punished.
    assert limiter.retry_after("victim") == 0


def test_a_recently_seen_key_is_kept_while_older_ones_go() -> None:
    limiter = KeyedLimiter(rate=NEVER_REFILLS, burst=1, capacity=2, clock=FakeClock())
    limiter.retry_after("flooder")
    limiter.retry_after("other")
    assert limiter.retry_after("flooder") > 0  # seen again: now the most recent
    limiter.retry_after("third")  # evicts "other", not "flooder"
    assert limiter.retry_after("flooder") > 0


@pytest.mark.parametrize(
    "absurd",
    [
        {"rate_limit_per_user": 0},
        {"rate_limit_user_burst": 0},
        {"rate_limit_per_address": -1},
        {"rate_limit_keys": 0},
        {"auth_attempts_per_minute_per_username": 0},
        {"password_hash_workers": 0},
        {"password_hash_queue": -1},
    ],
)
def test_absurd_limits_are_refused_at_start(absurd: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Settings(**absurd)  # type: ignore[arg-type]


# -- the hashing pool ---------------------------------------------------------------------------


async def test_the_hashing_pool_refuses_at_once_past_its_bound() -> None:
    hasher = PasswordHasher(4, workers=1, queue=1)
    try:
        outcomes = await asyncio.gather(
            *(hasher.hash(f"secret-{i}") for i in range(5)), return_exceptions=True
        )
        busy = [outcome for outcome in outcomes if isinstance(outcome, HashingBusy)]
        hashed = [outcome for outcome in outcomes if isinstance(outcome, str)]
        assert len(hashed) == 2 and len(busy) == 3, outcomes
        assert hasher.pending == 0
        assert await hasher.verify("secret-0", hashed[0])  # free again once they finish
    finally:
        hasher.close()


async def test_logins_beyond_the_hashing_pool_answer_503_at_once(
    start_system: StartSystem,
) -> None:
    live = await start_system(bcrypt_rounds=13, password_hash_workers=1, password_hash_queue=0)
    async with httpx.AsyncClient(base_url=live.api, timeout=60) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/api/auth/login",
                    json={"username": f"nobody-{uuid.uuid4().hex}@x.io", "password": "guess"},
                )
                for _ in range(4)
            )
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert 503 in statuses and set(statuses) <= {401, 503}, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert_error(answer, 503, "Service Unavailable")
            assert answer.headers["retry-after"] == "1"


# -- login and register -------------------------------------------------------------------------


async def test_login_and_register_are_throttled_per_username_and_per_address(
    start_system: StartSystem,
) -> None:
    live = await start_system(
        rate_limit_loopback=True,
        auth_attempts_per_minute_per_username=3,
        auth_attempts_per_minute_per_address=8,
    )
    victim = await create_user(live)
    wrong = {"username": victim.username, "password": "not the password"}
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        guesses = [await http.post("/api/auth/login", json=wrong) for _ in range(3)]
        assert [guess.status_code for guess in guesses] == [401, 401, 401]
        # The fourth guess is refused before any hashing, even with the right password.
        assert_throttled(await http.post("/api/auth/login", json=wrong))
        right = {"username": victim.username, "password": victim.password}
        assert_throttled(await http.post("/api/auth/login", json=right))
        # Case does not make a new username.
        loud = {"username": victim.username.upper(), "password": victim.password}
        assert_throttled(await http.post("/api/auth/login", json=loud))

        # Other usernames from the same address: the address budget (8) is spent after 8.
        outcomes = []
        for _ in range(6):
            name = f"new-{uuid.uuid4().hex[:10]}@x.io"
            answer = await http.post(
                "/api/auth/register", json={"username": name, "password": "long enough pw"}
            )
            outcomes.append(answer.status_code)
        assert outcomes[:2] == [201, 201], outcomes  # 6 attempts so far + these 2 = 8
        assert all(status == 429 for status in outcomes[2:]), outcomes
        # Absurd input is still a 400, never a 500, and validation comes first.
        absurd = await http.post("/api/auth/login", json={"username": "x" * 100_000})
        assert absurd.status_code in (400, 413), absurd.text


async def test_loopback_is_exempt_from_address_limits_by_default(start_system: StartSystem) -> None:
    live = await start_system(
        auth_attempts_per_minute_per_address=2,
        rate_limit_per_address=NEVER_REFILLS,
        rate_limit_address_burst=2,
    )
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        for _ in range(6):
            name = f"bench-{uuid.uuid4().hex[:10]}@x.io"
            answer = await http.post(
                "/api/auth/register", json={"username": name, "password": "long enough pw"}
            )
            assert answer.status_code == 201, answer.text
        for _ in range(6):
            assert (await http.get("/api/events")).status_code == 200


# -- every other request ------------------------------------------------------------------------


async def test_requests_are_limited_per_user_on_every_path(start_system: StartSystem) -> None:
    live = await start_system(rate_limit_per_user=NEVER_REFILLS, rate_limit_user_burst=4)
    flooder = await create_user(live)
    bystander = await create_user(live)
    organizer = await create_user(live)
    event = await create_event(live, organizer, (50,))
    hold = order_body(event.id, event.categories[0].id)
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        for _ in range(2):
            reserved = await http.post(
                "/api/events/tickets/reserve", json=hold, headers=flooder.headers
            )
            assert reserved.status_code == 201, reserved.text
            assert (await http.get("/api/orders", headers=flooder.headers)).status_code == 200
        # Burst spent: the hot path and the FastAPI routes refuse alike.
        assert_throttled(
            await http.post("/api/events/tickets/reserve", json=hold, headers=flooder.headers)
        )
        assert_throttled(await http.get("/api/orders", headers=flooder.headers))
        assert_throttled(await http.get("/api/user", headers=flooder.headers))
        # The orders' fast path too, with and without a lock (the flooder holds two).
        assert_throttled(await http.post("/api/orders", json=hold, headers=flooder.headers))
        with_lock = {**hold, "lockId": reserved.json()["lockId"]}
        assert_throttled(
            await http.post("/api/orders/with-lock", json=with_lock, headers=flooder.headers)
        )
        # Someone else's identity is someone else's budget; public reads need no identity.
        assert (await http.get("/api/user", headers=bystander.headers)).status_code == 200
        assert (await http.get(f"/api/events/{event.id}/tickets")).status_code == 200
        # Nothing the refused requests asked for happened: two holds, no more, nothing sold.
        seats = (await http.get(f"/api/events/{event.id}/tickets")).json()[0]
        assert seats["availableSeats"] == 48
        assert (seats["totalSeats"], seats["reservedSeats"]) == (50, 2)  # none sold


async def test_requests_are_limited_per_address(start_system: StartSystem) -> None:
    live = await start_system(
        rate_limit_loopback=True, rate_limit_per_address=NEVER_REFILLS, rate_limit_address_burst=5
    )
    user = await create_user(live)
    async with httpx.AsyncClient(base_url=live.api, timeout=30) as http:
        for _ in range(3):
            assert (await http.get("/api/events")).status_code == 200
        assert (await http.get("/api/events/1/tickets")).status_code in (200, 404)
        assert (await http.get("/api/user", headers=user.headers)).status_code == 200
        for path in ["/api/events", "/api/events/1/tickets", "/api/health"]:
            assert_throttled(await http.get(path))
        refused = await http.post(
            "/api/events/tickets/reserve", json=order_body(1, 1), headers=user.headers
        )
        assert_throttled(refused)
