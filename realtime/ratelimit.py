"""A token bucket: how many events (socket events, requests) a client may send, and how fast.

Plain Python with the clock passed in, so tests drive it without sleeping.
"""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens per second refill a bucket of `burst`; every event takes one."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the event must be dropped."""
        elapsed = max(0.0, now - self._stamp)
        self._stamp = max(self._stamp, now)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait(self) -> float:
        """Seconds until the next token, as of the last `take` (0 when one is there)."""
        return max(0.0, (1.0 - self._tokens) / self._rate)
