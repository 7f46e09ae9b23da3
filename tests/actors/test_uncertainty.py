"""A category actor that cannot know what is durable leaves instead of guessing.

The actor runs in this process (a plain class; only its feed goes through Ray) so a fault can
be injected exactly where it matters: a commit that reached the server but whose answer was
lost, a journal write that failed, a load that keeps failing. `retire` records what Ray would
do (end the process)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.category import CategoryActor
from actors.config import ActorConfig
from actors.lockids import new_request_id
from actors.messages import Buy, Command, HoldPlaced, OrderPlaced, Outcome, PlaceHold
from actors.remote import Retired
from persistence.pickling import pack, unpack
from persistence.records import EventRecord, PlacedOrder
from tests.actors.test_category import eventually, ledger_sold
from tests.fixtures.orders import order_draft
from tests.fixtures.ray_runtime import kill_namespace

MakeCategory = Callable[..., Awaitable[EventRecord]]


def connection_lost() -> OperationalError:
    return OperationalError(
        "COMMIT", {}, ConnectionError("server closed the connection unexpectedly")
    )


class Hosted:
    """In-process category actors of one namespace, each with a record of its retirement."""

    def __init__(self, database_url: str) -> None:
        self.config = ActorConfig(
            database_url=database_url,
            namespace=f"inproc-{uuid.uuid4().hex[:12]}",
            actor_idle_seconds=0.3,
        )
        self.actors: list[CategoryActor] = []
        self.retired: list[CategoryActor] = []

    def start(self, category_id: int, **overrides: Any) -> CategoryActor:
        config = self.config
        if overrides:
            config = dataclasses.replace(config, **overrides)
        actor: CategoryActor

        def retire() -> None:
            self.retired.append(actor)

        actor = CategoryActor(config, category_id, retire=retire, wake=lambda: None)
        self.actors.append(actor)
        return actor

    async def close(self) -> None:
        for actor in self.actors:
            # Every loop it started: a publisher left running retries the namespace's killed
            # hub every half second for the rest of the test session.
            owned = (actor._housekeeper, actor._reaper, actor._feed._publisher, actor._reporting)
            for task in owned:
                if task is not None:
                    task.cancel()
            if actor._db is not None:
                await actor._db.dispose()
        kill_namespace(self.config.namespace)


@pytest.fixture
async def hosted(database_url: str, ray_runtime: None) -> AsyncIterator[Hosted]:
    hosting = Hosted(database_url)
    yield hosting
    await hosting.close()


async def test_a_commit_with_an_unknown_outcome_retires_instead_of_undoing(
    hosted: Hosted,
    make_category: MakeCategory,
    make_buyer: Callable[[], Awaitable[int]],
    db: AsyncEngine,
) -> None:
    event = await make_category(seats=2)
    category = event.categories[0]
    buyer = await make_buyer()
    actor = hosted.start(category.id)
    write = actor._commits._write

    async def committed_then_lost(items: Any) -> list[PlacedOrder]:
        await write(items)
        raise connection_lost()

    actor._commits._write = committed_then_lost
    buy = Buy(new_request_id(), buyer, order_draft(event, buyer, 2))
    with pytest.raises(Retired):
        await _execute(actor, [buy])
    assert hosted.retired == [actor]
    assert await ledger_sold(db, category.id) == 2

    # The fresh activation reads the ledger, and the caller's retry is answered with its order.
    fresh = hosted.start(category.id)
    state = await fresh.ready()
    assert (state.sold, state.held, state.available) == (2, 0, 0)
    [again] = await _execute(fresh, [buy])
    assert isinstance(again, OrderPlaced) and again.replayed


async def test_a_refusal_by_the_ledger_is_still_undone_in_place(
    hosted: Hosted, make_category: MakeCategory, db: AsyncEngine
) -> None:
    event = await make_category(seats=3)
    category = event.categories[0]
    actor = hosted.start(category.id)
    ghost = 2_000_000_000  # no such user: the server refuses the whole transaction
    [refused] = await _execute(actor, [Buy(new_request_id(), ghost, order_draft(event, ghost, 2))])
    assert not isinstance(refused, OrderPlaced)
    assert hosted.retired == []
    state = await actor.ready()
    assert (state.sold, state.held) == (0, 0)
    assert await ledger_sold(db, category.id) == 0


async def test_a_hold_whose_journal_write_failed_is_never_answered(
    hosted: Hosted, make_category: MakeCategory
) -> None:
    event = await make_category(seats=3)
    category = event.categories[0]
    actor = hosted.start(category.id)
    await actor.ready()

    async def refused(entries: Any) -> int | None:
        raise connection_lost()

    actor._journal._append = refused
    with pytest.raises(Retired):
        await _execute(actor, [PlaceHold(new_request_id(), 4, event.id, 1)])
    assert hosted.retired == [actor]
    # Nothing of it is durable: a fresh activation has no hold.
    fresh = hosted.start(category.id)
    assert (await fresh.ready()).held == 0
    [placed] = await _execute(fresh, [PlaceHold(new_request_id(), 4, event.id, 1)])
    assert isinstance(placed, HoldPlaced)


async def test_an_actor_whose_load_keeps_failing_is_reaped_once_idle(
    hosted: Hosted, make_category: MakeCategory
) -> None:
    event = await make_category(seats=1)
    # A server that refuses connections, as PostgreSQL out of connections would.
    actor = hosted.start(
        event.categories[0].id, database_url="postgresql://boxoffice@127.0.0.1:1/nowhere"
    )
    with pytest.raises(OperationalError):
        await actor.ready()
    assert hosted.retired == []  # not while callers may still retry

    async def reaped() -> bool:
        return hosted.retired == [actor]

    await eventually(reaped, within=10)


async def _execute(actor: CategoryActor, commands: list[Command]) -> list[Outcome]:
    """One batch through the actor's entry point, packed as the gateway packs it."""
    outcomes: list[Outcome] = unpack(await actor.execute(pack(commands)))
    return outcomes
