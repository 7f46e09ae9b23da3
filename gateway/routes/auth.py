"""`/api/auth`: register and log in; the answer carries the JWT every other route expects.

The same message answers an unknown user and a wrong password, so usernames cannot be probed.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, status

from gateway.deps import RuntimeDep
from gateway.errors import ApiError
from gateway.schemas import LoginIn, RegisterIn, TokenOut, UserOut
from gateway.system import Runtime
from persistence import users
from persistence.errors import UsernameTaken
from sales.identity import PasswordHasher, Role, user_stamp

router = APIRouter(prefix="/auth", tags=["auth"])

BAD_CREDENTIALS = "Invalid username or password"


_THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many attempts from this address or for this username"},
    503: {"description": "Every password check is busy, or the database is not answering"},
}


def _throttle(request: Request, runtime: Runtime, username: str) -> None:
    """Before any hashing: attempts per address and per username (password guessing)."""
    client = request.client
    runtime.limits.check_auth(client.host if client else None, username)


@router.post(
    "/register", status_code=status.HTTP_201_CREATED, response_model=TokenOut, responses=_THROTTLED
)
async def register(body: RegisterIn, request: Request, runtime: RuntimeDep) -> TokenOut:
    _throttle(request, runtime, body.username)
    role = body.resolved_role
    hashed = await runtime.passwords.hash(body.password)
    try:
        async with runtime.db.begin() as conn:
            user = await users.create_user(conn, body.username, hashed, role.value)
    except UsernameTaken:
        raise ApiError(409, "Username already exists") from None
    return TokenOut(
        access_token=runtime.tokens.issue(user.id, role, since=user_stamp(user.created_at)),
        user=UserOut(id=user.id, username=user.username, role=role.value),
    )


@router.post("/login", response_model=TokenOut, responses=_THROTTLED)
async def login(body: LoginIn, request: Request, runtime: RuntimeDep) -> TokenOut:
    _throttle(request, runtime, body.username)
    async with runtime.db.connect() as conn:
        user = await users.get_user_by_username(conn, body.username)
    if user is None:
        # Spend the same time as a real check, so timing does not tell who exists.
        await runtime.passwords.verify(body.password, await _decoy_hash(runtime.passwords))
        raise ApiError(401, BAD_CREDENTIALS)
    if not await runtime.passwords.verify(body.password, user.password_hash):
        raise ApiError(401, BAD_CREDENTIALS)
    role = Role(user.role)
    return TokenOut(
        access_token=runtime.tokens.issue(user.id, role, since=user_stamp(user.created_at)),
        user=UserOut(id=user.id, username=user.username, role=role.value),
    )


_decoys: dict[int, str] = {}


async def _decoy_hash(passwords: PasswordHasher) -> str:
    """A hash of a random secret at the configured cost: never matches, costs the same."""
    decoy = _decoys.get(id(passwords))
    if decoy is None:
        decoy = _decoys[id(passwords)] = await passwords.hash(secrets.token_urlsafe(16))
    return decoy
