"""Counters and histograms as plain numbers, for the hot paths of every layer to bump.

No locks and no allocation per observation beyond a dict slot the first time a label set is
seen: a request or a socket event pays an add, not a prometheus_client `inc()` (a lock each).
Everything here runs on one event loop. `gateway.metrics` reads these at scrape time and
writes them out in Prometheus' format; the labels must come from bounded sets (route
templates, refusal reasons, registered event names), never from client input.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Sequence

# Seconds: from a fast hold on loopback (~0.2 ms) to a request stuck on a dependency.
LATENCY_BOUNDS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Counts:
    """Counters by label tuple (or a single label)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[Hashable, float] = {}

    def add(self, key: Hashable, amount: float = 1) -> None:
        values = self.values
        values[key] = values.get(key, 0) + amount

    def get(self, key: Hashable) -> float:
        return self.values.get(key, 0)


class Histograms:
    """Histograms by label tuple, with fixed upper bounds (`le`), Prometheus style.

    Each series is a list: one count per bound, one for +Inf, then the sum of observations.
    """

    __slots__ = ("bounds", "series")

    def __init__(self, bounds: Sequence[float] = LATENCY_BOUNDS) -> None:
        self.bounds = tuple(bounds)
        self.series: dict[Hashable, list[float]] = {}

    def observe(self, key: Hashable, value: float) -> None:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = [0.0] * (len(self.bounds) + 2)
        series[bisect_left(self.bounds, value)] += 1
        series[-1] += value

    def merge(self, key: Hashable, deltas: Sequence[float]) -> None:
        """Add another process's observations (a series as `take` returned it)."""
        if len(deltas) != len(self.bounds) + 2:
            return  # another build's bounds: not comparable
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = [0.0] * (len(self.bounds) + 2)
        for index, delta in enumerate(deltas):
            series[index] += delta

    def take(self, key: Hashable) -> tuple[float, ...]:
        """The series' observations since the last `take`, and forget them."""
        series = self.series.pop(key, None)
        return tuple(series) if series is not None else ()

    def cumulative(self, key: Hashable) -> tuple[list[tuple[str, float]], float]:
        """Prometheus' buckets `[(le, count of observations <= le), ...]` and the sum."""
        series = self.series[key]
        buckets: list[tuple[str, float]] = []
        running = 0.0
        for bound, count in zip((*self.bounds, float("inf")), series[:-1], strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets, series[-1]
