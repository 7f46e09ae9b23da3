"""The gateway's user look-ups: a crowd of new buyers shares a few queries, each buyer gets its
own row's stamp (or None), a caller who gives up costs the others nothing, and a failed query
fails only the callers of its batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.client import SeatClient
from actors.config import ActorConfig
from persistence.database import create_engine
from persistence.users import create_user
from sales.directory import MAX_USER_ID, Directory, _Batches
from sales.identity import user_stamp
from tests.persistence.conftest import unique


@pytest.fixture
async def directory(db: AsyncEngine, database_url: str) -> AsyncIterator[Directory]:
    # user_since never reaches Ray: a seat client that is never started only carries listeners.
    found = Directory(db, SeatClient(ActorConfig(database_url), db))
    yield found
    found.close()


@pytest.fixture
def user_queries(db: AsyncEngine) -> Iterator[list[str]]:
    """Every statement this engine sends that reads the users table."""
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM users" in statement:
            seen.append(statement)

    event.listen(db.sync_engine, "before_cursor_execute", note)
    yield seen
    event.remove(db.sync_engine, "before_cursor_execute", note)


async def _users(db: AsyncEngine, count: int) -> dict[int, int]:
    async with db.begin() as conn:
        made = [await create_user(conn, unique("buyer"), "h", "user") for _ in range(count)]
    return {user.id: user_stamp(user.created_at) for user in made}


async def test_a_crowd_of_new_users_shares_a_few_queries(
    db: AsyncEngine, directory: Directory, user_queries: list[str]
) -> None:
    stamps = await _users(db, 300)
    absent = [-5, 0, max(stamps) + 1_000_000, MAX_USER_ID, MAX_USER_ID + 1, 10**30]
    asked = [*stamps, *stamps, *absent]  # each user twice at once, and ids with no row
    answers = await asyncio.gather(*(directory.user_since(user_id) for user_id in asked))
    assert dict(zip(asked, answers, strict=True)) == {**stamps, **dict.fromkeys(absent)}
    assert 1 <= len(user_queries) <= 3, len(user_queries)
    # Known now: asking again sends nothing.
    before = len(user_queries)
    assert [await directory.user_since(user_id) for user_id in stamps] == list(stamps.values())
    assert len(user_queries) == before


async def test_a_caller_who_gives_up_does_not_cancel_the_others(
    db: AsyncEngine, directory: Directory
) -> None:
    stamps = await _users(db, 2)
    first, second = stamps
    impatient = asyncio.ensure_future(directory.user_since(first))
    patient = asyncio.ensure_future(directory.user_since(first))
    also = asyncio.ensure_future(directory.user_since(second))
    await asyncio.sleep(0)
    impatient.cancel()
    assert await patient == stamps[first] and await also == stamps[second]
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_database_that_is_down_fails_each_caller_and_is_asked_again(
    database_url: str,
) -> None:
    down = create_engine("postgresql+psycopg://boxoffice@127.0.0.1:1/nowhere", pool_size=1)
    directory = Directory(down, SeatClient(ActorConfig(database_url), down))
    try:
        for _ in range(2):  # a failure is not remembered: the next caller asks again
            answers = await asyncio.gather(
                *(directory.user_since(user_id) for user_id in range(1, 40)),
                return_exceptions=True,
            )
            assert all(isinstance(answer, OperationalError) for answer in answers), answers
    finally:
        directory.close()
        await down.dispose()


async def test_batches_are_bounded_and_a_failed_batch_fails_only_its_callers() -> None:
    sent: list[list[int]] = []

    async def fetch(keys: list[int]) -> dict[int, str]:
        sent.append(keys)
        await asyncio.sleep(0.01)
        if 13 in keys:
            raise LookupError("unlucky batch")
        return {key: f"row {key}" for key in keys}

    batches = _Batches(fetch, size=10)
    answers = await asyncio.gather(
        *(batches.load(key) for key in range(35)), return_exceptions=True
    )
    assert [len(keys) for keys in sent] == [10, 10, 10, 5]
    assert sorted(key for keys in sent for key in keys) == list(range(35))
    for key, answer in enumerate(answers):
        if 10 <= key < 20:
            assert isinstance(answer, LookupError)
        else:
            assert answer == f"row {key}"
    # The loader stopped with nothing waiting, and starts again for the next key.
    assert await batches.load(99) == "row 99" and sent[-1] == [99]
