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
        # The same holds by owner: a user's holds are read on every hold request (the live
        # holds cap), and a scan of every live hold made each request cost O(all holds).
        self._by_owner: dict[int, dict[str, HoldView]] = {}
        # And by category: a complete item replaces one category's holds without a scan.
        self._by_category: dict[int, dict[str, HoldView]] = {}
        # Categories whose holds here are complete (a complete item was applied): what a
        # restarted hub's follower may replace rather than add to.
        self._complete: set[int] = set()
        self._track_holds = track_holds

    def apply(self, change: CategoryChanged) -> bool:
        """Apply a category's change; False (and nothing applied) when it is older than what
        the mirror has. A change with the same stamp is applied: a coalesced item can carry
        holds of other callers beside a state this process already learned from an answer."""
        category_id = change.availability.category_id
        current = self.availability.get(category_id)
        if current is not None and current.stamp > change.availability.stamp:
            return False
        self.availability[category_id] = change.availability
        if self._track_holds:
            if change.complete:
                self._replace_holds(category_id, change.holds_added)
                self._complete.add(category_id)
            self.drop_holds(change.holds_removed)
            self.add_holds(change.holds_added)
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
            previous = self.holds.get(hold.lock_id)
            if previous is not None:
                self._forget_indexed(previous)
            self.holds[hold.lock_id] = hold
            self._by_owner.setdefault(hold.owner, {})[hold.lock_id] = hold
            self._by_category.setdefault(hold.category_id, {})[hold.lock_id] = hold

    def drop_holds(self, lock_ids: Iterable[str]) -> None:
        for lock_id in lock_ids:
            hold = self.holds.pop(lock_id, None)
            if hold is not None:
                self._forget_indexed(hold)

    def _replace_holds(self, category_id: int, holds: Iterable[HoldView]) -> None:
        """Drop the category's holds that are not among `holds` (they are added by the caller)."""
        kept = {view.lock_id for view in holds}
        self.drop_holds([i for i in self._by_category.get(category_id, {}) if i not in kept])

    def _forget_indexed(self, hold: HoldView) -> None:
        for index, key in ((self._by_owner, hold.owner), (self._by_category, hold.category_id)):
            entries = index.get(key)
            if entries is not None:
                entries.pop(hold.lock_id, None)
                if not entries:
                    del index[key]

    def reset(self, state: FeedState) -> None:
        """Start over from the hub's whole state (a new follower, or one that fell behind)."""
        self.holds, self._by_owner, self._by_category = {}, {}, {}
        self._complete = set(state.complete)
        self.merge(state)

    def merge(self, state: FeedState) -> None:
        """Take what a restarted hub knows without forgetting anything: its state is partial
        until every live category has republished (each as a complete item), so a category
        it does not know yet keeps its last known availability and holds meanwhile. A
        category the hub knows completely has exactly the hub's holds (those released while
        the hub was away are gone)."""
        if self._track_holds:
            by_category: dict[int, list[HoldView]] = {cid: [] for cid in state.complete}
            for hold in state.holds:
                if hold.category_id in by_category:
                    by_category[hold.category_id].append(hold)
            for category_id, holds in by_category.items():
                self._replace_holds(category_id, holds)
            self.add_holds(state.holds)
        self._complete.update(state.complete)
        for availability in state.availability:
            self.note(availability)

    def state(self) -> FeedState:
        return FeedState(
            availability=tuple(self.availability.values()),
            holds=tuple(self.holds.values()),
            complete=tuple(self._complete),
        )

    def hold_count(self, user_id: int) -> int:
        """How many holds the user has, counting any that expired in the last moments before
        their actor announced it: O(1), for a check made on every hold request."""
        return len(self._by_owner.get(user_id, ()))

    def holds_of(self, user_id: int, now: float) -> list[HoldView]:
        owned = self._by_owner.get(user_id, {})
        return [h for h in owned.values() if h.expires_at > now]
