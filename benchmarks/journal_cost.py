"""What the hold journal costs: hot holds per second through one category actor, with and
without the journal, alternating runs in one process on one embedded PostgreSQL.

Drives the engine as a gateway does (`SeatClient`: coalesced batches, one actor), not HTTP.
`python -m benchmarks.journal_cost` prints a JSON; `make bench` is not involved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from actors.remote import start_ray, stop_ray
from benchmarks.engine_costs import Bench, json_to_stdout
from persistence.database import create_engine, migrate
from persistence.embedded import EmbeddedPostgres


def cpu_seconds(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def ours(data_dir: Path) -> list[psutil.Process]:
    """This process, the Ray runtime it started (its actors among them) and PostgreSQL."""
    me = psutil.Process()
    found = {p.pid: p for p in [me, *me.children(recursive=True), *postgres_tree(data_dir)]}
    return list(found.values())


def postgres_tree(data_dir: Path) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for pidfile in data_dir.rglob("postmaster.pid"):
        postmaster = psutil.Process(int(pidfile.read_text().splitlines()[0]))
        found += [postmaster, *postmaster.children(recursive=True)]
    return found


async def hot_holds(
    bench: Bench, journal: bool, seconds: float, concurrency: int, data_dir: Path
) -> tuple[float, float]:
    """Holds per second, and CPU milliseconds per hold over this process, the actor and
    PostgreSQL (the figure that stays meaningful on a machine shared with other work)."""
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

    processes = ours(data_dir)
    cpu_before = cpu_seconds(processes)
    started = time.perf_counter()
    await asyncio.gather(*(buyer(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(processes)
    # Only processes alive throughout: one that ended took its counters with it.
    cpu = sum(cpu_after[pid] - cpu_before[pid] for pid in cpu_after if pid in cpu_before)
    await engine.close()
    return done / elapsed, cpu * 1000 / done


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
            cpu: dict[str, list[float]] = {"with_journal": [], "without_journal": []}
            for _ in range(args.rounds):
                for journal in (True, False):
                    rate, cpu_ms = await hot_holds(
                        bench, journal, args.seconds, args.concurrency, Path(tmp)
                    )
                    key = "with_journal" if journal else "without_journal"
                    runs[key].append(round(rate, 1))
                    cpu[key].append(round(cpu_ms, 4))
            with_ = statistics.median(runs["with_journal"])
            without = statistics.median(runs["without_journal"])
            cpu_with = statistics.median(cpu["with_journal"])
            cpu_without = statistics.median(cpu["without_journal"])
            await db.dispose()
            return {
                "holds_per_s": runs,
                "median_with_journal": with_,
                "median_without_journal": without,
                "ratio": round(with_ / without, 3),
                "cpu_ms_per_hold": cpu,
                "cpu_ratio": round(cpu_with / cpu_without, 3),
                "load_average": os.getloadavg(),
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
    return json_to_stdout(measure(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
