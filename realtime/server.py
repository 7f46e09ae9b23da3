"""The Socket.IO `/realtime` adapter: authenticated sessions, lock/unlock through the sales
service, event rooms, and the publisher that turns the change feed into room emits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import urllib.parse
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import engineio
import socketio

from actors.messages import Availability, CategoryChanged, FeedItem, UserNotice
from actors.mirror import FeedMirror
from actors.refusals import Refusal
from actors.trace import REQUEST_ID
from realtime.dashboard import SalesDashboard
from realtime.membership import IndexedRooms
from realtime.payloads import (
    NAMESPACE,
    BadPayload,
    EventRoomRequest,
    LockRequest,
    UnlockRequest,
    WaitlistRequest,
    availability_update,
    failure,
    iso,
    lock_view,
    parse,
    waitlist_offer,
    waitlist_position,
)
from realtime.queue import QueueSockets
from realtime.ratelimit import TokenBucket
from realtime.telemetry import SocketTally
from sales.identity import Authenticator, InvalidToken, Principal
from sales.outage import outage_of

if TYPE_CHECKING:
    from actors.messages import HoldsReleased
    from sales.admission import WaitingRooms
    from sales.organizer import Organizing
    from sales.service import Sales

log = logging.getLogger(__name__)

UNAUTHORIZED = "Unauthorized"
JOIN_FAILED = "Failed to join event room"
RATE_LIMITED = "Rate limit exceeded"
TOO_MANY_CONNECTIONS = "Too many connections for this user"
INTERNAL = "Internal server error"
UNAVAILABLE = "Service unavailable, try again shortly"
OFFERS_REMEMBERED = 10_000
POSITION_INTERVAL_SECONDS = 1.0

Handler = Callable[[str, Principal, Any], Awaitable[dict[str, Any] | None]]
Subscribe = Callable[[Callable[[FeedItem], None]], Callable[[], None]]


@dataclass(frozen=True, slots=True)
class RealtimeSettings:
    cors_origins: tuple[str, ...]
    events_per_second: float
    event_burst: int
    max_payload_bytes: int
    connections_per_user: int = 20
    send_queue_limit: int = 1000


def event_room(event_id: int) -> str:
    return f"event:{event_id}"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def create_realtime(
    sales: Sales,
    auth: Authenticator,
    subscribe: Subscribe,
    settings: RealtimeSettings,
    tally: SocketTally | None = None,
    organizing: Organizing | None = None,
    rooms: WaitingRooms | None = None,
) -> socketio.AsyncServer:
    """The Socket.IO server of one gateway process, already following the change feed.

    With `organizing`, it also serves the organizer's live sales dashboard."""
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=IndexedRooms(),
        cors_allowed_origins=_origin_policy(settings),
        max_http_buffer_size=settings.max_payload_bytes,
    )
    tally = tally or SocketTally()
    sockets = SocketRooms(sio, settings.send_queue_limit)
    publisher = FeedPublisher(sockets, tally)
    service = RealtimeService(sio, sales, auth, settings, publisher, tally)
    extra: dict[str, Handler] = {}
    if organizing is not None:
        dashboard = SalesDashboard(sio, organizing)
        extra = dashboard.events()
        subscribe(dashboard)
    service.register(extra)
    subscribe(publisher)
    if rooms is not None:
        queues = QueueSockets(sio, rooms, sockets)
        service.route("join-queue", queues.join_queue)
        subscribe(queues)
    return sio


def _origin_policy(settings: RealtimeSettings) -> Callable[[str | None, dict[str, Any]], bool]:
    """The configured CORS origins, plus the page's own origin (it is served by this app)."""
    allowed = frozenset(settings.cors_origins)

    def allow(origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin or origin in allowed:
            return True
        host = environ.get("HTTP_HOST")
        scheme = environ.get("wsgi.url_scheme", "http")
        return host is not None and origin == f"{scheme}://{host}"

    return allow


class Rooms(Protocol):
    """Where the publisher sends: `SocketRooms` over the Socket.IO server, or a test's fake."""

    def broadcast(
        self, event: str, data: dict[str, Any], room: str, *, state_of: Any = None
    ) -> None: ...

    async def emit(self, event: str, data: Any, *, room: str, namespace: str) -> None: ...


class _Latest(engineio.packet.Packet):  # type: ignore[misc]
    """A state queued for one socket and not yet written. A newer state of the same thing
    (one category's availability) takes its place in the queue instead of queueing behind it;
    it leaves its socket's slots once written, so the next state queues anew."""

    def __init__(self, slots: dict[Any, _Latest], key: Any, message: engineio.packet.Packet):
        super().__init__(engineio.packet.MESSAGE)
        self.slots, self.key, self.message = slots, key, message

    def encode(self, b64: bool = False) -> Any:
        if self.slots.get(self.key) is self:
            del self.slots[self.key]
        return self.message.encode(b64)  # one encoding shared by every socket it went to


class SocketRooms:
    """Room emits over the Socket.IO server, with a broadcast that costs little per socket."""

    def __init__(self, sio: socketio.AsyncServer, queue_limit: int = 1000) -> None:
        self._sio = sio
        self._queue_limit = queue_limit
        self._closing: set[asyncio.Task[None]] = set()
        # Per socket, the states queued and not yet written, by what they are the state of.
        self._unsent: weakref.WeakKeyDictionary[Any, dict[Any, _Latest]] = (
            weakref.WeakKeyDictionary()
        )

    def broadcast(
        self, event: str, data: dict[str, Any], room: str, *, state_of: Any = None
    ) -> None:
        """`event` to every socket in `room`, queued now on each socket's own writer.

        python-socketio's room emit starts a task per recipient, each walking four coroutines to
        reach the same queue put; a py-spy profile of a 1,000-socket room put a fifth of the
        server's time in `create_task` alone. Here the packet is encoded once and put on each
        socket's Engine.IO queue directly (what `AsyncSocket.send` does after its ping check;
        a timed-out socket is closed by its own ping loop), and a socket's writer sends
        everything queued at once, over WebSocket or long-polling alike.

        With `state_of`, `data` is the whole state of that thing and supersedes the last one:
        a socket that still has an older state of it queued gets this one in its place. A
        socket that falls behind (a slow client, or a gateway with more sockets than it can
        write to as fast as states change) then catches up with the latest state at once,
        instead of working through a backlog of stale ones: at 5,000 sockets and 5 changes a
        second, one socket write per message, not the messages, was the limit (a third of the
        gateway's time in `transport.write` alone).
        """
        encoded = socketio.packet.Packet(
            socketio.packet.EVENT, namespace=NAMESPACE, data=[event, data]
        ).encode()
        message = engineio.packet.Packet(engineio.packet.MESSAGE, encoded)
        sockets = self._sio.eio.sockets
        unsent = self._unsent
        for _, eio_sid in self._sio.manager.get_participants(NAMESPACE, room):
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            if state_of is not None:
                slots = unsent.get(socket)
                queued = None if slots is None else slots.get(state_of)
                if queued is not None:
                    queued.message = message
                    continue
            if socket.queue.qsize() >= self._queue_limit:
                self._drop(socket)
            elif state_of is None:
                socket.queue.put_nowait(message)
            else:
                if slots is None:
                    slots = unsent[socket] = {}
                latest = slots[state_of] = _Latest(slots, state_of, message)
                socket.queue.put_nowait(latest)

    def _drop(self, socket: Any) -> None:
        """A socket whose client reads nothing: its backlog would grow with every change."""
        log.warning("socket %s dropped: %d messages unread", socket.sid, socket.queue.qsize())
        while not socket.queue.empty():
            socket.queue.get_nowait()
            socket.queue.task_done()
        task = asyncio.get_running_loop().create_task(socket.close(wait=False, abort=True))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def emit(self, event: str, data: Any, *, room: str, namespace: str) -> None:
        await self._sio.emit(event, data, room=room, namespace=namespace)


class FeedPublisher:
    """Turns the change feed into room emits without ever blocking the feed's follower.

    States of a category that arrive in the same turn of the event loop replace each other,
    and one broadcast sends the latest; a state older than one already sent is dropped, so
    a room never goes back in time.
    """

    def __init__(self, rooms: Rooms, tally: SocketTally | None = None) -> None:
        self._rooms = rooms
        self._tally = tally or SocketTally()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, CategoryChanged] = {}
        self._sent = FeedMirror(track_holds=False)
        self._tasks: set[asyncio.Task[None]] = set()
        # Waiting lists as last announced, per category, and offers already announced (a
        # re-published hold must not offer twice); both bounded.
        self._lines: dict[int, tuple[int, ...]] = {}
        self._due_lines: dict[int, Availability] = {}  # the newest line not yet announced
        self._lines_sent_at: dict[int, float] = {}  # loop time a category's line went out
        self._position_timers: dict[int, asyncio.TimerHandle] = {}
        self._offered: OrderedDict[str, None] = OrderedDict()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop the sockets live on (the first connection tells us)."""
        self._loop = loop

    def __call__(self, item: FeedItem) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # no socket ever connected to this process: nobody to tell
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._accept(item)
        else:
            loop.call_soon_threadsafe(self._accept, item)

    def _accept(self, item: FeedItem) -> None:
        if isinstance(item, CategoryChanged):
            # Before the staleness check: an offer is news even in a state already overtaken.
            self._announce_offers(item)
            if not self._sent.apply(item):
                return  # an older state arriving late (another process's feed): never go back
            if not self._pending:
                asyncio.get_running_loop().call_soon(self._flush)
            self._pending[item.availability.category_id] = item
        elif isinstance(item, UserNotice):
            self._spawn(
                self._rooms.emit(
                    item.event, item.payload, room=user_room(item.user_id), namespace=NAMESPACE
                )
            )

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        now = time.time()
        for item in pending.values():
            availability = item.availability
            self._tally.feed_lag.observe(None, now - availability.at)
            try:
                self._rooms.broadcast(
                    "availability-update",
                    availability_update(availability),
                    event_room(availability.event_id),
                    state_of=availability.category_id,
                )
                self._announce_positions(availability)
            except Exception:
                log.exception(
                    "availability-update for category %s failed", availability.category_id
                )

    def _announce_offers(self, item: CategoryChanged) -> None:
        for hold in item.holds_added:
            if not hold.offer or hold.lock_id in self._offered:
                continue
            self._offered[hold.lock_id] = None
            if len(self._offered) > OFFERS_REMEMBERED:
                self._offered.popitem(last=False)
            self._rooms.broadcast("waitlist-offer", waitlist_offer(hold), user_room(hold.owner))

    def _announce_positions(self, availability: Availability) -> None:
        """`waitlist-position` to each waiting buyer whose place changed (this process's
        sockets only: every gateway does the same for its own), at most once per
        POSITION_INTERVAL_SECONDS per category: each offer moves everyone behind it, and a
        thousand buyers told of every step cost more than the offers they wait for (the bench's
        waitlist scenario heard 168,000 of them for 223 offers). The latest line always goes
        out: a change inside the interval is sent when it ends."""
        category_id = availability.category_id
        if not availability.waiting and category_id not in self._lines:
            return  # nobody waits here, and nobody was told of a place
        self._due_lines[category_id] = availability
        if category_id in self._position_timers:
            return
        loop = asyncio.get_running_loop()
        wait = self._lines_sent_at.get(category_id, -math.inf) + POSITION_INTERVAL_SECONDS
        if wait <= loop.time():
            self._send_positions(category_id)
        else:
            self._position_timers[category_id] = loop.call_at(
                wait, self._send_positions, category_id
            )

    def _send_positions(self, category_id: int) -> None:
        self._position_timers.pop(category_id, None)
        availability = self._due_lines.pop(category_id, None)
        if availability is None:
            return
        try:
            self._tell_places(category_id, availability)
        except Exception:
            log.exception("waitlist-position for category %s failed", category_id)

    def _tell_places(self, category_id: int, availability: Availability) -> None:
        before = self._lines.get(category_id, ())
        line = availability.waiting
        if line:
            self._lines_sent_at[category_id] = asyncio.get_running_loop().time()
        else:
            self._lines_sent_at.pop(category_id, None)
        if line == before:
            return
        if line:
            self._lines[category_id] = line
        else:
            self._lines.pop(category_id, None)
        was = {user_id: place for place, user_id in enumerate(before, 1)}
        for place, user_id in enumerate(line, 1):
            if was.get(user_id) != place or len(before) != len(line):
                payload = waitlist_position(availability.event_id, category_id, place, len(line))
                self._rooms.broadcast("waitlist-position", payload, user_room(user_id))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class RealtimeService:
    """The `/realtime` event handlers. Per-client state lives in the socket's session only."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        sales: Sales,
        auth: Authenticator,
        settings: RealtimeSettings,
        publisher: FeedPublisher,
        tally: SocketTally | None = None,
    ) -> None:
        self._sio = sio
        self._tally = tally or SocketTally()
        self._sales = sales
        self._auth = auth
        self._settings = settings
        self._publisher = publisher
        self._greetings: set[asyncio.Task[None]] = set()

    def register(self, extra_events: Mapping[str, Handler] | None = None) -> None:
        self._sio.on("connect", self.connect, namespace=NAMESPACE)
        self._sio.on("disconnect", self.disconnect, namespace=NAMESPACE)
        routes: dict[str, Handler] = {
            "join-event-room": self.join_event_room,
            "leave-event-room": self.leave_event_room,
            "lock-tickets": self.lock_tickets,
            "unlock-tickets": self.unlock_tickets,
            "get-my-locks": self.get_my_locks,
            "heartbeat": self.heartbeat,
            "join-waitlist": self.join_waitlist,
            "leave-waitlist": self.leave_waitlist,
            **(extra_events or {}),
        }
        for name, handler in routes.items():
            self.route(name, handler)

    def route(self, name: str, handler: Handler) -> None:
        """`handler` for the socket event `name`, behind the same guard as every event."""
        self._sio.on(name, self._guarded(name, handler), namespace=NAMESPACE)

    # -- connection ---------------------------------------------------------------------

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            principal = await self._auth.principal(_token_of(environ, auth))
        except InvalidToken:
            raise socketio.exceptions.ConnectionRefusedError(UNAUTHORIZED) from None
        except Exception as exc:
            down = outage_of(exc)
            if down is None:
                raise
            log.warning("%s unavailable on socket connect: %s", down, type(exc).__name__)
            raise socketio.exceptions.ConnectionRefusedError(UNAVAILABLE) from None
        # The user's room is the count of their sockets in this process: no second bookkeeping.
        # No await between counting and entering it, so a burst of connects cannot overshoot.
        room = user_room(principal.user_id)
        if sum(1 for _ in self._sio.manager.get_participants(NAMESPACE, room)) >= (
            self._settings.connections_per_user
        ):
            raise socketio.exceptions.ConnectionRefusedError(TOO_MANY_CONNECTIONS)
        await self._sio.enter_room(sid, room, namespace=NAMESPACE)
        loop = asyncio.get_running_loop()
        self._publisher.bind(loop)
        bucket = TokenBucket(
            self._settings.events_per_second,
            self._settings.event_burst,
            time.monotonic(),
        )
        await self._sio.save_session(
            sid, {"principal": principal, "bucket": bucket}, namespace=NAMESPACE
        )
        greeting = {
            "success": True,
            "sessionId": sid,
            "message": "Connected to realtime service",
        }
        # Sent once the CONNECT packet has gone out, so every client sees it after `connect`.
        task = loop.create_task(self._emit_to(sid, "connected", greeting))
        self._greetings.add(task)
        task.add_done_callback(self._greetings.discard)

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        # Rooms and the session go with the socket; holds stay until they expire or are used.
        return None

    def _guarded(
        self, event: str, handler: Handler
    ) -> Callable[..., Awaitable[dict[str, Any] | None]]:
        """Rate limit, identity, and the last word on unexpected failures, for every event."""

        async def run(sid: str, data: Any = None, *_extra: Any) -> dict[str, Any] | None:
            self._tally.events.add(event)
            REQUEST_ID.set(sid)  # this event's own task: what it asks of an actor names the socket
            session = await self._sio.get_session(sid, namespace=NAMESPACE)
            principal = session.get("principal")
            bucket = session.get("bucket")
            if not isinstance(principal, Principal) or not isinstance(bucket, TokenBucket):
                await self._emit_to(sid, "error", {"message": UNAUTHORIZED})
                return None
            if time.time() >= principal.expires_at:
                # Checked at connect only, a token would outlive its `exp` for as long as the
                # socket stays open. Told why, then dropped: reconnecting needs a fresh token.
                await self._emit_to(sid, "error", {"message": UNAUTHORIZED})
                await self._sio.disconnect(sid, namespace=NAMESPACE)
                return None
            if not bucket.take(time.monotonic()):
                self._tally.rate_limited += 1
                await self._emit_to(sid, "error", {"message": RATE_LIMITED})
                return None
            try:
                return await handler(sid, principal, data)
            except Exception as exc:
                down = outage_of(exc)
                if down is None:
                    log.exception("socket event %s failed for sid %s", event, sid)
                    await self._emit_to(sid, "error", {"message": INTERNAL})
                    return None
                # One line per failure, not a traceback per event: the outage is the news.
                log.warning(
                    "%s unavailable on socket event %s: %s", down, event, type(exc).__name__
                )
                await self._emit_to(sid, "error", {"message": UNAVAILABLE})
                return None

        return run

    # -- rooms --------------------------------------------------------------------------

    async def join_event_room(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        try:
            request = parse(EventRoomRequest, data)
        except BadPayload:
            return await self._join_failed(sid)
        event = await self._sales.event(request.event_id)
        if event is None:
            return await self._join_failed(sid)
        await self._sio.enter_room(sid, event_room(event.id), namespace=NAMESPACE)
        reply = {
            "success": True,
            "eventId": event.id,
            "message": f"Joined event room {event.id}",
        }
        await self._emit_to(sid, "joined-event-room", reply)
        # The current numbers at once, so a page never waits for the next change.
        current = await self._sales.availability([c.id for c in event.categories])
        for category in event.categories:
            availability = current.get(category.id)
            if availability is not None:
                await self._emit_to(sid, "availability-update", availability_update(availability))
        return reply

    async def _join_failed(self, sid: str) -> dict[str, Any]:
        reply = {"message": JOIN_FAILED}
        await self._emit_to(sid, "error", reply)
        return reply

    async def leave_event_room(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        try:
            request = parse(EventRoomRequest, data)
        except BadPayload as exc:
            refusal: dict[str, Any] = {"message": exc.message}
            await self._emit_to(sid, "error", refusal)
            return refusal
        await self._sio.leave_room(sid, event_room(request.event_id), namespace=NAMESPACE)
        reply = {
            "success": True,
            "eventId": request.event_id,
            "message": f"Left event room {request.event_id}",
        }
        await self._emit_to(sid, "left-event-room", reply)
        return reply

    # -- holds --------------------------------------------------------------------------

    async def lock_tickets(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        try:
            request = parse(LockRequest, data)
            placed = await self._sales.hold(
                who,
                event_id=request.event_id,
                category_id=request.category_id,
                quantity=request.quantity,
                admission_pass=request.admission_pass,
            )
        except (BadPayload, Refusal) as exc:
            reply = failure(exc.message)
        else:
            reply = {
                "success": True,
                "lockId": placed.hold.lock_id,
                "expiresAt": iso(placed.hold.expires_at),
                "availableTickets": placed.availability.available,
                "eventId": placed.hold.event_id,
                "categoryId": placed.hold.category_id,
                "quantity": placed.hold.quantity,
                "message": "Tickets locked successfully",
            }
        await self._emit_to(sid, "lock-tickets-response", reply)
        return reply

    async def unlock_tickets(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        try:
            request = parse(UnlockRequest, data)
            released = await self._release(who, request)
        except (BadPayload, Refusal) as exc:
            reply = failure(exc.message)
        else:
            reply = {
                "success": True,
                "message": "Tickets unlocked successfully",
                "availableTickets": released.availability.available,
                "eventId": released.availability.event_id,
                "categoryId": released.availability.category_id,
                # By quantity, a hold may have been shrunk rather than dropped: what was asked
                # for is what was released.
                "quantity": request.quantity
                if request.lock_id is None and request.quantity is not None
                else sum(hold.quantity for hold in released.holds),
                "lockIds": [hold.lock_id for hold in released.holds],
            }
        await self._emit_to(sid, "unlock-tickets-response", reply)
        return reply

    async def _release(self, who: Principal, request: UnlockRequest) -> HoldsReleased:
        if request.lock_id is not None:
            return await self._sales.release_lock(who, request.lock_id)
        if request.category_id is None or request.quantity is None:
            raise BadPayload("Invalid payload: give lockId, or categoryId and quantity")
        return await self._sales.release(
            who,
            category_id=request.category_id,
            quantity=request.quantity,
            event_id=request.event_id,
        )

    async def get_my_locks(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        holds = self._sales.holds_of(who.user_id)
        reply = {"success": True, "locks": [lock_view(hold) for hold in holds]}
        await self._emit_to(sid, "my-locks-response", reply)
        return reply

    # -- the waiting list ---------------------------------------------------------------

    async def join_waitlist(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        try:
            request = parse(WaitlistRequest, data)
            if request.quantity is None:
                raise BadPayload("Invalid payload: quantity is required")
            place = await self._sales.join_waitlist(
                who,
                event_id=request.event_id,
                category_id=request.category_id,
                quantity=request.quantity,
            )
        except (BadPayload, Refusal) as exc:
            reply = failure(exc.message)
        else:
            reply = {
                "success": True,
                "message": "Joined the waiting list",
                "quantity": place.quantity,
            } | waitlist_position(place.event_id, place.category_id, place.position, place.waiting)
        await self._emit_to(sid, "join-waitlist-response", reply)
        return reply

    async def leave_waitlist(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        try:
            request = parse(WaitlistRequest, data)
            place = await self._sales.leave_waitlist(
                who, event_id=request.event_id, category_id=request.category_id
            )
        except (BadPayload, Refusal) as exc:
            reply = failure(exc.message)
        else:
            reply = {
                "success": True,
                "message": "Left the waiting list",
                "eventId": place.event_id,
                "categoryId": place.category_id,
            }
        await self._emit_to(sid, "leave-waitlist-response", reply)
        return reply

    async def heartbeat(self, sid: str, who: Principal, data: Any) -> dict[str, Any]:
        reply = {"timestamp": iso(datetime.now(UTC).timestamp())}
        await self._emit_to(sid, "heartbeat-response", reply)
        return reply

    async def _emit_to(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, to=sid, namespace=NAMESPACE)


def _token_of(environ: dict[str, Any], auth: Any) -> str | None:
    """The JWT from `auth.token`, the `token` query parameter, or an Authorization header."""
    if isinstance(auth, dict):
        token = auth.get("token")
        if isinstance(token, str) and token:
            return token
    query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")))
    tokens = query.get("token")
    if tokens and tokens[0]:
        return tokens[0]
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None
