"""The virtual waiting room (issue 13): its settings on each event, and the durable queue of
each event (one row per buyer: arrival order, place in the draw, admission and its pass).

Revision ID: 0005_waiting_room
Revises: 0004_audit
Create Date: 2026-11-28 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_waiting_room"
down_revision: str | None = "0004_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("waiting_room_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("events", sa.Column("waiting_room_admit_per_second", sa.Integer(), nullable=True))
    op.add_column(
        "events", sa.Column("waiting_room_opens_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_events_admit_rate_positive"),
        "events",
        "waiting_room_admit_per_second IS NULL OR waiting_room_admit_per_second > 0",
    )
    op.create_table(
        "queue_entries",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        # Arrival order: later arrivals are admitted in it.
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        # Joined before the opening: ordered by the draw (rank), not by arrival.
        sa.Column("early", sa.Boolean(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column(
            "joined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pass_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "user_id", name=op.f("pk_queue_entries")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_queue_entries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_queue_entries_user_id_users")
        ),
    )


def downgrade() -> None:
    op.drop_table("queue_entries")
    op.drop_constraint("ck_events_admit_rate_positive", "events")
    for column in ("opens_at", "admit_per_second", "enabled"):
        op.drop_column("events", f"waiting_room_{column}")
