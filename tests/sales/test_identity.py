"""TokenService on its own: a remembered token is still refused once its `exp` has passed,
and remembering never lets a different (tampered) token through."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest

from sales.identity import InvalidToken, Role, TokenService

SECRET = "unit-test-secret-" + "y" * 32


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_remembered_token_expires_on_time() -> None:
    issued_at = float(int(time.time()))
    clock = FakeClock(issued_at)
    tokens = TokenService(SECRET, timedelta(seconds=60), clock=clock)
    token = tokens.issue(7, Role.ORGANIZER, now=issued_at)
    assert tokens.verify(token).user_id == 7
    clock.now = issued_at + 59
    assert tokens.verify(token).role is Role.ORGANIZER  # served from memory
    clock.now = issued_at + 60
    with pytest.raises(InvalidToken):
        tokens.verify(token)
    with pytest.raises(InvalidToken):
        tokens.verify(token)  # and it stays refused


def test_remembering_never_admits_a_tampered_token() -> None:
    tokens = TokenService(SECRET, timedelta(hours=1))
    good = tokens.issue(7, Role.ASSISTANT)
    assert tokens.verify(good).role is Role.ASSISTANT
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(
        {**claims, "role": "organizer"},
        "another key that is long enough for HS256",
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        tokens.verify(forged)
    header, payload, signature = good.split(".")
    with pytest.raises(InvalidToken):
        tokens.verify(f"{header}.{payload}.{signature[:-2]}AA")


def test_memory_is_bounded() -> None:
    tokens = TokenService(SECRET, timedelta(hours=1), remembered=3)
    for user_id in range(1, 10):
        tokens.verify(tokens.issue(user_id, Role.ASSISTANT))
    assert len(tokens._verified) == 3
