"""Initial schema: users, events, ticket categories, the orders ledger, category snapshots.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _stamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        _stamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("event_name", sa.String(255), nullable=False),
        sa.Column("event_category", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", sa.String(255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("created_by", sa.Integer(), nullable=False),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_events_created_by_users")
        ),
    )
    op.create_index(op.f("ix_events_event_date"), "events", ["event_date"])
    op.create_index(op.f("ix_events_event_category"), "events", ["event_category"])
    op.create_index(op.f("ix_events_created_by"), "events", ["created_by"])

    op.create_table(
        "ticket_categories",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("category_name", sa.String(100), nullable=False),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("total_seats", sa.Integer(), nullable=False),
        sa.Column("sold_seats", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_categories")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_ticket_categories_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_ticket_categories_price_not_negative")),
        sa.CheckConstraint(
            "total_seats >= 0", name=op.f("ck_ticket_categories_total_not_negative")
        ),
        sa.CheckConstraint("sold_seats >= 0", name=op.f("ck_ticket_categories_sold_not_negative")),
        sa.CheckConstraint(
            "sold_seats <= total_seats", name=op.f("ck_ticket_categories_sold_within_total")
        ),
    )
    op.create_index(op.f("ix_ticket_categories_event_id"), "ticket_categories", ["event_id"])

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
        sa.Column("total_price", sa.Numeric(10, 2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("event_name", sa.String(255), nullable=False),
        sa.Column("category_name", sa.String(100), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("lock_id", sa.String(128), nullable=True),
        sa.Column("request_key", sa.String(255), nullable=True),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_orders_user_id_users")),
        sa.UniqueConstraint("lock_id", name=op.f("uq_orders_lock_id")),
        sa.UniqueConstraint("request_key", name=op.f("uq_orders_request_key")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_orders_quantity_positive")),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'cancelled', 'completed')",
            name=op.f("ck_orders_status_known"),
        ),
    )
    op.create_index(op.f("ix_orders_user_id"), "orders", ["user_id"])
    op.create_index(op.f("ix_orders_event_id"), "orders", ["event_id"])
    op.create_index(op.f("ix_orders_category_id"), "orders", ["category_id"])
    op.create_index(
        op.f("ix_orders_pending"), "orders", ["id"], postgresql_where=sa.text("status = 'pending'")
    )

    op.create_table(
        "category_snapshots",
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        _stamp("saved_at"),
        sa.PrimaryKeyConstraint("category_id", name=op.f("pk_category_snapshots")),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["ticket_categories.id"],
            name=op.f("fk_category_snapshots_category_id_ticket_categories"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("category_snapshots")
    op.drop_table("orders")
    op.drop_table("ticket_categories")
    op.drop_table("events")
    op.drop_table("users")
