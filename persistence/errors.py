"""Typed refusals raised by the persistence layer when the database says no.

Callers catch these instead of matching driver messages or constraint names.
"""

from __future__ import annotations

from collections.abc import Iterable


class PersistenceError(Exception):
    """Base class for refusals that come from a database constraint."""


class UsernameTaken(PersistenceError):
    def __init__(self, username: str) -> None:
        super().__init__(f"username already taken: {username!r}")
        self.username = username


class OversellRefused(PersistenceError):
    """The ledger refused orders that would sell more seats than a category has.

    Raised from inside the caller's transaction, which is aborted and must be rolled back.
    """

    def __init__(self, category_ids: Iterable[int]) -> None:
        self.category_ids = tuple(sorted(set(category_ids)))
        super().__init__(f"oversell refused by the database for categories {self.category_ids}")


class EventHasOrders(PersistenceError):
    """An event cannot be deleted: orders name its categories (the ledger keeps them)."""

    def __init__(self, event_id: int) -> None:
        super().__init__(f"event {event_id} has orders")
        self.event_id = event_id


class CategoryGone(PersistenceError):
    """Orders named a category that no longer exists; raised inside the caller's transaction."""

    def __init__(self, category_ids: Iterable[int]) -> None:
        self.category_ids = tuple(sorted(set(category_ids)))
        super().__init__(f"no such categories: {self.category_ids}")
