"""What the Socket.IO adapter counts: events by name, refusals of its rate limit, and the lag
from a change in an actor to its `availability-update` leaving this process (plain numbers,
see `actors.tally`; the gateway's metrics endpoint reads them)."""

from __future__ import annotations

from actors.tally import Counts, Histograms

# Seconds from the actor's change to the emit: the feed's batching window is 20 ms.
FEED_LAG_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class SocketTally:
    __slots__ = ("events", "feed_lag", "rate_limited")

    def __init__(self) -> None:
        self.events = Counts()  # by registered event name
        self.rate_limited = 0
        self.feed_lag = Histograms(FEED_LAG_BOUNDS)  # one series, key None
