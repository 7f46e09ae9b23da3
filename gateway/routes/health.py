"""`/api/health`: is this gateway able to sell, i.e. do PostgreSQL and the engine answer.

200 when both do, else 503 in the error shape naming what is down. `realtime` (the change
feed) is reported beside them but never fails the check: a load balancer must not drain a
gateway that sells while the feed's hub restarts, or while one remote node is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter

from gateway.deps import RuntimeDep
from gateway.errors import ApiError
from gateway.schemas import HealthOut
from persistence.database import ping

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 3.0


async def _answers(check: Awaitable[bool]) -> bool:
    try:
        return await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except Exception:
        return False


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"description": "PostgreSQL or the engine is not answering"}},
)
async def health(runtime: RuntimeDep) -> HealthOut:
    database, ray, realtime = await asyncio.gather(
        _answers(ping(runtime.db)),
        _answers(runtime.seats.selling()),
        _answers(runtime.seats.realtime()),
    )
    if not (database and ray):
        down = [name for name, ok in (("database", database), ("ray", ray)) if not ok]
        raise ApiError(503, f"Unavailable: {', '.join(down)}")
    return HealthOut(status="ok", database=True, ray=True, realtime=realtime)
