"""The one retrying call every named actor goes through (categories and waiting-room queues), on
a real Ray runtime: a call that hangs answers `Unavailable` at its deadline, the first call of a
key gets the longer start deadline, a refusal comes through as itself, and a missing subject
ends the actor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import ray

from actors.refusals import Refusal, RefusalReason
from actors.remote import Missing, QueueHandles, Unavailable
from tests.fixtures.ray_runtime import kill_namespace
from tests.gateway.conftest import poll


@dataclass(frozen=True)
class Config:
    namespace: str
    call_retries: int = 30
    call_timeout_seconds: float = 0.5
    start_timeout_seconds: float = 20.0


class Stub:
    """An actor with one method per outcome; built as `Stub(config, key)` like ours."""

    def __init__(self, config: Config, key: int) -> None:
        self.key = key

    async def answer(self) -> int:
        return self.key

    async def hang(self) -> None:
        await asyncio.sleep(3600)

    async def refuse(self) -> None:
        raise Refusal("no seats for you", RefusalReason.NOT_ENOUGH_SEATS)

    async def vanish(self) -> None:
        raise Missing(f"event {self.key} is gone")


@pytest.fixture
def config(ray_runtime: None) -> Iterator[Config]:
    chosen = Config(namespace=f"named-{uuid.uuid4().hex[:12]}")
    yield chosen
    kill_namespace(chosen.namespace)


async def test_a_hung_call_answers_unavailable_at_the_short_deadline_once_answered(
    config: Config,
) -> None:
    actors = QueueHandles(config, Stub)
    assert actors.deadline(4) == config.start_timeout_seconds  # never answered yet
    assert await actors.call(4, "answer") == 4
    assert actors.deadline(4) == config.call_timeout_seconds
    # The short deadline, not the start one: the message names the deadline that fired.
    with pytest.raises(Unavailable, match=r"the queue of event 4 did not answer within 0\.5 s"):
        await actors.call(4, "hang")
    assert actors.retried == 0  # a hang is not retried: the call may still run


async def test_a_refusal_comes_through_as_itself_and_keeps_the_actor(config: Config) -> None:
    actors = QueueHandles(config, Stub)
    with pytest.raises(Refusal) as refused:
        await actors.call(5, "refuse")
    assert refused.value.reason == RefusalReason.NOT_ENOUGH_SEATS
    assert refused.value.message == "no seats for you"
    assert actors.retried == 0
    assert await actors.call(5, "answer") == 5


async def test_a_missing_subject_ends_its_actor(config: Config) -> None:
    actors = QueueHandles(config, Stub)
    assert await actors.call(6, "answer") == 6
    with pytest.raises(Missing, match="event 6 is gone"):
        await actors.call(6, "vanish")

    async def ended() -> bool:
        named = ray.util.list_named_actors(all_namespaces=True)
        return not [e for e in named if e["namespace"] == config.namespace]

    await poll(ended, within=20)
    assert actors.deadline(6) == config.start_timeout_seconds  # forgotten: a new one starts
