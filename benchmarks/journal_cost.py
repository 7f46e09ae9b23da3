"""What the hold journal costs: hot holds per second through one category actor, with and
without the journal, alternating runs in one process on one embedded PostgreSQL.

Drives the engine as a gateway does (`SeatClient`: coalesced batches, one actor), not HTTP.
`python -m benchmarks.journal_cost` prints a JSON; `make bench` is not involved.
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
from pathlib import Path
from typing import Any

from actors.remote import start_ray, stop_ray
from benchmarks.engine_costs import Bench
from persistence.database import create_engine, migrate
from persistence.embedded import EmbeddedPostgres


async def hot_holds(bench: Bench, journal: bool, seconds: float, concurrency: int) -> float:
    engine = await bench.engine(hold_journal=journal, lock_ttl_seconds=600)
    event = await bench.event(seats=10_000_000)
    category = event.categories[0]
    await engine.activate([category.id])
    done = 0
    deadline = time.perf_counter() + seconds

    async def buyer(index: int) -> None:
        nonlocal done
        owner = bench.buyers[index % len(bench.buyers)]
        while time.perf_counter() < deadline:
            await engine.hold(user_id=owner, event_id=event.id, category_id=category.id, quantity=1)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(buyer(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    await engine.close()
    return done / elapsed


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="boxoffice-journal-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        url = await asyncio.to_thread(server.start)
        owned = False
        try:
            await migrate(url)
            db = create_engine(url, pool_size=10)
            owned = await asyncio.to_thread(start_ray, None, "journal-cost", 80 * 2**20)
            bench = Bench(url, db)
            await bench.setup(buyers=50)
            runs: dict[str, list[float]] = {"with_journal": [], "without_journal": []}
            for _ in range(args.rounds):
                for journal in (True, False):
                    rate = await hot_holds(bench, journal, args.seconds, args.concurrency)
                    key = "with_journal" if journal else "without_journal"
                    runs[key].append(round(rate, 1))
            with_ = statistics.median(runs["with_journal"])
            without = statistics.median(runs["without_journal"])
            await db.dispose()
            return {
                "holds_per_s": runs,
                "median_with_journal": with_,
                "median_without_journal": without,
                "ratio": round(with_ / without, 3),
                "seconds_per_run": args.seconds,
                "concurrency": args.concurrency,
                "cpu_count": os.cpu_count(),
            }
        finally:
            stop_ray(owned)
            await asyncio.to_thread(server.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.journal_cost")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args(argv)
    sys.stdout.flush()
    results_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    results = asyncio.run(measure(args))
    with results_out:
        results_out.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
