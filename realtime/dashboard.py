"""The organizer's live sales dashboard over Socket.IO: `join-sales-dashboard {eventId}`, then
`sales-dashboard` updates pushed from what the change feed already brings (availability and
`order-completed`), at most a few per second per event.

Who may watch is decided in `sales.organizer`; anyone else gets the `error` event and
nothing more. Each gateway process keeps a board only for events one of its sockets watches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import socketio

from actors.messages import Availability, CatalogChanged, CategoryChanged, FeedItem, UserNotice
from actors.refusals import Refusal
from realtime.payloads import NAMESPACE, BadPayload, EventRoomRequest, iso, parse
from sales.identity import Principal
from sales.organizer import RATE_WINDOW_SECONDS, Organizing, SalesView

if TYPE_CHECKING:
    from realtime.server import Handler

log = logging.getLogger(__name__)

UPDATE_INTERVAL_SECONDS = 0.25  # at most four updates a second per watched event


def dashboard_room(event_id: int) -> str:
    return f"sales-dashboard:{event_id}"


class Board:
    """One watched event as this process last heard of it."""

    def __init__(self, view: SalesView, clock: Callable[[], float]) -> None:
        self.event = view.event
        self.live: dict[int, Availability] = dict(view.live)
        self._clock = clock
        # (epoch second, orders completed in it), oldest first, over the rate window
        self.completed: deque[list[int]] = deque(
            [second, count] for second, count in sorted(view.completed)
        )
        self.last_sent = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def apply(self, availability: Availability) -> bool:
        known = self.live.get(availability.category_id)
        if known is not None and availability.stamp < known.stamp and known.epoch:
            return False  # an older state arriving late
        self.live[availability.category_id] = availability
        return True

    def order_completed(self) -> None:
        second = int(self._clock())
        if self.completed and self.completed[-1][0] == second:
            self.completed[-1][1] += 1
        else:
            self.completed.append([second, 1])

    def orders_per_minute(self) -> int:
        cutoff = int(self._clock()) - RATE_WINDOW_SECONDS
        while self.completed and self.completed[0][0] <= cutoff:
            self.completed.popleft()
        return sum(count for _, count in self.completed)

    def payload(self) -> dict[str, Any]:
        categories: list[dict[str, Any]] = []
        revenue = Decimal(0)
        totals = {"total": 0, "sold": 0, "held": 0, "available": 0, "waiting": 0}
        for category in self.event.categories:
            seats = self.live.get(category.id)
            sold = seats.sold if seats is not None else 0
            held = seats.held if seats is not None else 0
            total = seats.total if seats is not None else category.total_seats
            waiting = len(seats.waiting) if seats is not None else 0
            row = {
                "total": total,
                "sold": sold,
                "held": held,
                "available": max(total - sold - held, 0),
                "waiting": waiting,
            }
            for key, value in row.items():
                totals[key] += value
            revenue += category.price * sold
            categories.append(
                {
                    "categoryId": category.id,
                    "categoryName": category.category_name,
                    "price": f"{category.price:.2f}",
                    **row,
                    "revenue": f"{category.price * sold:.2f}",
                }
            )
        return {
            "eventId": self.event.id,
            "eventName": self.event.event_name,
            "at": iso(self._clock()),
            "categories": categories,
            "totals": {
                **totals,
                "revenue": f"{revenue:.2f}",
                "ordersPerMinute": self.orders_per_minute(),
            },
        }


class SalesDashboard:
    """The socket handlers and the feed listener of the dashboard, for one gateway process."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        organizing: Organizing,
        *,
        interval: float = UPDATE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sio = sio
        self._organizing = organizing
        self._interval = interval
        self._clock = clock
        self._boards: dict[int, Board] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def events(self) -> dict[str, Handler]:
        return {
            "join-sales-dashboard": self.join,
            "leave-sales-dashboard": self.leave,
        }

    # -- socket events ---------------------------------------------------------------------

    async def join(self, sid: str, who: Principal, data: Any) -> dict[str, Any] | None:
        try:
            request = parse(EventRoomRequest, data)
            view = await self._organizing.sales_view(who, request.event_id)
        except (BadPayload, Refusal) as refused:
            await self._sio.emit("error", {"message": refused.message}, to=sid, namespace=NAMESPACE)
            return None
        event_id = view.event.id
        board = self._boards.get(event_id)
        if board is None:
            board = self._boards[event_id] = Board(view, self._clock)
        await self._sio.enter_room(sid, dashboard_room(event_id), namespace=NAMESPACE)
        payload = board.payload()
        await self._sio.emit("sales-dashboard", payload, to=sid, namespace=NAMESPACE)
        return payload

    async def leave(self, sid: str, who: Principal, data: Any) -> dict[str, Any] | None:
        try:
            request = parse(EventRoomRequest, data)
        except BadPayload as refused:
            await self._sio.emit("error", {"message": refused.message}, to=sid, namespace=NAMESPACE)
            return None
        await self._sio.leave_room(sid, dashboard_room(request.event_id), namespace=NAMESPACE)
        self._forget_if_unwatched(request.event_id)
        return {"success": True, "eventId": request.event_id}

    # -- the feed ----------------------------------------------------------------------------

    def __call__(self, item: FeedItem) -> None:
        if not self._boards:
            return  # nobody watches anything here: the common case costs one check
        if isinstance(item, CategoryChanged):
            availability = item.availability
            board = self._boards.get(availability.event_id)
            if board is not None and board.apply(availability):
                self._soon(board)
        elif isinstance(item, UserNotice) and item.event == "order-completed":
            board = self._boards.get(item.payload.get("eventId", 0))
            if board is not None:
                board.order_completed()
                self._soon(board)
        elif isinstance(item, CatalogChanged) and item.event_id in self._boards:
            self._spawn(self._reload(item.event_id))

    async def _reload(self, event_id: int) -> None:
        event = await self._organizing.event(event_id)
        board = self._boards.get(event_id)
        if board is None:
            return
        if event is None:
            self._boards.pop(event_id, None)  # deleted: nothing more to show
            return
        board.event = event
        self._soon(board)

    def _soon(self, board: Board) -> None:
        """One update per interval at most: the first change schedules it, the ones until it
        leaves ride along."""
        if board.timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = max(board.last_sent + self._interval - loop.time(), 0.0)
        board.timer = loop.call_later(wait, self._send, board)

    def _send(self, board: Board) -> None:
        board.timer = None
        event_id = board.event.id
        if self._forget_if_unwatched(event_id):
            return
        board.last_sent = asyncio.get_running_loop().time()
        self._spawn(
            self._sio.emit(
                "sales-dashboard",
                board.payload(),
                room=dashboard_room(event_id),
                namespace=NAMESPACE,
            )
        )

    def _forget_if_unwatched(self, event_id: int) -> bool:
        room = dashboard_room(event_id)
        if any(True for _ in self._sio.manager.get_participants(NAMESPACE, room)):
            return False
        board = self._boards.pop(event_id, None)
        if board is not None and board.timer is not None:
            board.timer.cancel()
        return True

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def watched(self) -> int:
        return len(self._boards)
