"""The per-connection token bucket, driven by a fake clock."""

from __future__ import annotations

import pytest

from realtime.ratelimit import TokenBucket


def test_a_burst_passes_then_the_next_event_is_dropped() -> None:
    bucket = TokenBucket(rate=5, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_tokens_refill_at_the_rate_and_never_beyond_the_burst() -> None:
    bucket = TokenBucket(rate=2, burst=2, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.1)  # 0.2 of a token so far
    assert bucket.take(0.5)  # one token back after half a second
    assert not bucket.take(0.5)
    # A long idle time refills to the burst, not more.
    assert [bucket.take(60.0) for _ in range(3)] == [True, True, False]


def test_a_clock_that_steps_back_grants_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst, now=0.0)
