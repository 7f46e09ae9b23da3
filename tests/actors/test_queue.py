"""The waiting room's pure core, without Ray: the draw, arrival order, the admission rate over
simulated time, one admission per buyer, and pausing on the seats left."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.queue import Admission, EntryState, RoomSettings, WaitingRoom

OPENS = 1_000.0
PASS = 600.0
TICK = 0.1


def room(rate: int = 10, opens_at: float = OPENS) -> WaitingRoom:
    return WaitingRoom(7, RoomSettings(rate, opens_at, PASS))


def opened(waiting_room: WaitingRoom, seed: int = 1) -> list[int]:
    order = waiting_room.draw(random.Random(seed))
    waiting_room.open(order)
    return order


def run(
    waiting_room: WaitingRoom, start: float, seconds: float, free_seats: int = 10**9
) -> list[Admission]:
    """Tick every 0.1 s of simulated time, admitting whatever the room plans."""
    admissions: list[Admission] = []
    steps = round(seconds / TICK)
    for step in range(steps + 1):
        plan = waiting_room.plan(start + step * TICK, free_seats, sold_out=False)
        if plan is not None:
            waiting_room.admit(plan)
            admissions.append(plan)
    return admissions


def admitted_users(admissions: list[Admission]) -> list[int]:
    return [user for admission in admissions for user in admission.users]


@given(users=st.lists(st.integers(1, 10_000), unique=True, max_size=200), seed=st.integers())
def test_the_draw_is_a_permutation_of_everyone_who_joined_early(
    users: list[int], seed: int
) -> None:
    waiting_room = room()
    for user in users:
        assert waiting_room.join(user)
    order = opened(waiting_room, seed)
    assert sorted(order) == sorted(users)
    assert waiting_room.line() == order
    assert waiting_room.opened


def test_the_draw_does_not_favour_the_first_to_join() -> None:
    # Over many draws of 10 early buyers, the first to join comes first about a tenth of the
    # time (never always, as arrival order would have it).
    firsts = 0
    for seed in range(400):
        waiting_room = room()
        for user in range(1, 11):
            waiting_room.join(user)
        firsts += opened(waiting_room, seed)[0] == 1
    assert 10 <= firsts <= 80


def test_a_draw_that_is_not_a_permutation_is_refused() -> None:
    waiting_room = room()
    for user in (1, 2, 3):
        waiting_room.join(user)
    with pytest.raises(ValueError):
        waiting_room.open([1, 2])
    with pytest.raises(ValueError):
        waiting_room.open([1, 2, 4])
    assert not waiting_room.opened


@given(
    early=st.lists(st.integers(1, 500), unique=True, max_size=50),
    later=st.lists(st.integers(501, 1000), unique=True, max_size=50),
)
def test_later_arrivals_queue_behind_the_draw_in_arrival_order(
    early: list[int], later: list[int]
) -> None:
    waiting_room = room()
    for user in early:
        waiting_room.join(user)
    order = opened(waiting_room)
    for user in later:
        waiting_room.join(user)
    assert waiting_room.line() == order + later
    admissions = run(waiting_room, OPENS, 20)
    assert admitted_users(admissions) == order + later


def test_one_entry_per_user() -> None:
    waiting_room = room()
    assert waiting_room.join(5)
    assert not waiting_room.join(5)
    opened(waiting_room)
    assert not waiting_room.join(5)
    assert waiting_room.line() == [5]


@settings(max_examples=40, deadline=None)
@given(rate=st.integers(1, 2_000), seconds=st.integers(1, 20))
def test_the_admission_rate_is_respected_over_simulated_time(rate: int, seconds: int) -> None:
    waiting_room = room(rate)
    for user in range(rate * (seconds + 2)):
        waiting_room.join(user)
    opened(waiting_room)
    admissions = run(waiting_room, OPENS, seconds)
    count = len(admitted_users(admissions))
    # The first tick admits nothing (no time has passed); after it, the rate, give or take
    # one tick's rounding.
    assert rate * seconds - max(rate * TICK, 1) <= count <= rate * seconds + 1
    # Never more than the rate in any one second.
    for second in range(seconds):
        window = [a for a in admissions if OPENS + second < a.admitted_at <= OPENS + second + 1]
        assert sum(len(a.users) for a in window) <= rate + 1


@given(
    users=st.lists(st.integers(1, 300), unique=True, min_size=1, max_size=100),
    free=st.lists(st.integers(0, 30), min_size=1, max_size=40),
    used=st.lists(st.integers(1, 300), max_size=60),
)
def test_nobody_is_admitted_twice(users: list[int], free: list[int], used: list[int]) -> None:
    waiting_room = room(rate=50)
    for user in users:
        waiting_room.join(user)
    opened(waiting_room)
    seen: list[int] = []
    for step, seats in enumerate(free):
        now = OPENS + step * TICK
        plan = waiting_room.plan(now, seats, sold_out=False)
        if plan is not None:
            waiting_room.admit(plan)
            seen.extend(plan.users)
        waiting_room.used(used[step : step + 2])
        # Each admitted buyer not yet seen to take seats covers one free seat.
        assert waiting_room.covering(now) <= max(seats, 0) or plan is None
    assert len(seen) == len(set(seen))
    assert seen == waiting_room.line()[: len(seen)]


def test_admission_pauses_while_admitted_buyers_cover_the_free_seats_and_resumes() -> None:
    waiting_room = room(rate=100)
    for user in range(1, 101):
        waiting_room.join(user)
    opened(waiting_room)
    first = run(waiting_room, OPENS, 1, free_seats=5)
    assert len(admitted_users(first)) == 5  # five seats, five admitted buyers covering them
    assert run(waiting_room, OPENS + 2, 1, free_seats=5) == []  # paused
    # Two of them bought: two seats fewer, but two buyers fewer covering them.
    waiting_room.used(admitted_users(first)[:2])
    more = run(waiting_room, OPENS + 4, 1, free_seats=5)
    assert len(admitted_users(more)) == 2
    # Seats come free (a cancellation): admission resumes.
    resumed = run(waiting_room, OPENS + 6, 1, free_seats=25)
    assert len(admitted_users(resumed)) == 20


def test_an_expired_unused_pass_stops_covering_a_seat() -> None:
    waiting_room = room(rate=100)
    for user in range(1, 11):
        waiting_room.join(user)
    opened(waiting_room)
    run(waiting_room, OPENS, 1, free_seats=1)
    assert waiting_room.covering(OPENS + 1) == 1
    assert waiting_room.covering(OPENS + PASS + 1) == 0
    assert len(admitted_users(run(waiting_room, OPENS + PASS + 1, 1, free_seats=1))) == 1


def test_sold_out_closes_the_room_for_good() -> None:
    waiting_room = room(rate=100)
    for user in range(1, 11):
        waiting_room.join(user)
    opened(waiting_room)
    assert waiting_room.plan(OPENS, 10, sold_out=True) is None
    assert waiting_room.closed
    assert run(waiting_room, OPENS + 1, 2, free_seats=10) == []
    place = waiting_room.place(3)
    assert place is not None and place.closed and not place.admitted


def test_nobody_is_admitted_before_the_opening() -> None:
    waiting_room = room(rate=100)
    waiting_room.join(1)
    assert waiting_room.plan(OPENS - 1, 10, sold_out=False) is None
    assert waiting_room.due_to_open(OPENS)
    assert not waiting_room.due_to_open(OPENS - 0.001)


def test_a_place_counts_down_to_admission() -> None:
    waiting_room = room(rate=2)
    for user in range(1, 6):
        waiting_room.join(user)
    before = waiting_room.place(1)
    assert before is not None and before.position is None and before.waiting == 5
    order = opened(waiting_room)
    last = waiting_room.place(order[-1])
    assert last is not None and last.position == 5 and last.ahead == 4
    assert last.eta_seconds == 2.0
    run(waiting_room, OPENS, 1)
    after = waiting_room.place(order[-1])
    assert after is not None and after.position == 3
    first = waiting_room.place(order[0])
    assert (
        first is not None
        and first.admitted
        and first.pass_expires_at
        == pytest.approx(first.admitted_at + PASS if first.admitted_at is not None else 0)
    )
    assert waiting_room.place(99) is None


def test_an_admission_out_of_turn_is_refused() -> None:
    waiting_room = room(rate=100)
    for user in range(1, 4):
        waiting_room.join(user)
    opened(waiting_room)
    with pytest.raises(ValueError):
        waiting_room.admit(Admission((2,), OPENS, OPENS + PASS, first_index=1))


@given(
    early=st.lists(st.integers(1, 500), unique=True, max_size=40),
    later=st.lists(st.integers(501, 1000), unique=True, max_size=40),
    admit_seconds=st.integers(0, 6),
    seed=st.integers(),
)
def test_a_restore_keeps_the_order_and_the_passes(
    early: list[int], later: list[int], admit_seconds: int, seed: int
) -> None:
    waiting_room = room(rate=5)
    seqs: dict[int, int] = {}
    for user in early:
        waiting_room.join(user)
        seqs[user] = len(seqs)
    order = opened(waiting_room, seed)
    for user in later:
        waiting_room.join(user)
        seqs[user] = len(seqs)
    admissions = run(waiting_room, OPENS, admit_seconds)
    issued = {u: (a.admitted_at, a.expires_at) for a in admissions for u in a.users}
    rank = {user: index for index, user in enumerate(order)}
    entries = [
        EntryState(
            user,
            seqs[user],
            user in rank,
            rank.get(user),
            issued[user][0] if user in issued else None,
            issued[user][1] if user in issued else None,
        )
        for user in seqs
    ]
    random.Random(seed).shuffle(entries)
    restored, draw_due = WaitingRoom.restore(7, waiting_room.settings, entries, OPENS + 10)
    # An empty room's draw left nothing to store: it is simply drawn again (empty).
    assert draw_due == (not early and not later)
    if draw_due:
        restored.open(restored.draw(random.Random(seed)))
    assert restored.line() == waiting_room.line()
    assert restored.served == waiting_room.served
    for user in seqs:
        assert restored.place(user) == waiting_room.place(user)


def test_a_restore_after_the_opening_but_before_the_draw_was_stored_draws_then() -> None:
    entries = [EntryState(user, user, True, None) for user in (3, 1, 2)]
    restored, draw_due = WaitingRoom.restore(7, RoomSettings(5, OPENS, PASS), entries, OPENS + 1)
    assert draw_due and not restored.opened
    assert sorted(restored.early()) == [1, 2, 3]
    restored.open(restored.draw(random.Random(3)))
    assert sorted(restored.line()) == [1, 2, 3]
