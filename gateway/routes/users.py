"""`/api/user`: the profile of whoever the token says is asking.

The token names the user; the row gives the username, so a stale token for a vanished user is a 401.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import Caller, RuntimeDep, unauthorized
from gateway.schemas import UserOut
from persistence import users

router = APIRouter(tags=["user"])


@router.get("/user", response_model=UserOut)
async def profile(caller: Caller, runtime: RuntimeDep) -> UserOut:
    async with runtime.db.connect() as conn:
        user = await users.get_user(conn, caller.user_id)
    if user is None:
        raise unauthorized()
    return UserOut(id=user.id, username=user.username, role=user.role)
