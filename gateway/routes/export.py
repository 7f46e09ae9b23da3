"""`GET /api/orders/event/{id}/export?format=csv`: an event's orders for its organizer, one
row per order, streamed page by page (never the whole list in memory)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from gateway.deps import Caller, EventId
from gateway.limits import KeyedLimiter, too_many
from gateway.routes.audit import OrganizingDep
from persistence.exports import ExportRow

router = APIRouter(prefix="/orders", tags=["organizer"])

COLUMNS = (
    "orderId",
    "createdAt",
    "status",
    "buyerId",
    "buyer",
    "categoryId",
    "category",
    "quantity",
    "unitPrice",
    "totalPrice",
    "notes",
)
# A spreadsheet runs a cell that starts with one of these as a formula: a buyer's note must
# never become one in the organizer's spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 200
# Each export reads all of an event's orders: a burst of 3 per user, then one every 2 s.
EXPORTS_PER_SECOND = 0.5
EXPORT_BURST = 3
EXPORT_LIMIT_KEYS = 10_000


def defused(text: str | None) -> str:
    if not text:
        return ""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_line(row: ExportRow) -> list[str | int]:
    return [
        row.order_id,
        row.created_at.isoformat(),
        row.status,
        row.buyer_id,
        defused(row.buyer),
        row.category_id,
        defused(row.category_name),
        row.quantity,
        str(row.unit_price),
        str(row.total_price),
        defused(row.notes),
    ]


async def csv_chunks(rows: AsyncIterator[ExportRow]) -> AsyncIterator[str]:
    """The header, then the rows in chunks; the csv module does the quoting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    count = 0
    async for row in rows:
        writer.writerow(csv_line(row))
        count += 1
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_limiter(request: Request) -> KeyedLimiter:
    """This app's limiter of exports per user, made on first use."""
    state = request.app.state
    limiter: KeyedLimiter | None = getattr(state, "export_limiter", None)
    if limiter is None:
        limiter = state.export_limiter = KeyedLimiter(
            EXPORTS_PER_SECOND, EXPORT_BURST, EXPORT_LIMIT_KEYS
        )
    return limiter


@router.get(
    "/event/{event_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per order, oldest first"},
        403: {"description": "Not the organizer who created the event"},
        429: {"description": "Too many exports by this user (a burst of 3, then one every 2 s)"},
    },
)
async def export_orders(
    request: Request,
    event_id: EventId,
    caller: Caller,
    organizing: OrganizingDep,
    format: Annotated[Literal["csv"], Query(description="Only `csv` for now")] = "csv",
) -> StreamingResponse:
    wait = export_limiter(request).retry_after(caller.user_id)
    if wait:
        raise too_many(wait, "Too many exports; try again shortly")
    rows = await organizing.export_orders(caller, event_id)
    return StreamingResponse(
        csv_chunks(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="event-{event_id}-orders.csv"',
            "Cache-Control": "no-store",
        },
    )
