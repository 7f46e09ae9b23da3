"""Engine construction, schema migration and liveness for the PostgreSQL ledger.

One async engine per process (psycopg 3); Alembic runs in a thread under an advisory lock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit key works; every migrator of every process must use the same one.
MIGRATION_LOCK_KEY = 0x626F786F6666  # "boxoff"


def driver_url(url: str) -> str:
    """Rewrite `postgresql://` (or `postgres://`) to the psycopg 3 driver SQLAlchemy needs."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {make_url(url).render_as_string(hide_password=True)}")


# Connections a gateway's engine may open beyond its pool in a burst (closed when returned).
GATEWAY_OVERFLOW = 2


def create_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = GATEWAY_OVERFLOW
) -> AsyncEngine:
    """An async engine on psycopg 3; no pre-ping, so the hot path pays no extra round trip.
    At most `pool_size + max_overflow` connections (the connection budget, docs/deployment.md)."""
    return create_async_engine(
        driver_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def alembic_config() -> Config:
    from alembic.config import Config  # see migrate_sync

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def migrate_sync(url: str) -> None:
    """The blocking form of `migrate`, for scripts and fixtures that have no event loop."""
    engine = create_sync_engine(driver_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            # Session-level lock: a second migrator waits here, then finds the schema at head.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                # Imported here: every category actor imports this module, and Alembic added a
                # tenth of a second to each actor's start without ever running there.
                from alembic import command

                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                connection.rollback()
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
    finally:
        engine.dispose()


async def migrate(url: str) -> None:
    """Bring the schema to the newest revision; safe to call from many processes at once."""
    await asyncio.to_thread(migrate_sync, url)


async def ping(db: AsyncEngine) -> bool:
    """True when the database answers a trivial query."""
    try:
        async with db.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
