"""Migrations: idempotent, safe when several processes migrate at once, and equal to the models."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.database import migrate, ping
from persistence.models import SOLD_WITHIN_TOTAL, metadata


async def test_migrate_twice_is_a_no_op(database_url: str, db: AsyncEngine) -> None:
    await migrate(database_url)
    await migrate(database_url)
    async with db.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert versions == [("0002",)]


async def test_concurrent_migrators_serialise(database_url: str, db: AsyncEngine) -> None:
    await asyncio.gather(*(migrate(database_url) for _ in range(4)))
    async with db.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert versions == [("0002",)]


async def test_migrated_schema_matches_the_models(db: AsyncEngine) -> None:
    def differences(sync_conn: Connection) -> list[object]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with db.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_ping(db: AsyncEngine) -> None:
    assert await ping(db)


async def test_constraint_names_are_the_models_names(db: AsyncEngine) -> None:
    """Alembic's comparison ignores CHECK constraints; the error mapping relies on their names."""
    expected = {
        str(constraint.name)
        for table in metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
                " WHERE n.nspname = current_schema() AND c.contype = 'c'"
            )
        )
        actual: set[str] = set(rows.scalars())
    assert SOLD_WITHIN_TOTAL in expected
    assert expected == actual
