"""A copy of the change feed's state: every category's latest availability and the live holds.

The one place a feed item is applied. The hub keeps one (to hand a new follower the whole
state), every gateway's client keeps one (reads never call an actor), and the realtime
publisher keeps one without holds (so a room never goes back in time).
"""

from __future__ import annotations

from collections.abc import Iterable

from actors.messages import Availability, CategoryChanged, FeedState, HoldView


class FeedMirror:
    def __init__(self, *, track_holds: bool = True) -> None:
        self.availability: dict[int, Availability] = {}
        self.holds: dict[str, HoldView] = {}
        self._track_holds = track_holds

    def apply(self, change: CategoryChanged) -> bool:
        """Apply a category's change; False (and nothing applied) when it is older than what
        the mirror has. A change with the same stamp is applied: a coalesced item can carry
        holds of other callers beside a state this process already learned from an answer."""
        current = self.availability.get(change.availability.category_id)
        if current is not None and current.stamp > change.availability.stamp:
            return False
        self.availability[change.availability.category_id] = change.availability
        if self._track_holds:
            for lock_id in change.holds_removed:
                self.holds.pop(lock_id, None)
            for hold in change.holds_added:
                self.holds[hold.lock_id] = hold
        return True

    def note(self, availability: Availability) -> bool:
        """Keep `availability` if it is newer than what the mirror has."""
        current = self.availability.get(availability.category_id)
        if current is not None and current.stamp >= availability.stamp:
            return False
        self.availability[availability.category_id] = availability
        return True

    def add_holds(self, holds: Iterable[HoldView]) -> None:
        for hold in holds:
            self.holds[hold.lock_id] = hold

    def drop_holds(self, lock_ids: Iterable[str]) -> None:
        for lock_id in lock_ids:
            self.holds.pop(lock_id, None)

    def reset(self, state: FeedState) -> None:
        """Start over from the hub's whole state (a new follower, or one that fell behind)."""
        self.holds = {hold.lock_id: hold for hold in state.holds} if self._track_holds else {}
        for availability in state.availability:
            self.note(availability)

    def state(self) -> FeedState:
        return FeedState(
            availability=tuple(self.availability.values()), holds=tuple(self.holds.values())
        )

    def holds_of(self, user_id: int, now: float) -> list[HoldView]:
        return [h for h in self.holds.values() if h.owner == user_id and h.expires_at > now]
