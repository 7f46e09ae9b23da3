"""What an event's organizer alone may see: its audit trail, the export of its orders and its
live sales dashboard. Every adapter (REST routes, the socket) asks here; none decides itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.messages import Availability
from actors.refusals import EventNotFound, NotTheOrganizer
from persistence import audit, exports
from persistence.audit import AuditEntry
from persistence.exports import ExportRow
from persistence.records import EventRecord
from sales.directory import Directory
from sales.identity import Principal
from sales.service import EVENT_NOT_FOUND, Sales

NOT_THE_ORGANIZER = "Only the organizer who created this event can see this"
RATE_WINDOW_SECONDS = 60  # a dashboard's "orders per minute"
EXPORT_PAGE = 500  # rows per query: a page in memory at a time, whatever the event's size


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None  # pass as `before` for the next (older) page; None: no more


@dataclass(frozen=True, slots=True)
class SalesView:
    """An event and its categories' live numbers, as its dashboard starts from."""

    event: EventRecord
    live: dict[int, Availability]
    # (epoch second, orders completed in it) over the last minute
    completed: list[tuple[int, int]] = field(default_factory=list)


class Organizing:
    def __init__(self, db: AsyncEngine, directory: Directory, sales: Sales) -> None:
        self._db = db
        self._directory = directory
        self._sales = sales

    async def organized_event(self, caller: Principal, event_id: int) -> EventRecord:
        """The event, if the caller is the organizer who created it; a refusal otherwise.

        Another organizer and a buyer get the same 403: whether the event exists is public
        (`GET /api/events/{id}`), what it sold is not.
        """
        event = await self._directory.event(event_id)
        if event is None:
            raise EventNotFound(EVENT_NOT_FOUND)
        if not caller.is_organizer or event.created_by != caller.user_id:
            raise NotTheOrganizer(NOT_THE_ORGANIZER)
        return event

    async def audit_trail(
        self, caller: Principal, event_id: int, *, limit: int, before_id: int | None
    ) -> AuditPage:
        """Newest first. A deleted event's trail stays readable by nobody through here (its
        row is gone, so nobody can be shown to be its organizer); it remains in the table."""
        await self.organized_event(caller, event_id)
        async with self._db.connect() as conn:
            entries = await audit.trail(conn, event_id, limit=limit + 1, before_id=before_id)
        more = len(entries) > limit
        entries = entries[:limit]
        return AuditPage(entries, entries[-1].id if more else None)

    async def export_orders(self, caller: Principal, event_id: int) -> AsyncIterator[ExportRow]:
        """Checks access and reads the first page now, then yields the event's orders page by
        page (one connection per page, so a slow reader never holds one between pages)."""
        await self.organized_event(caller, event_id)
        # The first page now: a database that is down answers 503, not a broken download.
        async with self._db.connect() as conn:
            first = await exports.order_rows(conn, event_id, after_id=0, limit=EXPORT_PAGE)
        return self._pages(event_id, first)

    async def _pages(self, event_id: int, rows: list[ExportRow]) -> AsyncIterator[ExportRow]:
        while True:
            for row in rows:
                yield row
            if len(rows) < EXPORT_PAGE:
                return
            async with self._db.connect() as conn:
                rows = await exports.order_rows(
                    conn, event_id, after_id=rows[-1].order_id, limit=EXPORT_PAGE
                )

    async def sales_view(self, caller: Principal, event_id: int) -> SalesView:
        event = await self.organized_event(caller, event_id)
        live = await self._sales.availability([category.id for category in event.categories])
        async with self._db.connect() as conn:
            completed = await exports.completed_per_second(
                conn, event_id, within_seconds=RATE_WINDOW_SECONDS
            )
        return SalesView(event, live, completed)

    async def event(self, event_id: int) -> EventRecord | None:
        return await self._directory.event(event_id)
