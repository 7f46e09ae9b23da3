"""The fan-out scenario's latency: a change counts as shown once its socket shows that state
or a newer one, never before, and a change a socket never showed is counted, not skipped."""

from __future__ import annotations

from benchmarks.scenarios import shown_after

# Three changes: 99 seats left sent at t=10, 98 at t=11, 97 at t=12.
SENT = {99: 10.0, 98: 11.0, 97: 12.0}


def update(at: float, seats: int, socket: int) -> tuple[float, int, int, str, int]:
    return (at, seats, 1, "", socket)


def figures(*updates: tuple[float, int, int, str, int]) -> tuple[list[tuple[float, float]], int]:
    shown, unshown = shown_after(list(updates), SENT)
    return sorted((sent, round(latency, 3)) for sent, latency in shown), unshown


def test_every_change_heard_on_its_own() -> None:
    heard = figures(update(10.1, 99, 1), update(11.2, 98, 1), update(12.3, 97, 1))
    assert heard == ([(10.0, 0.1), (11.0, 0.2), (12.0, 0.3)], 0)


def test_a_change_inside_a_newer_state_counts_when_that_state_arrived() -> None:
    # Socket 2 fell behind: 99 and 98 reached it only inside 97, at t=12.5. Socket 1 showed
    # 99 and then nothing: its 98 and 97 are counted as never shown.
    heard = figures(update(10.1, 99, 1), update(12.5, 97, 2))
    assert heard == ([(10.0, 0.1), (10.0, 2.5), (11.0, 1.5), (12.0, 0.5)], 2)


def test_updates_are_read_in_arrival_order() -> None:
    heard = figures(update(12.2, 97, 1), update(10.5, 99, 1))
    assert heard == ([(10.0, 0.5), (11.0, 1.2), (12.0, 0.2)], 0)


def test_a_state_older_than_every_change_shows_none_of_them() -> None:
    assert figures(update(13.0, 100, 1)) == ([], 3)
