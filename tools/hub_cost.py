"""CPU the feed hub spends per feed item, at low scale: one local Ray, one hub, publishers
sending single-item calls (as a category does) or batches, and N followers long-polling it
(as gateways do). Prints JSON; used for the figures in docs/deployment.md.

    .venv/bin/python tools/hub_cost.py --items 3000 --followers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import psutil
import ray

from actors.feed import FeedHub
from actors.messages import Availability, CategoryChanged, HoldView


class MeasuredHub(FeedHub):
    async def pid(self) -> int:
        return os.getpid()


def item(n: int) -> CategoryChanged:
    hold = HoldView(f"lock_{n}", n % 500, 1, n % 8, 1, time.time() + 300)
    return CategoryChanged(Availability(1, n % 8, 10_000, 1, 0, n, time.time(), 1), (hold,), ())


async def run(items: int, followers: int, batch: int, publishers: int) -> dict[str, float]:
    hub = ray.remote(MeasuredHub).options(max_concurrency=10_000).remote()
    process = psutil.Process(await hub.pid.remote())
    stop, caught_up = asyncio.Event(), asyncio.Event()
    received = [0] * followers

    async def follow(index: int) -> None:
        cursor, generation = None, None
        while not stop.is_set():
            got = await hub.poll.remote(cursor, 0.2, generation)
            cursor, generation = got.cursor, got.generation
            received[index] += len(got.items)
            if min(received) >= items:
                caught_up.set()

    async def publish(first: int, count: int) -> None:
        for start in range(first, first + count, batch):
            await hub.publish.remote([item(n) for n in range(start, start + batch)])

    tasks = [asyncio.ensure_future(follow(i)) for i in range(followers)]
    await asyncio.sleep(0.5)
    before, started = process.cpu_times(), time.perf_counter()
    share = items // publishers
    await asyncio.gather(*(publish(p * share, share) for p in range(publishers)))
    if followers:
        await caught_up.wait()
    elapsed = time.perf_counter() - started
    after = process.cpu_times()
    stop.set()
    await asyncio.gather(*tasks)
    cpu = (after.user - before.user) + (after.system - before.system)
    ray.kill(hub)
    return {
        "items": items,
        "followers": followers,
        "items_per_call": batch,
        "items_per_second": round(items / elapsed),
        "hub_cpu_ms_per_item": round(cpu / items * 1000, 3),
        "hub_cpu_share": round(cpu / elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--publishers", type=int, default=8)
    args = parser.parse_args()
    ray.init(address="local", include_dashboard=False, logging_level="WARNING")
    try:
        for followers, batch in ((0, 1), (2, 1), (2, 10)):
            figures = asyncio.run(run(args.items, followers, batch, args.publishers))
            print(json.dumps(figures), flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
