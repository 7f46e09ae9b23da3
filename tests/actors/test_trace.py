"""The request id travels with the commands it causes, into the actor call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from actors.client import SeatClient
from actors.messages import Command, Outcome
from actors.refusals import Refusal
from actors.trace import REQUEST_ID
from persistence.records import EventRecord


async def test_each_command_carries_the_id_of_its_request(
    engine: SeatClient, make_category: Callable[..., Awaitable[EventRecord]]
) -> None:
    event = await make_category(seats=2)
    category = event.categories[0].id
    sent: list[Command] = []
    send = engine._batcher._send

    async def spy(category_id: int, commands: list[Command]) -> list[Outcome]:
        sent.extend(commands)
        return await send(category_id, commands)  # the real actor answers

    engine._batcher._send = spy
    REQUEST_ID.set("req-hold")
    placed = await engine.hold(user_id=7, event_id=event.id, category_id=category, quantity=2)
    REQUEST_ID.set("req-refused")
    with pytest.raises(Refusal):
        await engine.hold(user_id=8, event_id=event.id, category_id=category, quantity=1)
    REQUEST_ID.set("req-release")
    await engine.release(user_id=7, category_id=category, lock_id=placed.hold.lock_id)
    assert [command.trace for command in sent] == ["req-hold", "req-refused", "req-release"]
