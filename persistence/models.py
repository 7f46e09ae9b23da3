"""The schema as SQLAlchemy Core tables: users, events, ticket categories, the orders ledger
and category snapshots. Migrations create it; repositories query it through these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB

# Constraint names are part of the contract with the migrations and with the error mapping.
SOLD_WITHIN_TOTAL = "ck_ticket_categories_sold_within_total"
ORDER_STATUSES = ("pending", "confirmed", "cancelled", "completed")
WINDOW_IN_ORDER = "sales_start_at IS NULL OR sales_end_at IS NULL OR sales_start_at < sales_end_at"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _timestamp(name: str) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


users = Table(
    "users",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(32), nullable=False),
    _timestamp("created_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("event_name", String(255), nullable=False),
    Column("event_category", String(100), nullable=False),
    Column("description", Text, nullable=True),
    Column("event_date", DateTime(timezone=True), nullable=False),
    Column("location", String(255), nullable=True),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    Column("sales_start_at", DateTime(timezone=True), nullable=True),
    Column("sales_end_at", DateTime(timezone=True), nullable=True),
    # The waiting room (migration 0005_waiting_room).
    Column("waiting_room_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("waiting_room_admit_per_second", Integer, nullable=True),
    Column("waiting_room_opens_at", DateTime(timezone=True), nullable=True),
    CheckConstraint(WINDOW_IN_ORDER, name="window_in_order"),
    CheckConstraint(
        "waiting_room_admit_per_second IS NULL OR waiting_room_admit_per_second > 0",
        name="admit_rate_positive",
    ),
    Index(None, "event_date"),
    Index(None, "event_category"),
    Index(None, "created_by"),
)

ticket_categories = Table(
    "ticket_categories",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column(
        "event_id",
        Integer,
        ForeignKey("events.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("category_name", String(100), nullable=False),
    Column("price", Numeric(10, 2), nullable=False),
    Column("total_seats", Integer, nullable=False),
    Column("sold_seats", Integer, nullable=False, server_default=text("0")),
    Column("description", Text, nullable=True),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("sales_start_at", DateTime(timezone=True), nullable=True),
    Column("sales_end_at", DateTime(timezone=True), nullable=True),
    Column("max_per_user", Integer, nullable=True),
    CheckConstraint(WINDOW_IN_ORDER, name="window_in_order"),
    CheckConstraint("max_per_user IS NULL OR max_per_user > 0", name="max_per_user_positive"),
    CheckConstraint("price >= 0", name="price_not_negative"),
    CheckConstraint("total_seats >= 0", name="total_not_negative"),
    CheckConstraint("sold_seats >= 0", name="sold_not_negative"),
    # The last line of defence against an oversell: the ledger refuses it whatever the actors do.
    CheckConstraint("sold_seats <= total_seats", name="sold_within_total"),
)

# Orders keep event and category names so the ledger reads well after catalogue edits; the
# category must exist when the order is written (an event with orders is never deleted).
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("event_id", Integer, nullable=False, index=True),
    # No cascade: a category with orders cannot be deleted, and nothing sells into one that was.
    Column("category_id", Integer, ForeignKey("ticket_categories.id"), nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
    Column("total_price", Numeric(10, 2), nullable=False),
    Column("status", String(16), nullable=False, server_default=text("'pending'")),
    Column("event_name", String(255), nullable=False),
    Column("category_name", String(100), nullable=False),
    Column("notes", Text, nullable=True),
    Column("lock_id", String(128), nullable=True, unique=True),
    Column("request_key", String(255), nullable=True, unique=True),
    # Set by the gateway running the payment step, so no other gateway runs it meanwhile.
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint(
        "status IN ('pending', 'confirmed', 'cancelled', 'completed')", name="status_known"
    ),
    Index("ix_orders_pending", "id", postgresql_where=text("status = 'pending'")),
)

category_snapshots = Table(
    "category_snapshots",
    metadata,
    Column(
        "category_id",
        Integer,
        ForeignKey("ticket_categories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("payload", JSONB, nullable=False),
    _timestamp("saved_at"),
)

# A category's waiting list (migration 0003): the identity is the place in line.
waitlist_entries = Table(
    "waitlist_entries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "category_id",
        Integer,
        ForeignKey("ticket_categories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    _timestamp("created_at"),
    UniqueConstraint("category_id", "user_id"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

# Every hold placed (quantity > 0) or dropped (quantity 0) since the last snapshot, in `seq`
# order: written with its batch before the batch is answered (invariant 4). One row per write,
# its entries as [[lockId, owner, quantity, expiresAt], ...].
hold_journal = Table(
    "hold_journal",
    metadata,
    Column("seq", BigInteger, Identity(), nullable=False),
    # No foreign key: its check is a trigger per row on the hottest write there is.
    Column("category_id", Integer, nullable=False),
    Column("entries", JSON, nullable=False),
    PrimaryKeyConstraint("category_id", "seq"),
)

# Who changed what (migration 0004): written in the same transaction as the change it records.
# No foreign key to events: the trail of a deleted event outlives it.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Integer, nullable=False),
    # The user who made the change; NULL when the system did (a declined payment).
    Column("actor_id", Integer, nullable=True),
    Column("action", String(64), nullable=False),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _timestamp("created_at"),
    Index(None, "event_id", "id"),
)

# An event's waiting room (migration 0005_waiting_room): one row per buyer, written before the
# join is acknowledged; `rank` is the place in the opening draw, `admitted_at` the admission.
queue_entries = Table(
    "queue_entries",
    metadata,
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("early", Boolean, nullable=False),
    Column("rank", Integer, nullable=True),
    _timestamp("joined_at"),
    Column("admitted_at", DateTime(timezone=True), nullable=True),
    Column("pass_expires_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("event_id", "user_id"),
)
