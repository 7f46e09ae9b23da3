"""Actor metrics: deltas reported every few seconds, added up by each gateway."""

from __future__ import annotations

from actors.messages import CatalogChanged
from actors.telemetry import REPORT_SECONDS, SILENT_SECONDS, ActorStats, ActorTally


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reports_carry_what_was_counted_since_the_last_one() -> None:
    clock = Clock()
    stats, tally = ActorStats(clock), ActorTally(clock)
    stats.activation_seconds = 0.3
    stats.committed(3, 0.002)
    stats.committed(40, 0.02)
    first = stats.report(7)
    assert first is not None and first.activation_seconds == 0.3
    tally(first)
    assert stats.report(7) is None  # not due yet
    stats.committed(1, 0.001)
    clock.now += REPORT_SECONDS
    second = stats.report(7)
    assert second is not None and second.activation_seconds is None  # activation once
    tally(second)
    tally(CatalogChanged(1))  # other feed items are not reports
    assert sum(tally.batch_size.series[None][:-1]) == 3
    assert tally.batch_size.series[None][-1] == 44  # 3 + 40 + 1 orders
    assert sum(tally.commit_seconds.series[None][:-1]) == 3
    assert sum(tally.activation.series[None][:-1]) == 1
    assert tally.live() == 1


def test_live_actors_are_those_heard_of_lately_and_not_passivated() -> None:
    clock = Clock()
    tally = ActorTally(clock)
    for category_id in (1, 2, 3):
        report = ActorStats(clock).report(category_id)
        assert report is not None
        tally(report)
    last = ActorStats(clock).report(2, live=False)
    assert last is not None and not last.live
    tally(last)
    assert tally.live() == 2
    clock.now += SILENT_SECONDS + 1  # category 1 and 3 crashed without a word
    assert tally.live() == 0
