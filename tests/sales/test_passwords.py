"""PasswordHasher: a password matches only its own hash, and a stored value that is no bcrypt
hash matches nothing. (Found by `make mutate`: answering True for a malformed hash survived.)"""

from __future__ import annotations

import pytest

from sales.identity import PasswordHasher


async def test_a_password_matches_only_its_own_hash() -> None:
    hasher = PasswordHasher(rounds=4)
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$2b$04$")
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("correct horsE", hashed)


@pytest.mark.parametrize("stored", ["", "not-a-bcrypt-hash", "$2b$04$short"])
async def test_a_stored_value_that_is_no_hash_matches_nothing(stored: str) -> None:
    assert not await PasswordHasher(rounds=4).verify("anything", stored)
