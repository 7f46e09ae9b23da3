"""The actor ceiling: what one category actor serves when fed directly, without HTTP.

Several caller processes (Ray actors of their own) send batches of commands straight to one
category actor, as the gateways' command batchers do, with several batches in flight each:
first holds for `--seconds`, then confirms of holds placed beforehand, each confirm an order
in the ledger through group commit. This is the bound of a hot category on a cluster of any
size: every hold and confirm of a category goes through its one actor.

`python -m benchmarks.actor_ceiling --database-url URL` prints a JSON; the bench's
`actor-ceiling` scenario runs it against the bench's PostgreSQL in its own Ray runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psutil
import ray

from actors.client import SeatClient
from actors.config import ActorConfig
from actors.messages import ConfirmHold, HoldPlaced, OrderPlaced, PlaceHold
from actors.remote import category_actor_name, start_ray, stop_ray
from benchmarks.engine_costs import actor_processes, json_to_stdout, percentile
from persistence import catalog, users
from persistence.database import create_engine
from persistence.pickling import pack, unpack
from persistence.records import CategoryDraft, EventDraft, OrderDraft


@ray.remote(num_cpus=0)
class Caller:
    """One caller process: `in_flight` loops, each sending one batch and awaiting its answer."""

    async def up(self, handle: Any) -> bool:
        """Connected to the actor: the first call from a process opens its channel."""
        await handle.ready.remote()
        return True

    async def holds(
        self,
        handle: Any,
        event_id: int,
        owners: list[int],
        start_at: float,
        seconds: float,
        batch: int,
        in_flight: int,
    ) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        deadline = start_at + seconds
        placed = refused = 0
        latencies: list[float] = []

        async def loop(n: int) -> None:
            nonlocal placed, refused
            while time.time() < deadline:
                commands = [
                    PlaceHold(uuid.uuid4().hex, owners[(n + i) % len(owners)], event_id, 1)
                    for i in range(batch)
                ]
                started = time.perf_counter()
                outcomes = unpack(await handle.execute.remote(pack(commands)))
                latencies.append(time.perf_counter() - started)
                for outcome in outcomes:
                    if isinstance(outcome, HoldPlaced):
                        placed += 1
                    else:
                        refused += 1

        cpu = time.process_time()
        await asyncio.gather(*(loop(n) for n in range(in_flight)))
        return {
            "placed": placed,
            "refused": refused,
            "latencies": latencies,
            "cpu_s": time.process_time() - cpu,
        }

    async def confirms(
        self,
        handle: Any,
        holds: list[tuple[str, int]],
        draft: OrderDraft,
        start_at: float,
        batch: int,
        in_flight: int,
    ) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        queue = list(holds)
        ordered = refused = 0
        latencies: list[float] = []
        finished = start_at

        async def loop() -> None:
            nonlocal ordered, refused, finished
            while queue:
                chunk, queue[:] = queue[:batch], queue[batch:]
                commands = [
                    ConfirmHold(
                        uuid.uuid4().hex,
                        owner,
                        lock_id,
                        OrderDraft(
                            user_id=owner,
                            event_id=draft.event_id,
                            category_id=draft.category_id,
                            quantity=1,
                            unit_price=draft.unit_price,
                            event_name=draft.event_name,
                            category_name=draft.category_name,
                        ),
                    )
                    for lock_id, owner in chunk
                ]
                started = time.perf_counter()
                outcomes = unpack(await handle.execute.remote(pack(commands)))
                latencies.append(time.perf_counter() - started)
                finished = time.time()
                for outcome in outcomes:
                    if isinstance(outcome, OrderPlaced):
                        ordered += 1
                    else:
                        refused += 1

        await asyncio.gather(*(loop() for _ in range(in_flight)))
        return {
            "ordered": ordered,
            "refused": refused,
            "latencies": latencies,
            "finished": finished,
        }


def _our_actor() -> psutil.Process | None:
    """The one category actor of this process's own Ray runtime (another runtime, such as the
    bench's system, has actors of its own on this machine)."""
    ours = {p.pid for p in psutil.Process().children(recursive=True)}
    return next((p for p in actor_processes() if p.pid in ours), None)


def _ms(latencies: list[float], share: float) -> float | None:
    return round(percentile(latencies, share) * 1000, 2) if latencies else None


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    db = create_engine(args.database_url, pool_size=4)
    owned = await asyncio.to_thread(start_ray, None, "actor-ceiling", 200 * 2**20)
    try:
        async with db.begin() as conn:
            owners = [
                (await users.create_user(conn, f"ceiling-{uuid.uuid4().hex}", "x", "assistant")).id
                for _ in range(args.owners)
            ]
            event = await catalog.create_event(
                conn,
                EventDraft(
                    event_name="Actor ceiling",
                    event_category="Bench",
                    description=None,
                    event_date=datetime.now(UTC) + timedelta(days=1),
                    location=None,
                    categories=(
                        CategoryDraft("Holds", Decimal("10.00"), 100_000_000, None),
                        CategoryDraft("Confirms", Decimal("10.00"), args.confirms, None),
                    ),
                ),
                owners[0],
            )
        hold_category, confirm_category = event.categories
        config = ActorConfig(
            database_url=args.database_url,
            namespace=f"actor-ceiling-{uuid.uuid4().hex[:8]}",
            lock_ttl_seconds=600.0,
            hold_journal=not args.no_journal,
        )
        engine = await SeatClient.start(config, db)
        await engine.activate([hold_category.id])
        actor = _our_actor()
        await engine.activate([confirm_category.id])
        handle = ray.get_actor(category_actor_name(hold_category.id), namespace=config.namespace)
        callers = [Caller.remote() for _ in range(args.callers)]  # type: ignore[attr-defined]
        await asyncio.gather(*(caller.up.remote(handle) for caller in callers))
        start_at = time.time() + 0.5  # every caller process up before the clock starts
        cpu0 = actor.cpu_times() if actor else None
        runs = await asyncio.gather(
            *(
                caller.holds.remote(
                    handle, event.id, owners, start_at, args.seconds, args.batch, args.in_flight
                )
                for caller in callers
            )
        )
        cpu1 = actor.cpu_times() if actor else None
        placed = sum(r["placed"] for r in runs)
        hold_latencies = [x for r in runs for x in r["latencies"]]
        results: dict[str, Any] = {
            "callers": args.callers,
            "batch": args.batch,
            "in_flight_per_caller": args.in_flight,
            "holds_per_s": round(placed / args.seconds, 1),
            "holds_refused": sum(r["refused"] for r in runs),
            "hold_batch_p50_ms": _ms(hold_latencies, 0.5),
            "hold_batch_p99_ms": _ms(hold_latencies, 0.99),
            "actor_cpu_share": (
                round((sum(cpu1[:2]) - sum(cpu0[:2])) / args.seconds, 2) if cpu0 and cpu1 else None
            ),
            "callers_cpu_s": round(sum(r["cpu_s"] for r in runs), 1),
        }
        # Confirms: holds placed first (one seat each), then confirmed as fast as answered.
        confirm_handle = ray.get_actor(
            category_actor_name(confirm_category.id), namespace=config.namespace
        )
        holds: list[tuple[str, int]] = []
        for first in range(0, args.confirms, 500):
            commands = [
                PlaceHold(uuid.uuid4().hex, owners[i % len(owners)], event.id, 1)
                for i in range(first, min(first + 500, args.confirms))
            ]
            for outcome in unpack(await confirm_handle.execute.remote(pack(commands))):
                if isinstance(outcome, HoldPlaced):
                    holds.append((outcome.hold.lock_id, outcome.hold.owner))
        draft = OrderDraft(
            user_id=owners[0],
            event_id=event.id,
            category_id=confirm_category.id,
            quantity=1,
            unit_price=confirm_category.price,
            event_name=event.event_name,
            category_name=confirm_category.category_name,
        )
        shares = [holds[i :: args.callers] for i in range(args.callers)]
        await asyncio.gather(*(caller.up.remote(confirm_handle) for caller in callers))
        start_at = time.time() + 1.0
        runs = await asyncio.gather(
            *(
                caller.confirms.remote(
                    confirm_handle, share, draft, start_at, args.batch, args.in_flight
                )
                for caller, share in zip(callers, shares, strict=True)
            )
        )
        ordered = sum(r["ordered"] for r in runs)
        elapsed = max(r["finished"] for r in runs) - start_at
        async with db.connect() as conn:
            in_ledger = await _orders_in(conn, confirm_category.id)
        confirm_latencies = [x for r in runs for x in r["latencies"]]
        results.update(
            {
                "confirms_per_s": round(ordered / elapsed, 1) if elapsed > 0 else None,
                "confirms": ordered,
                "confirms_refused": sum(r["refused"] for r in runs),
                "confirm_batch_p50_ms": _ms(confirm_latencies, 0.5),
                "confirm_batch_p99_ms": _ms(confirm_latencies, 0.99),
                "orders_in_ledger": in_ledger,
                "holds_for_confirms": len(holds),
                "actor_rss_mb": round(actor.memory_info().rss / 2**20, 1) if actor else None,
            }
        )
        for caller in callers:
            ray.kill(caller)
        await engine.close()
        return results
    finally:
        await db.dispose()
        stop_ray(owned)


async def _orders_in(conn: Any, category_id: int) -> int:
    from sqlalchemy import text

    result = await conn.execute(
        text("SELECT count(*) FROM orders WHERE category_id = :c AND status <> 'cancelled'"),
        {"c": category_id},
    )
    return int(result.scalar_one())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.actor_ceiling")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--confirms", type=int, default=20_000)
    parser.add_argument(
        "--no-journal",
        action="store_true",
        help="without the hold journal, to see what it costs (answered holds not durable)",
    )
    return json_to_stdout(measure(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
