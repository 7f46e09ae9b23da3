"""The audit trail: who created, edited or deleted an event, changed its sales window or
cancelled one of its orders, one row per change, written in the change's own transaction.

Revision ID: 0004_audit
Revises: 0003 (the file 0003_fair_sales.py)
Create Date: 2026-11-28 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_audit"
# 0003_fair_sales.py names its revision "0003": the chain follows the id, not the file name.
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_event_id_id"), "audit_log", ["event_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_event_id_id"), table_name="audit_log")
    op.drop_table("audit_log")
