"""The queue actors as a gateway process sees them: join, read places, and report admitted
buyers who took seats (batched: one call per event every few tenths of a second).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from actors.queue import QueuePlace
from actors.queue_actor import NO_WAITING_ROOM, QueueActor, QueueConfig
from actors.refusals import NoWaitingRoom
from actors.remote import Missing, QueueHandles

log = logging.getLogger(__name__)

USED_FLUSH_SECONDS = 0.2
# Reports waiting to be flushed, at most: past that the oldest are dropped (they only make
# admission a little more cautious for a pass's lifetime).
USED_BACKLOG = 100_000


class QueueClient:
    def __init__(self, config: QueueConfig) -> None:
        self._handles = QueueHandles(config, QueueActor)
        self._used: dict[int, set[int]] = {}
        self._backlog = 0
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_forever())

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self._flush()

    async def join(self, event_id: int, user_id: int) -> QueuePlace:
        place: QueuePlace = await self._call(event_id, "join", user_id)
        return place

    async def places(self, event_id: int, user_ids: Sequence[int]) -> list[QueuePlace | None]:
        places: list[QueuePlace | None] = await self._call(event_id, "places", list(user_ids))
        return places

    async def line(self, event_id: int) -> list[int]:
        line: list[int] = await self._call(event_id, "line")
        return line

    def note_used(self, event_id: int, user_id: int) -> None:
        """An admitted buyer took seats; told to the queue with the next flush."""
        if self._backlog >= USED_BACKLOG:
            return
        users = self._used.setdefault(event_id, set())
        if user_id not in users:
            users.add(user_id)
            self._backlog += 1

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(USED_FLUSH_SECONDS)
            await self._flush()

    async def _flush(self) -> None:
        pending, self._used, self._backlog = self._used, {}, 0
        for event_id, users in pending.items():
            try:
                await self._call(event_id, "used", sorted(users))
            except Exception as exc:
                log.warning("queue of event %s not told of buyers: %s", event_id, exc)

    async def _call(self, event_id: int, method: str, *args: object) -> Any:
        try:
            return await self._handles.call(event_id, method, *args)
        except Missing:
            raise NoWaitingRoom(NO_WAITING_ROOM) from None
