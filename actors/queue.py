"""The virtual waiting room of one event as plain state: who is in line, in what order, who
was admitted when, and how many to admit next. No Ray, no I/O, no clock of its own.

Buyers who join before the opening are ordered by one random draw at the opening instant
(arriving early or with a faster script buys nothing); later arrivals queue in arrival order.
Admission runs at `admit_per_second`, and pauses while the free seats are all covered by
admitted buyers who have not taken any yet; nobody is admitted twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from persistence.pickling import compact

# At most this many seconds of admissions accumulate while ticks are late: a stalled tick
# must not turn into a burst.
CREDIT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class RoomSettings:
    admit_per_second: int
    opens_at: float  # epoch seconds
    pass_seconds: float  # lifetime of an admission pass


@compact
@dataclass(frozen=True, slots=True)
class QueuePlace:
    """Where one buyer stands, as the actor answers it (and REST / sockets show it)."""

    event_id: int
    user_id: int
    position: int | None  # 1 is next; None before the draw, 0 once admitted
    ahead: int | None
    eta_seconds: float | None
    admitted: bool
    admitted_at: float | None = None
    pass_expires_at: float | None = None
    opens_at: float = 0.0
    closed: bool = False  # sold out: nobody else will be admitted
    waiting: int = 0  # everyone still waiting (drawn or not)


@dataclass(frozen=True, slots=True)
class Admission:
    """Buyers to admit in one tick, in line order; applied by `WaitingRoom.admit` once the
    caller has made it durable."""

    users: tuple[int, ...]
    admitted_at: float
    expires_at: float
    first_index: int  # index in the line of users[0]


@compact
@dataclass(frozen=True, slots=True)
class QueueAdmitted:
    """Feed item: one tick's admissions, so every gateway hands its buyers their pass at once."""

    event_id: int
    users: tuple[int, ...]
    admitted_at: float
    expires_at: float


@compact
@dataclass(frozen=True, slots=True)
class QueueClosed:
    """Feed item: the event sold out; nobody still waiting will be admitted."""

    event_id: int


@dataclass(frozen=True, slots=True)
class EntryState:
    """One stored entry, as a restore reads it back."""

    user_id: int
    seq: int  # arrival order
    early: bool  # joined before the opening: part of the draw
    rank: int | None  # place in the draw, once drawn
    admitted_at: float | None = None
    pass_expires_at: float | None = None
    used: bool = False


@dataclass(slots=True)
class WaitingRoom:
    event_id: int
    settings: RoomSettings
    _early: list[int] = field(default_factory=list)
    _line: list[int] = field(default_factory=list)
    _members: set[int] = field(default_factory=set)
    _index: dict[int, int] = field(default_factory=dict)  # user -> index in _line
    _served: int = 0  # _line[:_served] were admitted
    _passes: dict[int, tuple[float, float]] = field(default_factory=dict)
    # Admitted, pass still live, no seat taken yet; in admission (so expiry) order.
    _unused: dict[int, float] = field(default_factory=dict)
    _credit: float = 0.0
    _last_tick: float | None = None
    opened: bool = False
    closed: bool = False

    # -- joining --------------------------------------------------------------------------

    def knows(self, user_id: int) -> bool:
        return user_id in self._members

    def due_to_open(self, now: float) -> bool:
        return not self.opened and now >= self.settings.opens_at

    def join(self, user_id: int) -> bool:
        """Put the user in line (in the draw before the opening, at the back after it);
        False when they already are: one entry per user."""
        if user_id in self._members:
            return False
        self._members.add(user_id)
        if self.opened:
            self._index[user_id] = len(self._line)
            self._line.append(user_id)
        else:
            self._early.append(user_id)
        return True

    def draw(self, rng: random.Random) -> list[int]:
        """The order of everyone who joined before the opening: a uniform random permutation.
        Nothing changes until `open` applies it (after the caller made it durable)."""
        order = list(self._early)
        rng.shuffle(order)
        return order

    def open(self, order: Sequence[int]) -> None:
        if self.opened:
            raise ValueError("the room is already open")
        if sorted(order) != sorted(self._early):
            raise ValueError("a draw must be a permutation of the buyers who joined early")
        drawn = list(order)
        # Any later arrivals already in line (none, unless restored) stay behind the draw.
        self._line = drawn + self._line
        self._index = {user_id: index for index, user_id in enumerate(self._line)}
        self._early = []
        self.opened = True

    # -- admission ------------------------------------------------------------------------

    def plan(self, now: float, free_seats: int, sold_out: bool) -> Admission | None:
        """Who to admit now, given the event's free seats; None when nobody. Accrues the rate
        credit; the buyers are admitted by `admit`."""
        last, self._last_tick = self._last_tick, now
        if sold_out:
            self.closed = True
        if self.closed or not self.opened:
            self._credit = 0.0
            return None
        self._expire(now)
        waiting = len(self._line) - self._served
        room = free_seats - len(self._unused)
        if waiting <= 0 or room <= 0:
            # Paused (or nobody to admit): no credit builds up meanwhile, so resuming is not
            # a burst.
            self._credit = 0.0
            return None
        rate = self.settings.admit_per_second
        elapsed = 0.0 if last is None else max(now - last, 0.0)
        self._credit = min(self._credit + rate * elapsed, max(rate * CREDIT_SECONDS, 1.0))
        count = min(math.floor(self._credit), waiting, room)
        if count <= 0:
            return None
        users = tuple(self._line[self._served : self._served + count])
        return Admission(users, now, now + self.settings.pass_seconds, self._served)

    def admit(self, admission: Admission) -> None:
        if admission.first_index != self._served:
            raise ValueError("an admission must start where the last one ended")
        for user_id in admission.users:
            self._passes[user_id] = (admission.admitted_at, admission.expires_at)
            self._unused[user_id] = admission.expires_at
        self._served += len(admission.users)
        self._credit = max(self._credit - len(admission.users), 0.0)

    def used(self, user_ids: Iterable[int]) -> None:
        """These admitted buyers took seats: they no longer cover free ones."""
        for user_id in user_ids:
            self._unused.pop(user_id, None)

    def covering(self, now: float) -> int:
        """Admitted buyers with a live pass who have not taken a seat yet."""
        self._expire(now)
        return len(self._unused)

    def _expire(self, now: float) -> None:
        # Passes all last as long, so admission order is expiry order: drop from the front.
        while self._unused:
            user_id, expires_at = next(iter(self._unused.items()))
            if expires_at > now:
                break
            del self._unused[user_id]

    # -- reading --------------------------------------------------------------------------

    @property
    def served(self) -> int:
        return self._served

    @property
    def waiting(self) -> int:
        return len(self._early) + len(self._line) - self._served

    def line(self) -> list[int]:
        """The admission order once drawn (admitted first), for tests and audits."""
        return list(self._line)

    def early(self) -> list[int]:
        return list(self._early)

    def place(self, user_id: int) -> QueuePlace | None:
        if user_id not in self._members:
            return None
        issued = self._passes.get(user_id)
        if issued is not None:
            return self._place(user_id, 0, 0.0, issued)
        index = self._index.get(user_id)
        if index is None:
            return self._place(user_id, None, None, None)
        ahead = index - self._served
        eta = round(ahead / self.settings.admit_per_second, 1)
        return self._place(user_id, ahead + 1, eta, None)

    def _place(
        self,
        user_id: int,
        position: int | None,
        eta_seconds: float | None,
        issued: tuple[float, float] | None,
    ) -> QueuePlace:
        return QueuePlace(
            event_id=self.event_id,
            user_id=user_id,
            position=position,
            ahead=None if position is None else max(position - 1, 0),
            eta_seconds=eta_seconds,
            admitted=issued is not None,
            admitted_at=None if issued is None else issued[0],
            pass_expires_at=None if issued is None else issued[1],
            opens_at=self.settings.opens_at,
            closed=self.closed,
            waiting=self.waiting,
        )

    # -- settings and restore -------------------------------------------------------------

    def reconfigure(self, settings: RoomSettings) -> None:
        """New rate or opening from the organizer; an opening already past stays past."""
        self.settings = settings

    @classmethod
    def restore(
        cls, event_id: int, settings: RoomSettings, entries: Iterable[EntryState], now: float
    ) -> tuple[WaitingRoom, bool]:
        """The room as its stored entries describe it. Returns it and whether the opening was
        due but its draw never stored (the caller then draws and stores it as usual)."""
        room = cls(event_id, settings)
        rows = sorted(entries, key=lambda entry: entry.seq)
        drawn = sorted((e for e in rows if e.early and e.rank is not None), key=_rank)
        undrawn = [e for e in rows if e.early and e.rank is None]
        later = [e for e in rows if not e.early]
        room._members = {entry.user_id for entry in rows}
        if drawn or later:
            # The draw is one statement, so ranked entries mean it was stored whole; later
            # arrivals exist only once the room opened.
            room.opened = True
            rest = sorted(undrawn + later, key=lambda entry: entry.seq)
            room._line = [e.user_id for e in drawn] + [e.user_id for e in rest]
        else:
            room._early = [e.user_id for e in undrawn]
        room._index = {user_id: index for index, user_id in enumerate(room._line)}
        admitted = {e.user_id: e for e in rows if e.admitted_at is not None}
        # Admissions take a prefix of the line, tick by tick.
        for user_id in room._line:
            entry = admitted.get(user_id)
            if entry is None:
                break
            room._served += 1
        for entry in sorted(admitted.values(), key=lambda e: e.admitted_at or 0.0):
            expires_at = entry.pass_expires_at or 0.0
            room._passes[entry.user_id] = (entry.admitted_at or 0.0, expires_at)
            if not entry.used and expires_at > now:
                room._unused[entry.user_id] = expires_at
        return room, room.due_to_open(now)


def _rank(entry: EntryState) -> int:
    return entry.rank if entry.rank is not None else 0
