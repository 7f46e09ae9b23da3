"""Alembic environment: runs migrations on the connection `persistence.database.migrate` opens.

That connection already holds the advisory lock which serialises concurrent migrators.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from persistence.models import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through persistence.database.migrate(url)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
