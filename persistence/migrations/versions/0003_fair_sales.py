"""Fair on-sales: sales windows on events and categories, a per-buyer limit per category, and
the durable waiting list of each category.

Revision ID: 0003
Revises: 0001 (re-chained after 0002 when merged)
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _window(table: str) -> None:
    op.add_column(table, sa.Column("sales_start_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(table, sa.Column("sales_end_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f(f"ck_{table}_window_in_order"),
        table,
        "sales_start_at IS NULL OR sales_end_at IS NULL OR sales_start_at < sales_end_at",
    )


def upgrade() -> None:
    _window("events")
    _window("ticket_categories")
    op.add_column("ticket_categories", sa.Column("max_per_user", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_ticket_categories_max_per_user_positive"),
        "ticket_categories",
        "max_per_user IS NULL OR max_per_user > 0",
    )
    op.create_table(
        "waitlist_entries",
        # The identity is the place in line: first in, first served.
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["ticket_categories.id"],
            name=op.f("fk_waitlist_entries_category_id_ticket_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_waitlist_entries_user_id_users")
        ),
        sa.UniqueConstraint(
            "category_id", "user_id", name=op.f("uq_waitlist_entries_category_id_user_id")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_waitlist_entries_quantity_positive")),
    )


def downgrade() -> None:
    op.drop_table("waitlist_entries")
    op.drop_constraint("ck_ticket_categories_max_per_user_positive", "ticket_categories")
    op.drop_column("ticket_categories", "max_per_user")
    for table in ("ticket_categories", "events"):
        op.drop_constraint(f"ck_{table}_window_in_order", table)
        op.drop_column(table, "sales_end_at")
        op.drop_column(table, "sales_start_at")
