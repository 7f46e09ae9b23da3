"""Which failures mean a dependency is down (PostgreSQL, the Ray engine) rather than a bug:
the one test every adapter applies before answering 503 (REST) or its socket equivalent.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from actors.refusals import LedgerUnavailable
from actors.remote import Unavailable

DATABASE = "database"
ENGINE = "engine"


def outage_of(exc: BaseException) -> str | None:
    """`DATABASE` or `ENGINE` when `exc` says that dependency is not answering, else None.

    A DBAPIError that is neither operational nor a dropped connection is a query the database
    refused (a constraint, a syntax error): our bug, not an outage.
    """
    if isinstance(exc, Unavailable):
        return ENGINE
    if isinstance(exc, PoolTimeout | LedgerUnavailable):
        return DATABASE
    if isinstance(exc, DBAPIError) and (
        isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated
    ):
        return DATABASE
    return None
