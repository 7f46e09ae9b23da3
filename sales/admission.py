"""The waiting room as every adapter sees it: joining an event's queue, where a buyer stands,
and the admission pass that lets them buy while the room is on.

A pass is an HS256 JWT under the tokens' secret, with its own audience and type, so it is
never mistaken for a login token nor a login token for it. It names its user and event and
lasts ADMISSION_TTL_SECONDS from the admission. It is a pure function of the stored admission
(user, event, admitted at, expires at), so every gateway signs the same pass, and a restart
changes nothing about passes already issued.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jwt

from actors.queue import QueuePlace
from actors.queue_client import QueueClient
from actors.refusals import EventNotFound, NoAdmission, NotWaiting, NoWaitingRoom
from persistence.records import EventRecord
from sales.directory import Directory
from sales.identity import ALGORITHM, Principal

PASS_AUDIENCE = "boxoffice:admission"
PASS_TYPE = "admission"
JOIN_THE_QUEUE = "Join the queue for this event"
NOT_QUEUED = "You are not in the queue of this event"
NO_ROOM = "This event has no waiting room"
# A pass is a short string; anything much longer is not one of ours (and is not parsed).
MAX_PASS_LENGTH = 1_000


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """A buyer's place in an event's queue, with their pass once admitted."""

    event_id: int
    position: int | None  # 1 is next; None before the opening draw; 0 once admitted
    ahead: int | None
    eta_seconds: float | None
    admitted: bool
    admission_pass: str | None
    pass_expires_at: float | None
    opens_at: float
    closed: bool
    waiting: int


class AdmissionPasses:
    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("a signing secret is required")
        self._secret = secret
        self._clock = clock

    def issue(self, user_id: int, event_id: int, admitted_at: float, expires_at: float) -> str:
        claims = {
            "sub": str(user_id),
            "evt": event_id,
            "typ": PASS_TYPE,
            "aud": PASS_AUDIENCE,
            "iat": int(admitted_at),
            "exp": int(expires_at),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def check(self, token: str | None, user_id: int, event_id: int) -> None:
        """Nothing when `token` is a live pass of this user for this event; else `NoAdmission`."""
        if not token or len(token) > MAX_PASS_LENGTH:
            raise NoAdmission(JOIN_THE_QUEUE)
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=PASS_AUDIENCE,
                # Expiry against the injected clock below; `iat` not at all: a gateway whose
                # clock lags the queue actor's must still accept a pass just issued.
                options={
                    "require": ["sub", "evt", "typ", "exp", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise NoAdmission(JOIN_THE_QUEUE) from None
        if (
            claims.get("typ") != PASS_TYPE
            or claims.get("sub") != str(user_id)
            or claims.get("evt") != event_id
            or not isinstance(claims.get("exp"), int)
            or self._clock() >= claims["exp"]
        ):
            raise NoAdmission(JOIN_THE_QUEUE)


class WaitingRooms:
    def __init__(self, directory: Directory, queue: QueueClient, passes: AdmissionPasses) -> None:
        self._directory = directory
        self._queue = queue
        self._passes = passes

    async def join(self, caller: Principal, event_id: int) -> QueueStatus:
        """Into the event's queue (once: joining again answers the same place)."""
        await self._queued_event(event_id)
        return self._status(await self._queue.join(event_id, caller.user_id))

    async def status(self, caller: Principal, event_id: int) -> QueueStatus:
        await self._queued_event(event_id)
        place = (await self._queue.places(event_id, [caller.user_id]))[0]
        if place is None:
            raise NotWaiting(NOT_QUEUED)
        return self._status(place)

    async def statuses(self, event_id: int, user_ids: Sequence[int]) -> dict[int, QueueStatus]:
        """Places of many buyers at once (every queued socket of a gateway, each second)."""
        await self._queued_event(event_id)
        places = await self._queue.places(event_id, user_ids)
        return {place.user_id: self._status(place) for place in places if place is not None}

    async def line(self, event_id: int) -> list[int]:
        """The event's admission order once drawn (audits, tests, the benchmark)."""
        await self._queued_event(event_id)
        return await self._queue.line(event_id)

    def pass_of(self, user_id: int, event_id: int, admitted_at: float, expires_at: float) -> str:
        return self._passes.issue(user_id, event_id, admitted_at, expires_at)

    def check(self, caller: Principal, event: EventRecord, token: str | None) -> None:
        """The rule `Sales` applies to every hold and order of an event with its room on."""
        self._passes.check(token, caller.user_id, event.id)

    def note_used(self, event_id: int, user_id: int) -> None:
        self._queue.note_used(event_id, user_id)

    async def _queued_event(self, event_id: int) -> EventRecord:
        # Checked before any actor is called: an unknown id must never start an actor.
        event = await self._directory.event(event_id)
        if event is None:
            raise EventNotFound("Event not found")
        if not event.queued:
            raise NoWaitingRoom(NO_ROOM)
        return event

    def _status(self, place: QueuePlace) -> QueueStatus:
        admission_pass = None
        if place.admitted and place.admitted_at is not None and place.pass_expires_at is not None:
            admission_pass = self._passes.issue(
                place.user_id, place.event_id, place.admitted_at, place.pass_expires_at
            )
        return QueueStatus(
            event_id=place.event_id,
            position=place.position,
            ahead=place.ahead,
            eta_seconds=place.eta_seconds,
            admitted=place.admitted,
            admission_pass=admission_pass,
            pass_expires_at=place.pass_expires_at,
            opens_at=place.opens_at,
            closed=place.closed,
            waiting=place.waiting,
        )
