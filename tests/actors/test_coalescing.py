"""The command batcher's deadline, in plain Python: it counts from submission, so a command
queued behind a call that hangs (an actor on a lost node) fails at its own deadline, and one
never sent is taken out of the queue instead of riding a later batch nobody waits for."""

from __future__ import annotations

import asyncio

import pytest

from actors.coalescing import CommandBatcher
from actors.messages import Command, Outcome, Refused, ReleaseHold
from actors.refusals import RefusalReason


def release(n: int) -> ReleaseHold:
    return ReleaseHold(f"request-{n}", owner=n, lock_id=f"lock-{n}")


async def test_a_command_behind_a_hung_call_fails_at_its_own_deadline_and_is_not_sent() -> None:
    sent: list[list[str]] = []
    hang, in_flight = asyncio.Event(), asyncio.Event()

    async def send(category_id: int, commands: list[Command]) -> list[Outcome]:
        sent.append([c.request_id for c in commands])
        in_flight.set()
        await hang.wait()  # never set: the actor does not answer
        raise AssertionError("unreachable")

    batcher = CommandBatcher(send)
    first = asyncio.ensure_future(batcher.submit(7, release(1), deadline=0.2))
    await in_flight.wait()
    with pytest.raises(TimeoutError):
        await batcher.submit(7, release(2), deadline=0.05)
    with pytest.raises(TimeoutError):
        await first
    assert sent == [["request-1"]]  # the second was never sent


async def test_without_a_deadline_queued_commands_ride_the_next_call() -> None:
    sent: list[list[str]] = []
    gate, in_flight = asyncio.Event(), asyncio.Event()

    async def send(category_id: int, commands: list[Command]) -> list[Outcome]:
        sent.append([c.request_id for c in commands])
        in_flight.set()
        await gate.wait()
        return [Refused(RefusalReason.HOLD_NOT_FOUND, "gone") for _ in commands]

    batcher = CommandBatcher(send)
    calls = [asyncio.ensure_future(batcher.submit(7, release(0)))]
    await in_flight.wait()
    calls += [asyncio.ensure_future(batcher.submit(7, release(n))) for n in (1, 2)]
    await asyncio.sleep(0)  # both queued
    gate.set()
    await asyncio.gather(*calls)
    assert sent == [["request-0"], ["request-1", "request-2"]]
