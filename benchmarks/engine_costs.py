"""What one category actor costs, measured through the engine in one process and one run.

Call latency, memory per actor process, cold activation, and confirms per second of one
actor with and without group commit. `python -m benchmarks.engine_costs` prints a JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import ray

from actors.client import SeatClient
from actors.config import ActorConfig
from actors.remote import category_actor_name, start_ray, stop_ray
from persistence import catalog, users
from persistence.database import create_engine, migrate
from persistence.embedded import EmbeddedPostgres
from persistence.records import CategoryDraft, EventDraft, EventRecord, OrderDraft


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary_ms(samples: list[float]) -> dict[str, float]:
    millis = [s * 1000 for s in samples]
    return {
        "p50_ms": round(percentile(millis, 0.50), 3),
        "p99_ms": round(percentile(millis, 0.99), 3),
        "mean_ms": round(statistics.fmean(millis), 3),
        "samples": len(millis),
    }


async def timed(calls: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def actor_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "name"]):
        text = " ".join(process.info["cmdline"] or []) + (process.info["name"] or "")
        if "CategoryActor" in text:
            found.append(process)
    return found


class Bench:
    def __init__(self, database_url: str, db: Any) -> None:
        self.database_url = database_url
        self.db = db
        self.buyers: list[int] = []

    async def setup(self, buyers: int) -> None:
        async with self.db.begin() as conn:
            for _ in range(buyers):
                user = await users.create_user(conn, f"b-{uuid.uuid4().hex}", "x", "assistant")
                self.buyers.append(user.id)

    async def event(self, seats: int, categories: int = 1) -> EventRecord:
        async with self.db.begin() as conn:
            return await catalog.create_event(
                conn,
                EventDraft(
                    event_name="Costs",
                    event_category="Bench",
                    description=None,
                    event_date=datetime.now(UTC) + timedelta(days=1),
                    location=None,
                    categories=tuple(
                        CategoryDraft(f"C{i}", Decimal("10.00"), seats, None)
                        for i in range(categories)
                    ),
                ),
                self.buyers[0],
            )

    async def engine(self, **overrides: Any) -> SeatClient:
        config = ActorConfig(
            database_url=self.database_url,
            namespace=f"costs-{uuid.uuid4().hex[:8]}",
            **overrides,
        )
        return await SeatClient.start(config, self.db)

    async def latency(self, calls: int) -> dict[str, Any]:
        engine = await self.engine()
        event = await self.event(seats=1_000_000)
        category = event.categories[0]
        await engine.activate([category.id])
        handle = ray.get_actor(category_actor_name(category.id), namespace=engine._config.namespace)
        raw = await timed(calls, lambda: handle.ready.remote())
        buyer = self.buyers[0]

        async def hold_and_release() -> None:
            placed = await engine.hold(
                user_id=buyer, event_id=event.id, category_id=category.id, quantity=1
            )
            await engine.release(
                user_id=buyer, category_id=category.id, lock_id=placed.hold.lock_id
            )

        pairs = await timed(calls // 2, hold_and_release)
        await engine.close()
        return {"actor_call": summary_ms(raw), "hold_plus_release": summary_ms(pairs)}

    async def activation(self, count: int) -> dict[str, Any]:
        engine = await self.engine()
        event = await self.event(seats=100, categories=count)
        before = {p.pid for p in actor_processes()}
        samples = []
        for category in event.categories:
            started = time.perf_counter()
            await engine.hold(
                user_id=self.buyers[0], event_id=event.id, category_id=category.id, quantity=1
            )
            samples.append(time.perf_counter() - started)
        fresh = [p for p in actor_processes() if p.pid not in before]
        rss = [p.memory_info().rss for p in fresh]
        uss = [p.memory_full_info().uss for p in fresh]
        await engine.close()
        return {
            "cold_activation": summary_ms(samples),
            "actor_processes": len(fresh),
            "actor_rss_mb": round(statistics.fmean(rss) / 2**20, 1) if rss else None,
            "actor_uss_mb": round(statistics.fmean(uss) / 2**20, 1) if uss else None,
        }

    async def confirms(self, orders: int, concurrency: int, group_commit: bool) -> dict[str, Any]:
        engine = await self.engine(group_commit=group_commit, lock_ttl_seconds=600)
        event = await self.event(seats=orders)
        category = event.categories[0]
        holds = []
        for i in range(orders):
            buyer = self.buyers[i % len(self.buyers)]
            placed = await engine.hold(
                user_id=buyer, event_id=event.id, category_id=category.id, quantity=1
            )
            holds.append(placed.hold)
        queue = list(holds)

        async def worker() -> None:
            while queue:
                hold = queue.pop()
                draft = OrderDraft(
                    user_id=hold.owner,
                    event_id=event.id,
                    category_id=category.id,
                    quantity=1,
                    unit_price=Decimal("10.00"),
                    event_name=event.event_name,
                    category_name=category.category_name,
                )
                await engine.confirm(lock_id=hold.lock_id, draft=draft)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        await engine.close()
        return {"confirms_per_s": round(orders / elapsed, 1), "orders": orders}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="boxoffice-costs-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        url = await asyncio.to_thread(server.start)
        owned = False
        try:
            await migrate(url)
            db = create_engine(url, pool_size=10)
            owned = await asyncio.to_thread(start_ray, None, "costs", 80 * 2**20)
            bench = Bench(url, db)
            await bench.setup(buyers=50)
            results: dict[str, Any] = {}
            results.update(await bench.latency(args.calls))
            results.update(await bench.activation(args.categories))
            results["confirms_group_commit"] = await bench.confirms(
                args.orders, args.concurrency, group_commit=True
            )
            results["confirms_one_transaction_each"] = await bench.confirms(
                args.orders, args.concurrency, group_commit=False
            )
            results["group_commit_gain"] = round(
                results["confirms_group_commit"]["confirms_per_s"]
                / results["confirms_one_transaction_each"]["confirms_per_s"],
                2,
            )
            await db.dispose()
            return results
        finally:
            stop_ray(owned)
            await asyncio.to_thread(server.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_costs")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=10)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    return json_to_stdout(measure(parser.parse_args(argv)))


def json_to_stdout(measurement: Coroutine[Any, Any, dict[str, Any]]) -> int:
    """Run `measurement` and print its result as the only thing on stdout.

    Ray forwards its workers' and raylet's warnings to this process's stdout: keep stdout for
    the JSON alone, so `> costs.json` stays parseable, and send everything else to stderr."""
    sys.stdout.flush()
    results_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    results = asyncio.run(measurement)
    with results_out:
        results_out.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
