"""Snapshots: upsert and load JSONB payloads, and find the categories that still have holds."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.snapshots import categories_with_holds, load_snapshot, save_snapshot
from tests.persistence.conftest import MakeEvent


async def test_save_is_an_upsert_and_load_returns_the_latest(
    db: AsyncEngine, make_event: MakeEvent
) -> None:
    category_id = (await make_event(5)).categories[0].id
    async with db.connect() as conn:
        assert await load_snapshot(conn, category_id) is None
    first = {"version": 1, "holds": [{"lockId": "a", "quantity": 2, "expiresAt": 1.5}]}
    second = {"version": 2, "holds": []}
    async with db.begin() as conn:
        await save_snapshot(conn, category_id, first)
    async with db.connect() as conn:
        assert await load_snapshot(conn, category_id) == first
    async with db.begin() as conn:
        await save_snapshot(conn, category_id, second)
    async with db.connect() as conn:
        assert await load_snapshot(conn, category_id) == second


async def test_saving_for_a_missing_category_is_skipped(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await save_snapshot(conn, -42, {"holds": []})
        assert await load_snapshot(conn, -42) is None


async def test_categories_with_holds_lists_only_non_empty_holds(
    db: AsyncEngine, make_event: MakeEvent
) -> None:
    with_list, with_map, empty_list, empty_map, no_key = (
        await make_event(1, 1, 1, 1, 1)
    ).categories
    async with db.begin() as conn:
        await save_snapshot(conn, with_list.id, {"holds": [{"lockId": "x"}]})
        await save_snapshot(conn, with_map.id, {"holds": {"y": {"quantity": 1}}})
        await save_snapshot(conn, empty_list.id, {"holds": []})
        await save_snapshot(conn, empty_map.id, {"holds": {}})
        await save_snapshot(conn, no_key.id, {"version": 3})
    async with db.connect() as conn:
        listed = set(await categories_with_holds(conn))
    mine = {c.id for c in (with_list, with_map, empty_list, empty_map, no_key)}
    assert listed & mine == {with_list.id, with_map.id}
