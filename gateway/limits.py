"""How much any one caller may ask of a gateway: requests per user and per address, login and
register attempts per address and per username. Over the limit is a 429 with `Retry-After`.

Checked on every request, the hot path included, so each check is a dict lookup and a token
bucket: no lock, no I/O, and a bounded number of keys (least recently seen forgotten first).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config import Settings
from gateway.errors import ApiError, error_response
from realtime.ratelimit import TokenBucket

TOO_MANY_REQUESTS = "Too many requests; slow down"
TOO_MANY_ATTEMPTS = "Too many login or register attempts; try again later"


class KeyedLimiter:
    """A token bucket per key (`rate` per second, bursts of `burst`), at most `capacity` keys.

    Forgetting a key only forgives its caller, so the bound costs no safety against one client,
    and a flood of new keys (addresses, usernames) cannot grow memory.
    """

    __slots__ = ("_buckets", "_burst", "_capacity", "_clock", "_rate", "refused")

    def __init__(
        self,
        rate: float,
        burst: int,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        TokenBucket(rate, burst, 0.0)  # the same checks of rate and burst, at start
        self._rate = rate
        self._burst = burst
        self._capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()
        self.refused = 0  # requests this limiter turned away, for the metrics

    def __len__(self) -> int:
        return len(self._buckets)

    def retry_after(self, key: Hashable) -> int:
        """Spend one of `key`'s tokens: 0 when allowed, else whole seconds until one is back."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, now)
            if len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        if bucket.take(now):
            return 0
        self.refused += 1
        return max(1, math.ceil(bucket.wait()))


def too_many(retry_after: int, error: str = TOO_MANY_REQUESTS) -> ApiError:
    return ApiError(429, error, headers={"Retry-After": str(retry_after)})


@functools.lru_cache(maxsize=4096)
def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # not an IP (a unix socket's path, a test client's name): limited


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit one gateway process applies, built once from the settings."""

    per_user: KeyedLimiter
    per_address: KeyedLimiter
    auth_per_address: KeyedLimiter
    auth_per_username: KeyedLimiter
    limit_loopback: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        keys = settings.rate_limit_keys
        per_minute = 1 / 60
        return cls(
            per_user=KeyedLimiter(
                settings.rate_limit_per_user, settings.rate_limit_user_burst, keys
            ),
            per_address=KeyedLimiter(
                settings.rate_limit_per_address, settings.rate_limit_address_burst, keys
            ),
            auth_per_address=KeyedLimiter(
                settings.auth_attempts_per_minute_per_address * per_minute,
                settings.auth_attempts_per_minute_per_address,
                keys,
            ),
            auth_per_username=KeyedLimiter(
                settings.auth_attempts_per_minute_per_username * per_minute,
                settings.auth_attempts_per_minute_per_username,
                keys,
            ),
            limit_loopback=settings.rate_limit_loopback,
        )

    def check_user(self, user_id: int) -> None:
        wait = self.per_user.retry_after(user_id)
        if wait:
            raise too_many(wait)

    def check_address(self, address: str | None) -> None:
        if address is None or self._exempt(address):
            return
        wait = self.per_address.retry_after(address)
        if wait:
            raise too_many(wait)

    def check_auth(self, address: str | None, username: str) -> None:
        """Before any password is hashed: per address, then per (case-folded) username."""
        if address is not None and not self._exempt(address):
            wait = self.auth_per_address.retry_after(address)
            if wait:
                raise too_many(wait, TOO_MANY_ATTEMPTS)
        wait = self.auth_per_username.retry_after(username.strip().casefold())
        if wait:
            raise too_many(wait, TOO_MANY_ATTEMPTS)

    def _exempt(self, address: str) -> bool:
        # Loopback is exempt by default: the load harness sends 50,000 requests/s from
        # 127.0.0.1, and behind a reverse proxy on the same host every client has its address.
        return not self.limit_loopback and is_loopback(address)


class AddressLimit:
    """The per-address request limit, in front of every REST route (the hot paths too)."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            try:
                self.limits.check_address(client[0] if client else None)
            except ApiError as refused:
                response = error_response(429, refused.error, headers=refused.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
