"""The audit trail: one row per change to an event or its orders, and who made it.

`record` runs in the caller's transaction, so a change and its row commit (or not) together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.catalog import waiting_room_columns
from persistence.models import audit_log
from persistence.records import EventRecord, OrderRecord


class AuditAction(StrEnum):
    EVENT_CREATED = "event.created"
    EVENT_UPDATED = "event.updated"
    EVENT_DELETED = "event.deleted"
    SALES_WINDOW_CHANGED = "event.sales_window_changed"
    ORDER_CANCELLED = "order.cancelled"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    event_id: int
    actor_id: int | None  # None: the system (a declined payment)
    action: AuditAction
    details: dict[str, Any]
    created_at: datetime


def plain(value: object) -> object:
    """A value as JSON keeps it: datetimes in ISO 8601, decimals as strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """`{field: {"from": old, "to": new}}` for each field whose value differs."""
    return {
        name: {"from": plain(before.get(name)), "to": plain(value)}
        for name, value in after.items()
        if before.get(name) != value
    }


async def record(
    conn: AsyncConnection,
    *,
    event_id: int,
    actor_id: int | None,
    action: AuditAction,
    details: Mapping[str, Any] | None = None,
) -> None:
    await conn.execute(
        audit_log.insert().values(
            event_id=event_id,
            actor_id=actor_id,
            action=action.value,
            details={key: plain(value) for key, value in (details or {}).items()},
        )
    )


WINDOW_FIELDS = ("sales_start_at", "sales_end_at")


async def event_created(conn: AsyncConnection, event: EventRecord, by: int) -> None:
    """The new event with its categories' sales rules (limits and windows are set here)."""
    await record(
        conn,
        event_id=event.id,
        actor_id=by,
        action=AuditAction.EVENT_CREATED,
        details={
            "eventName": event.event_name,
            "salesStartAt": plain(event.sales_start_at),
            "salesEndAt": plain(event.sales_end_at),
            "categories": [
                {
                    "id": category.id,
                    "categoryName": category.category_name,
                    "price": plain(category.price),
                    "totalSeats": category.total_seats,
                    "maxPerUser": category.max_per_user,
                    "salesStartAt": plain(category.sales_start_at),
                    "salesEndAt": plain(category.sales_end_at),
                }
                for category in event.categories
            ],
        },
    )


def vars_of(event: EventRecord) -> dict[str, Any]:
    """The record's fields by name (a slotted dataclass has no `__dict__`)."""
    return {name: getattr(event, name) for name in event.__dataclass_fields__}


async def event_updated(
    conn: AsyncConnection, before: EventRecord, changes: Mapping[str, Any], by: int
) -> None:
    """One row for a changed sales window, one for the other fields; none if nothing moved."""
    stored = {**vars_of(before), **waiting_room_columns(before.waiting_room)}
    old = {name: stored[name] for name in changes}
    moved = changed_fields(old, changes)
    window = {name: moved.pop(name) for name in WINDOW_FIELDS if name in moved}
    if window:
        await record(
            conn,
            event_id=before.id,
            actor_id=by,
            action=AuditAction.SALES_WINDOW_CHANGED,
            details=window,
        )
    if moved:
        await record(
            conn, event_id=before.id, actor_id=by, action=AuditAction.EVENT_UPDATED, details=moved
        )


async def event_deleted(conn: AsyncConnection, event: EventRecord, by: int) -> None:
    await record(
        conn,
        event_id=event.id,
        actor_id=by,
        action=AuditAction.EVENT_DELETED,
        details={"eventName": event.event_name},
    )


async def order_cancelled(conn: AsyncConnection, order: OrderRecord, by: int | None) -> None:
    await record(
        conn,
        event_id=order.event_id,
        actor_id=by,
        action=AuditAction.ORDER_CANCELLED,
        details={
            "orderId": order.id,
            "buyerId": order.user_id,
            "categoryId": order.category_id,
            "quantity": order.quantity,
            "totalPrice": plain(order.total_price),
        },
    )


async def trail(
    conn: AsyncConnection, event_id: int, *, limit: int, before_id: int | None = None
) -> list[AuditEntry]:
    """The event's entries, newest first; `before_id` pages on from the last one seen."""
    statement = (
        select(audit_log)
        .where(audit_log.c.event_id == event_id)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        statement = statement.where(audit_log.c.id < before_id)
    return [
        AuditEntry(
            id=row.id,
            event_id=row.event_id,
            actor_id=row.actor_id,
            action=AuditAction(row.action),
            details=dict(row.details),
            created_at=row.created_at,
        )
        for row in await conn.execute(statement)
    ]
