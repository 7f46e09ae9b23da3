"""The JWT check's edges that a live system never reaches: a subject that is no user id, each
required claim missing, the claims a token is issued with, and which tokens are remembered.

(Found by `make mutate`: these mutants of TokenService survived the suite.)
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import jwt
import pytest

from sales.identity import InvalidToken, Role, TokenService

SECRET = "unit-test-secret-" + "z" * 32
LIFETIME = timedelta(minutes=10)


def _signed(**claims: Any) -> str:
    now = int(time.time())
    full = {"sub": "7", "role": "assistant", "iat": now, "exp": now + 600, **claims}
    return jwt.encode({k: v for k, v in full.items() if v is not None}, SECRET, "HS256")


@pytest.mark.parametrize("subject", ["0", "-3"])
def test_a_subject_that_is_no_user_id_is_refused(subject: str) -> None:
    with pytest.raises(InvalidToken, match="bad subject"):
        TokenService(SECRET, LIFETIME).verify(_signed(sub=subject))


def test_subject_one_is_a_user() -> None:
    assert TokenService(SECRET, LIFETIME).verify(_signed(sub="1")).user_id == 1


@pytest.mark.parametrize("claim", ["sub", "role", "iat", "exp"])
def test_each_required_claim_must_be_there(claim: str) -> None:
    tokens = TokenService(SECRET, LIFETIME)
    assert tokens.verify(_signed()).user_id == 7
    with pytest.raises(InvalidToken):
        tokens.verify(_signed(**{claim: None}))


def test_a_token_carries_who_and_when() -> None:
    tokens = TokenService(SECRET, LIFETIME)
    issued = 1_900_000_000.75
    claims = jwt.decode(
        tokens.issue(42, Role.ORGANIZER, now=issued),
        SECRET,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {"sub": "42", "role": "organizer", "iat": 1_900_000_000, "exp": 1_900_000_600}


def test_the_most_recent_tokens_are_the_ones_remembered() -> None:
    tokens = TokenService(SECRET, LIFETIME, remembered=3)
    issued = [tokens.issue(user_id, Role.ASSISTANT) for user_id in range(1, 10)]
    for token in issued:
        tokens.verify(token)
    assert list(tokens._verified) == issued[-3:]
    tokens.verify(issued[-3])  # a remembered one is served from memory, not decoded again
    assert list(tokens._verified) == issued[-3:]


def test_no_secret_no_service() -> None:
    with pytest.raises(ValueError, match="secret"):
        TokenService("", LIFETIME)
