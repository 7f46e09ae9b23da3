"""Durability: the hold journal, orders tied to their category, claimable pending orders.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 00:00:00

- `hold_journal`: every hold placed or released, written with its batch before the batch is
  answered (one row per write); a snapshot covers (and truncates) what came before its
  `journalSeq`.
- `orders.category_id` references `ticket_categories` (no cascade): an order for a category
  that no longer exists is refused, and a category with orders cannot be deleted under one.
  NOT VALID: rows written before this revision are not re-checked, new ones are.
- `orders.claimed_at`: a gateway processing a pending order claims it for a while, so two live
  gateways never run the payment step for the same order.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSON

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hold_journal",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        # One row per journal write, its entries as [[lockId, owner, quantity, expiresAt]]:
        # a row per hold cost a third more CPU per hold (benchmarks/journal_cost.py).
        sa.Column("entries", JSON(), nullable=False),
        # No foreign key: its check is a trigger per row on the hottest write there is; the
        # rows of a deleted event's categories are deleted with it (catalog.delete_event).
        sa.PrimaryKeyConstraint("category_id", "seq", name=op.f("pk_hold_journal")),
    )
    op.execute(
        "ALTER TABLE orders ADD CONSTRAINT fk_orders_category_id_ticket_categories"
        " FOREIGN KEY (category_id) REFERENCES ticket_categories (id) NOT VALID"
    )
    op.add_column("orders", sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "claimed_at")
    op.drop_constraint("fk_orders_category_id_ticket_categories", "orders", type_="foreignkey")
    op.drop_table("hold_journal")
