"""The waiting room over Socket.IO: `join-queue`, a `queue-status` to every queued socket of
this process at least once a second, `queue-admitted` with the pass the moment the queue
admits a buyer (to all their sockets, on every gateway: the admission comes on the change
feed, as waiting-list offers do), and `queue-closed` at sell-out.

The socket payloads of the waiting room are shaped here, in the guide's camelCase.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import socketio

from actors.queue import QueueAdmitted, QueueClosed
from actors.refusals import Refusal
from realtime.payloads import NAMESPACE, BadPayload, EventRoomRequest, failure, iso, parse

if TYPE_CHECKING:
    from realtime.server import SocketRooms
    from sales.admission import QueueStatus, WaitingRooms
    from sales.identity import Principal

log = logging.getLogger(__name__)

# Twice a second: each queued socket hears its place at least once a second even when a
# round of reads is slow.
STATUS_INTERVAL_SECONDS = 0.5
CLOSED_MESSAGE = "Sold out: join a category's waiting list (join-waitlist) for seats coming back"


def queue_room(event_id: int, user_id: int) -> str:
    return f"queue:{event_id}:{user_id}"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def queue_status(status: QueueStatus) -> dict[str, Any]:
    return {
        "eventId": status.event_id,
        "position": status.position,
        "ahead": status.ahead,
        "etaSeconds": status.eta_seconds,
        "admitted": status.admitted,
        "waiting": status.waiting,
        "opensAt": iso(status.opens_at),
        "closed": status.closed,
    }


def queue_admitted(event_id: int, admission_pass: str, expires_at: float) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "admitted": True,
        "admissionPass": admission_pass,
        "passExpiresAt": iso(expires_at),
    }


def queue_closed(event_id: int) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "closed": True,
        "message": CLOSED_MESSAGE,
        # Where the waiting list of each category is (REST; `join-waitlist` on the socket).
        "waitlist": f"/api/events/{event_id}/categories/{{categoryId}}/waitlist",
    }


class QueueSockets:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        rooms: WaitingRooms,
        sockets: SocketRooms,
        interval: float = STATUS_INTERVAL_SECONDS,
    ) -> None:
        self._sio = sio
        self._rooms = rooms
        self._sockets = sockets
        self._interval = interval
        # event -> buyers with a queued socket on this process, still waiting
        self._waiting: dict[int, set[int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pusher: asyncio.Task[None] | None = None

    async def join_queue(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        try:
            request = parse(EventRoomRequest, data)
            status = await self._rooms.join(who, request.event_id)
        except (BadPayload, Refusal) as exc:
            reply = failure(exc.message)
            await self._emit_to(sid, "join-queue-response", reply)
            return reply
        event_id = status.event_id
        await self._sio.enter_room(sid, queue_room(event_id, who.user_id), namespace=NAMESPACE)
        reply = {"success": True, "message": "Joined the queue"} | queue_status(status)
        await self._emit_to(sid, "join-queue-response", reply)
        if status.admitted and status.admission_pass and status.pass_expires_at:
            payload = queue_admitted(event_id, status.admission_pass, status.pass_expires_at)
            await self._emit_to(sid, "queue-admitted", payload)
        elif status.closed:
            await self._emit_to(sid, "queue-closed", queue_closed(event_id))
        else:
            self._waiting.setdefault(event_id, set()).add(who.user_id)
            self._start()
        return reply

    # -- the change feed: admissions and sell-outs, at once ---------------------------------

    def __call__(self, item: object) -> None:
        if not isinstance(item, QueueAdmitted | QueueClosed):
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop or running  # the feed is followed on the sockets' loop
        if loop is None or loop.is_closed():
            return
        if running is loop:
            self._accept(item)
        else:
            loop.call_soon_threadsafe(self._accept, item)

    def _accept(self, item: QueueAdmitted | QueueClosed) -> None:
        if isinstance(item, QueueClosed):
            for user_id in self._waiting.pop(item.event_id, set()):
                self._sockets.broadcast(
                    "queue-closed", queue_closed(item.event_id), queue_room(item.event_id, user_id)
                )
            return
        waiting = self._waiting.get(item.event_id, set())
        present = self._sio.manager.rooms.get(NAMESPACE, {})
        for user_id in item.users:
            waiting.discard(user_id)
            room = user_room(user_id)
            if room not in present:
                continue  # no socket of theirs here; the other gateways tell theirs
            admission_pass = self._rooms.pass_of(
                user_id, item.event_id, item.admitted_at, item.expires_at
            )
            payload = queue_admitted(item.event_id, admission_pass, item.expires_at)
            self._sockets.broadcast("queue-admitted", payload, room)

    # -- queue-status, every interval ------------------------------------------------------

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._pusher is None or self._pusher.done():
            self._pusher = self._loop.create_task(self._push_forever())

    async def close(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher

    async def _push_forever(self) -> None:
        # Ends when nobody here waits any more; the next join-queue starts it again.
        while self._waiting:
            started = asyncio.get_running_loop().time()
            events = list(self._waiting)
            await asyncio.gather(*(self._push(event_id) for event_id in events))
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(self._interval - elapsed, 0.05))

    async def _push(self, event_id: int) -> None:
        present = self._sio.manager.rooms.get(NAMESPACE, {})
        waiting = self._waiting.get(event_id, set())
        # Buyers whose queued sockets all went away are forgotten here.
        waiting.intersection_update(
            {user_id for user_id in waiting if queue_room(event_id, user_id) in present}
        )
        if not waiting:
            self._waiting.pop(event_id, None)
            return
        try:
            statuses = await self._rooms.statuses(event_id, sorted(waiting))
        except Refusal as exc:
            # The organizer turned the room off (or deleted the event): nothing to wait for.
            log.info("queue of event %s gone: %s", event_id, exc.message)
            self._waiting.pop(event_id, None)
            return
        except Exception as exc:
            log.warning("queue-status of event %s not read: %s", event_id, exc)
            return
        waiting = self._waiting.get(event_id, set())  # admissions may have arrived meanwhile
        for user_id, status in statuses.items():
            if user_id not in waiting:
                continue
            room = queue_room(event_id, user_id)
            if status.admitted and status.admission_pass and status.pass_expires_at:
                # The feed's notice was missed (a gateway that started after it): tell now.
                waiting.discard(user_id)
                payload = queue_admitted(event_id, status.admission_pass, status.pass_expires_at)
                self._sockets.broadcast("queue-admitted", payload, room)
            elif status.closed:
                waiting.discard(user_id)
                self._sockets.broadcast("queue-closed", queue_closed(event_id), room)
            else:
                self._sockets.broadcast("queue-status", queue_status(status), room)

    async def _emit_to(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, to=sid, namespace=NAMESPACE)
