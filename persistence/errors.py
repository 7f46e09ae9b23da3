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
