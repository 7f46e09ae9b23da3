"""Lock ids: deterministic from the request that made them, and naming their category.

A retried request produces the same id, so a replay can never create a second hold or order;
the category in the id lets any gateway route a lock to its actor without asking anyone.
Identity is never read from an id: the actor checks the owner of the hold itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets

_LOCK = re.compile(r"^(?:lock|sale)_(\d{1,18})_\d{1,18}_[0-9a-f]{8,32}$")


def new_request_id() -> str:
    return secrets.token_hex(8)


def request_id_from_key(key: str) -> str:
    """A stable request id for a client-supplied idempotency key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def hold_lock_id(category_id: int, owner: int, request_id: str) -> str:
    return f"lock_{category_id}_{owner}_{request_id}"


def sale_lock_id(category_id: int, owner: int, request_id: str) -> str:
    return f"sale_{category_id}_{owner}_{request_id}"


def category_of_lock(lock_id: str) -> int | None:
    match = _LOCK.match(lock_id)
    return int(match.group(1)) if match else None
