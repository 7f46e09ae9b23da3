"""The feed mirror alone: a user's holds are found through the owner index, which every way of
changing the mirror keeps in step with the holds themselves."""

from __future__ import annotations

from actors.messages import Availability, CategoryChanged, FeedState, HoldView
from actors.mirror import FeedMirror

NOW = 1_700_000_000.0


def hold(lock_id: str, owner: int, expires_at: float = NOW + 60) -> HoldView:
    return HoldView(lock_id, owner, 7, 3, 1, expires_at)


def changed(
    version: int, added: tuple[HoldView, ...] = (), removed: tuple[str, ...] = ()
) -> CategoryChanged:
    return CategoryChanged(Availability(7, 3, 10, 0, 0, version, NOW), added, removed)


def lock_ids(mirror: FeedMirror, owner: int) -> set[str]:
    return {h.lock_id for h in mirror.holds_of(owner, NOW)}


def test_a_users_holds_follow_every_change() -> None:
    mirror = FeedMirror()
    mirror.apply(changed(1, (hold("a", 1), hold("b", 1), hold("c", 2))))
    assert lock_ids(mirror, 1) == {"a", "b"} and lock_ids(mirror, 2) == {"c"}

    mirror.apply(changed(2, removed=("a",)))
    mirror.drop_holds(["c"])
    mirror.add_holds([hold("d", 2)])
    assert lock_ids(mirror, 1) == {"b"} and lock_ids(mirror, 2) == {"d"}
    assert (mirror.hold_count(1), mirror.hold_count(2)) == (1, 1)

    # A stale change is not applied at all, its holds included.
    assert not mirror.apply(changed(1, (hold("e", 1),)))
    assert lock_ids(mirror, 1) == {"b"}


def test_expired_holds_are_not_a_users_and_a_reset_starts_over() -> None:
    mirror = FeedMirror()
    mirror.add_holds([hold("old", 1, expires_at=NOW - 1), hold("live", 1)])
    assert lock_ids(mirror, 1) == {"live"}
    # The count is the cheap one: it includes a hold its actor has not yet announced expired.
    assert mirror.hold_count(1) == 2 and mirror.hold_count(3) == 0

    mirror.reset(FeedState(availability=(), holds=(hold("x", 2),)))
    assert lock_ids(mirror, 1) == set() and lock_ids(mirror, 2) == {"x"}
    assert set(mirror.holds) == {"x"}


def test_a_publisher_mirror_keeps_no_holds() -> None:
    mirror = FeedMirror(track_holds=False)
    mirror.apply(changed(1, (hold("a", 1),)))
    mirror.reset(FeedState(availability=(), holds=(hold("b", 1),)))
    assert mirror.holds == {} and lock_ids(mirror, 1) == set()
