"""Spare worker processes (actors/spares.py), on the test session's real Ray node: a category
activates on a spare that had already imported the actor code, the node is stocked again
after it, a burst of stocking requests starts no more than the shortfall, and spares killed
with SIGKILL cost nothing but the head start."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

import psutil
import pytest
import ray

from actors import spares
from actors.client import SeatClient
from persistence.records import EventRecord
from tests.actors.test_category import actor_of
from tests.gateway.conftest import poll

# A module only the actor code imports (psycopg's compiled half): mapped in a spare that
# preloaded, before any category was placed on it.
PRELOADED_LIBRARY = "psycopg_binary"
NO_JOB = "ffffffff"  # Ray's nil job id, in a worker's RAY_JOB_ID


def job() -> str:
    return str(ray.get_runtime_context().get_job_id())


def ready_spares(of: str | None = None) -> set[int]:
    """Spares of a job (this one's by default) that have finished starting: titled idle."""
    found = set()
    for pid in spares.spares_of(spares._raylet_pid(), of or job()):
        try:
            if psutil.Process(pid).name() == spares.IDLE_TITLE:
                found.add(pid)
        except psutil.NoSuchProcess:
            continue
    return found


def idle_workers() -> set[int]:
    """Every idle worker an actor of this job could be placed on: its spares, and those the
    raylet started for no job yet (Ray's own few at the node's start)."""
    return ready_spares() | ready_spares(NO_JOB)


async def stocked(target: int, within: float = 60.0) -> set[int]:
    """Stock the node to `target` and wait until that many spares are ready (asking again
    while another stocker, a previous activation's, may hold the node's lock)."""

    async def enough() -> set[int] | None:
        ready = await asyncio.to_thread(ready_spares)
        if len(ready) >= target:
            return ready
        spares.keep_node_stocked(target)
        return None

    result: set[int] = await poll(enough, within=within, interval=0.2)
    return result


def maps_library(pid: int, library: str) -> bool:
    return any(library in region.path for region in psutil.Process(pid).memory_maps())


async def host_pid(engine: SeatClient, category_id: int) -> int:
    pid: int = await actor_of(engine, category_id).__ray_call__.remote(lambda _: os.getpid())
    return pid


async def test_a_category_activates_on_a_spare_that_had_imported_the_actor_code(
    engine: SeatClient,
    make_category: Callable[..., Awaitable[EventRecord]],
) -> None:
    await stocked(2)

    async def preloaded() -> set[int] | None:
        # Ray titles a worker idle once connected, and runs the setup hook after that.
        idle = await asyncio.to_thread(idle_workers)
        return idle if all(maps_library(pid, PRELOADED_LIBRARY) for pid in idle) else None

    before: set[int] = await poll(preloaded, within=30.0, interval=0.2)
    event = await make_category(seats=5)
    category = event.categories[0]
    placed = await engine.hold(user_id=1, event_id=event.id, category_id=category.id, quantity=2)
    assert placed.availability.available == 3
    host = await host_pid(engine, category.id)
    assert host in before  # no process was started for it
    # The actor that took a spare stocks the node again (the engine's target: 4 by default).
    after = await stocked(engine._config.spare_workers)
    assert host not in after
    assert after - before  # at least one new process


async def test_a_burst_of_stocking_requests_starts_only_the_shortfall(ray_runtime: None) -> None:
    ready = await stocked(2)
    target = len(ready) + 2
    # As twenty activations on one node at once would: one stocker runs, the rest see its lock.
    for _ in range(20):
        spares.keep_node_stocked(target)
    await stocked(target)
    await asyncio.sleep(3.0)  # what a second stocker would have started has started by now
    assert len(await asyncio.to_thread(ready_spares)) == target


def test_an_absurd_target_is_capped() -> None:
    """ACTOR_SPARE_WORKERS is bounded at start; the stocker bounds it again, so a bad
    ActorConfig cannot fill a node with processes."""
    assert spares.capped(10**9) == spares.MAX_SPARES
    assert spares.capped(-5) == 0


async def test_spares_killed_with_sigkill_cost_only_the_head_start(
    engine: SeatClient,
    make_category: Callable[..., Awaitable[EventRecord]],
) -> None:
    await stocked(2)
    victims = await asyncio.to_thread(idle_workers)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)

    async def reaped() -> bool:
        return not any(psutil.pid_exists(pid) for pid in victims)

    await poll(reaped, within=10.0)
    # Time for the raylet to drop them from its pool. Ray can lease a worker whose death it
    # has not processed yet, and its control store then retried the actor's creation on that
    # dead worker every 0.2 s for as long as we watched (90 s, seen once here): a Ray race
    # for any idle worker that dies, not only a spare, which this test does not exercise.
    await asyncio.sleep(1.0)
    event = await make_category(seats=3)
    category = event.categories[0]
    placed = await engine.hold(user_id=7, event_id=event.id, category_id=category.id, quantity=1)
    assert placed.availability.available == 2
    assert await host_pid(engine, category.id) not in victims
    # The node is stocked again after the activation.
    assert not (await stocked(engine._config.spare_workers)) & victims


@pytest.mark.parametrize("value", ["-1", "65", "many"])
def test_the_setting_refuses_values_out_of_range(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from gateway.config import Settings

    monkeypatch.setenv("ACTOR_SPARE_WORKERS", value)
    with pytest.raises(ValidationError, match="actor_spare_workers"):
        Settings()
