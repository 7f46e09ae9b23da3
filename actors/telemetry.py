"""Metrics from inside the category actors, which are other processes (maybe on other nodes).

The actor counts in plain numbers (`ActorStats`) and, from its housekeeping loop, sends what
it counted since the last time as one `ActorReport` on the change feed every few seconds;
every gateway adds the reports up (`ActorTally`). No call on the hot path: a group commit
costs two clock reads and a histogram slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from actors.messages import ActorReport, FeedItem
from actors.tally import LATENCY_BOUNDS, Histograms

REPORT_SECONDS = 5.0
# An actor not heard of for this long is gone (crashed; a passivating one says so).
SILENT_SECONDS = 3 * REPORT_SECONDS
BATCH_BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
ACTIVATION_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ActorStats:
    """Kept by one category actor."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.batch_sizes = Histograms(BATCH_BOUNDS)
        self.commit_seconds = Histograms(LATENCY_BOUNDS)
        self.activation_seconds: float | None = None
        self._last_report = clock()
        self._announced = False

    def committed(self, orders: int, seconds: float) -> None:
        self.batch_sizes.observe(None, orders)
        self.commit_seconds.observe(None, seconds)

    def report(self, category_id: int, *, live: bool = True) -> ActorReport | None:
        """What to send now (None: not yet due). The last one (`live=False`) is always due."""
        now = self._clock()
        if live and self._announced and now - self._last_report < REPORT_SECONDS:
            return None
        self._last_report = now
        activation = None if self._announced else self.activation_seconds
        self._announced = True
        return ActorReport(
            category_id,
            live,
            activation,
            self.batch_sizes.take(None),
            self.commit_seconds.take(None),
        )


class ActorTally:
    """Kept by each gateway: the reports of every category actor, added up."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.activation = Histograms(ACTIVATION_BOUNDS)
        self.batch_size = Histograms(BATCH_BOUNDS)
        self.commit_seconds = Histograms(LATENCY_BOUNDS)
        self._heard: dict[int, float] = {}  # category id -> when its actor last reported

    def __call__(self, item: FeedItem) -> None:
        if not isinstance(item, ActorReport):
            return
        if item.live:
            self._heard[item.category_id] = self._clock()
        else:
            self._heard.pop(item.category_id, None)
        if item.activation_seconds is not None:
            self.activation.observe(None, item.activation_seconds)
        if item.batch_sizes:
            self.batch_size.merge(None, item.batch_sizes)
        if item.commit_seconds:
            self.commit_seconds.merge(None, item.commit_seconds)

    def live(self) -> int:
        cutoff = self._clock() - SILENT_SECONDS
        for category_id in [c for c, heard in self._heard.items() if heard < cutoff]:
            del self._heard[category_id]
        return len(self._heard)
