"""Who is asking: password hashing, the HS256 tokens that carry identity, and the one check
(`Authenticator`) every adapter runs on a token, so REST and Socket.IO accept and refuse
exactly the same callers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

import bcrypt
import jwt

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ALGORITHM = "HS256"
SINCE_CLAIM = "uat"
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp")


class Role(StrEnum):
    ASSISTANT = "assistant"
    ORGANIZER = "organizer"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not signed by us."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified identity behind a request: it only ever comes from a token."""

    user_id: int
    role: Role
    # The token's `exp`: a long-lived session (a socket) must stop trusting it after this.
    expires_at: float = field(default=math.inf, compare=False)
    # The user row's creation stamp the token was issued for (`user_stamp`): a token names
    # one row, not whichever row later gets the same id (a wiped database, a kept secret).
    since: int | None = field(default=None, compare=False)

    @property
    def is_organizer(self) -> bool:
        return self.role is Role.ORGANIZER


class TokenService:
    """Issues and verifies tokens. A verified token is remembered (bounded, and only until its
    `exp`): a client sends the same bytes with every request, and PyJWT re-parses the key, the
    header and the claims each time, a fifth of a hot request's CPU."""

    def __init__(
        self,
        secret: str,
        lifetime: timedelta,
        remembered: int = 16_384,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a token secret is required")
        self._secret = secret
        self._lifetime = lifetime
        self._remembered = remembered
        self._clock = clock
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def issue(
        self, user_id: int, role: Role, now: float | None = None, *, since: int | None = None
    ) -> str:
        """A token for `user_id`; `since` (the row's `user_stamp`) binds it to that row."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, str | int] = {
            "sub": str(user_id),
            "role": role.value,
            "iat": issued,
            "exp": issued + int(self._lifetime.total_seconds()),
        }
        if since is not None:
            claims[SINCE_CLAIM] = since
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise InvalidToken("missing token")
        known = self._verified.get(token)
        if known is not None:
            principal, expires = known
            if self._clock() < expires:
                return principal
            raise InvalidToken("expired")  # stays remembered as expired until evicted
        principal, expires = self._decode(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self._remembered:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": list(REQUIRED_CLAIMS)},
            )
            user_id = int(claims["sub"])
            role = Role(claims["role"])
            expires = float(claims["exp"])
            since = claims.get(SINCE_CLAIM)
            if since is not None and (not isinstance(since, int) or isinstance(since, bool)):
                raise ValueError("bad user stamp")
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(str(exc)) from exc
        if user_id <= 0:
            raise InvalidToken("bad subject")
        return Principal(user_id=user_id, role=role, expires_at=expires, since=since), expires


def user_stamp(created_at: datetime) -> int:
    """A user row's creation time in whole microseconds: what a token is bound to."""
    return (created_at - _EPOCH) // timedelta(microseconds=1)


class UserDirectory(Protocol):
    async def user_since(self, user_id: int) -> int | None:
        """The `user_stamp` of the user row `user_id`, or None when there is none."""
        ...


class Authenticator:
    """A verified token of a user that still exists: the only source of a `Principal`."""

    def __init__(self, tokens: TokenService, users: UserDirectory) -> None:
        self._tokens = tokens
        self._users = users

    async def principal(self, token: str | None) -> Principal:
        principal = self._tokens.verify(token)
        # A verified token can outlive its user, and its id can be reused by another (a wiped
        # database behind a kept secret): the row must be the very one it was issued for.
        since = await self._users.user_since(principal.user_id)
        if since is None or since != principal.since:
            raise InvalidToken("unknown user")
        return principal


class HashingBusy(Exception):
    """Every hashing slot is taken: the caller is answered at once instead of queueing."""


class PasswordHasher:
    """bcrypt, run off the event loop on threads of its own, with a bounded queue.

    One hash at cost 12 is about 0.25 s of CPU: an unbounded queue in front of it let a few
    logins per second pile up minutes of work. Past `workers` running and `queue` waiting, a
    hash or check raises `HashingBusy` at once (a 503 with Retry-After).
    """

    def __init__(self, rounds: int = 12, *, workers: int = 2, queue: int = 16) -> None:
        self._rounds = rounds
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        self._bound = workers + queue
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    async def hash(self, password: str) -> str:
        return await self._run(self._hash, password)

    async def verify(self, password: str, hashed: str) -> bool:
        return await self._run(self._verify, password, hashed)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        if self._pending >= self._bound:
            raise HashingBusy(f"{self._pending} password checks are already waiting")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        finally:
            self._pending -= 1

    def _hash(self, password: str) -> str:
        salt = bcrypt.gensalt(rounds=self._rounds)
        return bcrypt.hashpw(password.encode(), salt).decode()

    @staticmethod
    def _verify(password: str, hashed: str) -> bool:
        try:
            return bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            return False
