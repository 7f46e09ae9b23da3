"""The scenarios of issue 5: flash sale, hot hold throughput, browse, fan-out, many categories
(and, in `benchmarks.waitlist`, the waiting list of issue 12).

Each takes the `Bench` and returns a `ScenarioResult`: rows of figures per target (system,
ceiling, baseline), a time series for the picture, and for the flash sale the seat audit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from benchmarks import memory
from benchmarks.harness import Bench, event_id_of, process_stats
from benchmarks.loadgen import Job, Sample, WorkerResult, split
from gateway.deps import ORDER_PAGE

TARGET_NAMES = ("system", "bare", "ceiling", "baseline", "baseline_nosync")
BASELINES = ("baseline", "baseline_nosync")


@dataclass(slots=True)
class Row:
    metric: str
    unit: str
    values: dict[str, float | None]  # target name -> value
    better: str = "higher"  # higher | lower | "" (no ratio)
    goal: str = ""
    met: bool | None = None
    # Set when the row combines several runs: each target's (min, max), and the median of
    # the per-run ratios (the ratio of medians could pair a fast run with a slow one).
    spread: dict[str, tuple[float, float]] | None = None
    ratios: dict[str, float | None] | None = None


@dataclass(slots=True)
class ScenarioResult:
    name: str
    rows: list[Row] = field(default_factory=list)
    series: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    audit: dict[str, Any] | None = None
    passed: bool = True
    notes: list[str] = field(default_factory=list)


# -- statistics --------------------------------------------------------------------------------


def ok(sample: Sample) -> bool:
    return 200 <= sample[3] < 300


def pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if len(values) else None


def latency_ms(samples: Iterable[Sample]) -> list[float]:
    return [s[2] * 1000 for s in samples]


def rate(samples: Sequence[Sample]) -> float:
    """Completed answers per second over the span of the samples."""
    if len(samples) < 2:
        return 0.0
    start = min(s[1] for s in samples)
    end = max(s[1] + s[2] for s in samples)
    return len(samples) / max(end - start, 1e-9)


def timeline(
    samples: Sequence[Sample], t0: float, step: float = 1.0, until: float | None = None
) -> list[dict[str, float]]:
    """Answers per second and latency percentiles in `step`-second bins of completion time.

    With `until` (the run's length), a last bin the run only partly covered is left out.
    """
    if not samples:
        return []
    ends = np.asarray([s[1] + s[2] - t0 for s in samples])
    lat = np.asarray([s[2] * 1000 for s in samples])
    bins = np.floor(ends / step).astype(int)
    rows = []
    for b in range(max(0, int(bins.min())), int(bins.max()) + 1):
        mask = bins == b
        if until is not None and (b + 1) * step > until + 1e-9:
            break
        if not mask.any():
            continue
        part = lat[mask]
        rows.append(
            {
                "t": (b + 0.5) * step,
                "rps": float(mask.sum() / step),
                "p50": float(np.percentile(part, 50)),
                "p95": float(np.percentile(part, 95)),
                "p99": float(np.percentile(part, 99)),
            }
        )
    return rows


def merge(results: Sequence[WorkerResult]) -> tuple[list[Sample], dict[str, Any]]:
    samples: list[Sample] = []
    extras: dict[str, Any] = {}
    for result in results:
        samples.extend(result.samples)
        for key, value in result.extras.items():
            if isinstance(value, list):
                extras.setdefault(key, []).extend(value)
            elif isinstance(value, int | float) and key in extras:
                extras[key] = (
                    max(extras[key], value) if key.startswith("last") else extras[key] + value
                )
            else:
                extras[key] = value
    return samples, extras


def latency_rows(label: str, per_target: Mapping[str, Sequence[Sample]]) -> list[Row]:
    lat = {name: latency_ms(samples) for name, samples in per_target.items()}
    return [
        Row(f"{label} p{q}", "ms", {n: pct(v, q) for n, v in lat.items()}, better="lower")
        for q in (50, 95, 99)
    ]


def client_cores(results: Sequence[WorkerResult]) -> float | None:
    """Cores the load generator kept busy on average, over all its processes."""
    wall = max((float(r.extras.get("client_wall_s", 0.0)) for r in results), default=0.0)
    if not wall:
        return None
    return sum(float(r.extras.get("client_cpu_s", 0.0)) for r in results) / wall


def server_errors(samples: Iterable[Sample]) -> int:
    return sum(1 for s in samples if s[3] >= 500 or s[3] == 0)


# -- running jobs with a progress bar ---------------------------------------------------------


async def drive(
    bench: Bench,
    label: str,
    jobs: Sequence[Job],
    *,
    seconds: float | None = None,
    during: Callable[[], Awaitable[None]] | None = None,
) -> list[WorkerResult]:
    """Run jobs in the worker pool; the bar shows elapsed time of a timed run, else answers."""
    runner = bench.runner
    runner.reset()
    task = bench.progress.add_task(label, total=seconds)
    future = runner.submit(jobs)
    started = min(job.start_at for job in jobs) if jobs else time.time()
    try:
        while not future.done():
            if seconds is not None:
                bench.progress.update(task, completed=min(seconds, max(0, time.time() - started)))
            else:
                bench.progress.update(task, completed=runner.progress.value)
            if during is not None:
                await during()
            await asyncio.wait({future}, timeout=0.25)
        return future.result()
    finally:
        bench.progress.remove_task(task)


def jobs_for(
    bench: Bench,
    kind: str,
    base_url: str,
    accounts: Sequence[tuple[int, str]],
    concurrency: int,
    duration: float = 0.0,
    params: dict[str, Any] | None = None,
    procs: int | None = None,
) -> list[Job]:
    procs = min(procs or bench.runner.procs, bench.runner.procs)
    start_at = time.time() + 0.5
    shares = split(list(accounts), procs)
    per = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    return [
        Job(kind, base_url, share, n, start_at, duration, dict(params or {}, seed=i))
        for i, (share, n) in enumerate(zip(shares, per, strict=True))
        if share and n
    ]


# -- flash sale ----------------------------------------------------------------------------------


async def flash_sale(bench: Bench) -> ScenarioResult:
    o = bench.options
    result = ScenarioResult("flash-sale")
    buyers = bench.accounts[: o.buyers]
    per_target: dict[str, list[Sample]] = {}
    figures: dict[str, dict[str, float | None]] = {}
    audits: dict[str, dict[str, Any]] = {}
    activation = 0.0
    for name in ("system", *BASELINES):
        url = bench.targets.urls().get(name)
        if url is None:
            continue
        await bench.settle()
        if name == "system":
            event = await bench.create_event(
                "Flash sale",
                [{"categoryName": "Hot", "price": 50, "totalSeats": o.seats, "description": "hot"}],
            )
            event_id = event_id_of(event)
            category_id = int(event["ticketCategories"][0]["id"])
            # The sale opens on a live actor: activation is the many-categories figure.
            assert bench.organizer is not None
            activation = await _hold_and_release(bench, bench.organizer[1], event_id, category_id)
        else:
            event_id = 1
            _, created = await bench.request(
                "POST", f"{url}/bench/categories", body={"eventId": 1, "totalSeats": o.seats},
                expect=201,
            )  # fmt: skip
            category_id = int(created["id"])
        jobs = jobs_for(
            bench, "flash", url, buyers, o.flash_concurrency,
            params={"event_id": event_id, "category_id": category_id},
        )  # fmt: skip
        t0 = min(job.start_at for job in jobs)
        samples, extras = merge(await drive(bench, f"flash sale · {name}", jobs))
        per_target[name] = samples
        result.series[name] = timeline(samples, t0)
        sold_out = (extras.get("last_order") or t0) - t0
        holds = int(extras.get("holds", 0))
        orders = extras.get("orders", [])
        figures[name] = {
            "holds_per_s": holds / sold_out if sold_out > 0 else None,
            "orders_per_s": len(orders) / sold_out if sold_out > 0 else None,
            "sell_out_s": sold_out,
            "requests_per_s": rate(samples),
        }
        if name == "system":
            audit = await audit_system(bench, event_id, category_id, extras, samples)
        else:
            audit = await audit_baseline(bench, url, category_id, extras, samples)
        audits[name] = audit
        if not audit["passed"]:
            result.passed = False
    result.audit = audits
    if "system" in figures:
        result.notes.append(
            f"system: the category's first hold (activation) took {activation:.0f} ms"
        )
    result.rows = [
        Row("holds/s until sold out", "1/s", {n: f["holds_per_s"] for n, f in figures.items()}),
        Row("orders/s until sold out", "1/s", {n: f["orders_per_s"] for n, f in figures.items()}),
        Row("time to sell out", "s", {n: f["sell_out_s"] for n, f in figures.items()}, "lower"),
        Row("all answers/s", "1/s", {n: f["requests_per_s"] for n, f in figures.items()}),
        *latency_rows(
            "lock", {n: [s for s in v if s[0] == "reserve"] for n, v in per_target.items()}
        ),
        *latency_rows(
            "order with lock", {n: [s for s in v if s[0] == "order"] for n, v in per_target.items()}
        ),
    ]
    order_p99 = next(r for r in result.rows if r.metric == "order with lock p99")
    system_p99, baseline_p99 = order_p99.values.get("system"), order_p99.values.get("baseline")
    order_p99.goal = "< baseline"
    if system_p99 is not None and baseline_p99 is not None:
        order_p99.met = system_p99 < baseline_p99
    result.rows.append(
        Row(
            "audit: sold == capacity everywhere, no oversell, no 5xx",
            "",
            {n: float(a["passed"]) for n, a in audits.items()},
            better="",
            goal="1 (pass)",
            met=all(a["passed"] for a in audits.values()),
        )
    )
    return result


def _response_counts(extras: dict[str, Any], samples: Sequence[Sample]) -> dict[str, Any]:
    orders = extras.get("orders", [])
    ids = [order_id for order_id, _, _ in orders]
    return {
        "sold_per_responses": sum(q for _, q, _ in orders),
        "orders_ok": len(orders),
        "holds_ok": int(extras.get("holds", 0)),
        "duplicate_order_ids": len(ids) - len(set(ids)),
        "server_errors": server_errors(samples),
        "lost_orders": list(extras.get("lost", []))[:20],
        "lost_count": len(extras.get("lost", [])),
    }


async def audit_system(
    bench: Bench,
    event_id: int,
    category_id: int,
    extras: dict[str, Any],
    samples: Sequence[Sample],
) -> dict[str, Any]:
    """Sold seats per the ledger (rows and counter), the API's live view and the responses."""
    capacity = bench.options.seats
    audit: dict[str, Any] = {"capacity": capacity, **_response_counts(extras, samples)}
    try:
        import psycopg

        async with await psycopg.AsyncConnection.connect(bench.database_url) as conn:
            cur = await conn.execute(
                "SELECT coalesce(sum(quantity), 0) FROM orders "
                "WHERE category_id = %s AND status <> 'cancelled'",
                (category_id,),
            )
            audit["sold_per_ledger_rows"] = int((await cur.fetchone() or (0,))[0])
            cur = await conn.execute(
                "SELECT sold_seats FROM ticket_categories WHERE id = %s", (category_id,)
            )
            audit["sold_per_ledger_counter"] = int((await cur.fetchone() or (0,))[0])
    except Exception as exc:  # the audit reports what it could not read
        audit["ledger_error"] = f"{type(exc).__name__}: {exc}"
    assert bench.organizer is not None
    status, orders = await _every_order(bench, event_id)
    if status == 200:
        audit["sold_per_orders_api"] = sum(
            int(o.get("quantity", 0))
            for o in orders
            if int(o.get("categoryId", category_id)) == category_id
            and o.get("status") != "cancelled"
        )
    else:
        audit["orders_api_error"] = f"GET /api/orders/event answered {status}"
    # The live view follows the change feed: give it a moment to settle on the final state.
    deadline = time.monotonic() + 10
    while True:
        _, tickets = await bench.request(
            "GET", f"{bench.targets.system}/api/events/{event_id}/tickets"
        )
        category: dict[str, Any] = next(
            (c for c in tickets or [] if int(c.get("id", 0)) == category_id), {}
        )
        available = category.get("availableSeats")
        if available == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    if available is not None:
        audit["available_per_api"] = int(available)
        audit["sold_per_api"] = int(category.get("totalSeats", capacity)) - int(available)
    counts = [
        audit.get(key)
        for key in (
            "sold_per_ledger_rows",
            "sold_per_ledger_counter",
            "sold_per_orders_api",
            "sold_per_api",
            "sold_per_responses",
        )
    ]
    audit["passed"] = (
        all(count == capacity for count in counts)
        and audit["holds_ok"] == audit["orders_ok"]
        and audit["server_errors"] == 0
        and audit["lost_count"] == 0
        and audit["duplicate_order_ids"] == 0
    )
    return audit


async def _every_order(bench: Bench, event_id: int) -> tuple[int, list[dict[str, Any]]]:
    """The event's orders as its organizer lists them, page after page (the API answers one
    page at a time: 1,000 orders read as the whole sale once it sold more)."""
    assert bench.organizer is not None
    url = f"{bench.targets.system}/api/orders/event/{event_id}"
    orders: list[dict[str, Any]] = []
    while True:
        status, page = await bench.request(
            "GET", f"{url}?limit={ORDER_PAGE}&offset={len(orders)}", bench.organizer[1]
        )
        if status != 200 or not isinstance(page, list):
            return status, orders
        orders += page
        if len(page) < ORDER_PAGE:
            return status, orders


async def audit_baseline(
    bench: Bench, url: str, category_id: int, extras: dict[str, Any], samples: Sequence[Sample]
) -> dict[str, Any]:
    capacity = bench.options.seats
    audit: dict[str, Any] = {"capacity": capacity, **_response_counts(extras, samples)}
    _, row = await bench.request("GET", f"{url}/bench/categories/{category_id}", expect=200)
    audit.update(
        sold_per_ledger_rows=int(row["ledgerSold"]),
        sold_per_ledger_counter=int(row["sold"]),
        held_left=int(row["held"]),
    )
    audit["passed"] = (
        audit["sold_per_ledger_rows"] == capacity
        and audit["sold_per_ledger_counter"] == capacity
        and audit["sold_per_responses"] == capacity
        and audit["held_left"] == 0
        and audit["server_errors"] == 0
        and audit["lost_count"] == 0
    )
    return audit


# -- hot hold throughput -------------------------------------------------------------------------


async def hot_hold(bench: Bench) -> ScenarioResult:
    o = bench.options
    result = ScenarioResult("hot-hold")
    big = 1_000_000
    per_target: dict[str, list[Sample]] = {}
    cpu: dict[str, float | None] = {}
    client: dict[str, float | None] = {}
    for name, url in bench.targets.urls().items():
        await bench.settle()
        if name == "system":
            event = await bench.create_event(
                "Hot hold", [{"categoryName": "Floor", "price": 20, "totalSeats": big}]
            )
            event_id = event_id_of(event)
            category_id = int(event["ticketCategories"][0]["id"])
        elif name in BASELINES:
            event_id = 2
            _, created = await bench.request(
                "POST", f"{url}/bench/categories", body={"eventId": 2, "totalSeats": big},
                expect=201,
            )  # fmt: skip
            category_id = int(created["id"])
        else:
            event_id, category_id = 1, 1
        params = {"event_id": event_id, "category_id": category_id}
        clients = bench.accounts[: o.hold_clients]
        warm = jobs_for(bench, "hold", url, clients, o.hold_clients, 1.0, params)
        await drive(bench, f"hot hold · {name} · warm-up", warm, seconds=1.0)
        jobs = jobs_for(bench, "hold", url, clients, o.hold_clients, o.duration, params)
        t0 = min(job.start_at for job in jobs)
        async with bench.server_cpu(name) as meter:
            raw = await drive(bench, f"hot hold · {name}", jobs, seconds=o.duration)
        client[name] = client_cores(raw)
        samples, _ = merge(raw)
        cpu[name] = meter.seconds * 1000 / max(1, len(samples))
        per_target[name] = samples
        result.series[name] = timeline(samples, t0, until=o.duration)
        errors = server_errors(samples)
        if errors:
            result.notes.append(f"{name}: {errors} answers were 5xx or transport errors")
        if name == "system":
            # Its holds expire LOCK_TTL_SECONDS later: not on the next target's clock.
            await bench.settle(holds_of=(event_id, category_id))
    throughput = {n: rate([s for s in v if ok(s)]) for n, v in per_target.items()}
    result.rows = [
        Row("holds/s (2xx)", "1/s", dict(throughput), goal=">= 0.5x bare ceiling, >= 5x baseline"),
        *latency_rows("hold", per_target),
        Row("server + PostgreSQL CPU per hold", "ms", cpu, better="lower"),
        Row("load generator busy (cores)", "", client, better=""),
        Row(
            "non-2xx answers",
            "",
            {n: float(sum(1 for s in v if not ok(s))) for n, v in per_target.items()},
            better="lower",
        ),
    ]
    system = throughput.get("system")
    if system is not None:
        bare, baseline = throughput.get("bare"), throughput.get("baseline")
        checks = []
        if bare:
            checks.append(system >= 0.5 * bare)
        if baseline:
            checks.append(system >= 5 * baseline)
        result.rows[0].met = all(checks) if checks else None
    return result


# -- browse ----------------------------------------------------------------------------------------


async def browse(bench: Bench) -> ScenarioResult:
    o = bench.options
    result = ScenarioResult("browse")
    per_target: dict[str, list[Sample]] = {}
    cpu: dict[str, float | None] = {}
    clients = bench.accounts[:64]
    for index, (name, url) in enumerate(bench.targets.urls().items()):
        await bench.settle()
        if name == "system":
            event_ids = []
            for i in range(5):
                event = await bench.create_event(
                    f"Concert {i}",
                    [
                        {"categoryName": c, "price": 30 + j, "totalSeats": 1000}
                        for j, c in enumerate(("VIP", "General", "Student"))
                    ],
                )
                event_ids.append(event_id_of(event))
            params: dict[str, Any] = {"event_ids": event_ids, "list_every": 10}
        elif name in BASELINES:
            # The baselines share their tables: each gets events of its own.
            first = 100 * (index + 1)
            for i in range(5):
                for _ in range(3):
                    await bench.request(
                        "POST", f"{url}/bench/categories",
                        body={"eventId": first + i, "totalSeats": 1000}, expect=201,
                    )  # fmt: skip
            params = {"event_ids": [first + i for i in range(5)], "list_every": 0}
        else:
            params = {"event_ids": [1, 2, 3, 4, 5], "list_every": 0}
        jobs = jobs_for(bench, "browse", url, clients, 64, o.duration, params)
        t0 = min(job.start_at for job in jobs)
        async with bench.server_cpu(name) as meter:
            samples, _ = merge(await drive(bench, f"browse · {name}", jobs, seconds=o.duration))
        cpu[name] = meter.seconds * 1000 / max(1, len(samples))
        per_target[name] = samples
        result.series[name] = timeline(samples, t0, until=o.duration)
    tickets = {n: [s for s in v if s[0] == "tickets" and ok(s)] for n, v in per_target.items()}
    result.rows = [
        Row("availability reads/s", "1/s", {n: rate(v) for n, v in tickets.items()}),
        *latency_rows("availability read", tickets),
        Row("server + PostgreSQL CPU per read", "ms", cpu, better="lower"),
    ]
    if "system" in per_target:
        events = [s for s in per_target["system"] if s[0] == "events" and ok(s)]
        result.rows.append(
            Row("event list p99 (system only)", "ms", {"system": pct(latency_ms(events), 99)}, "")
        )
        errors = sum(1 for s in per_target["system"] if not ok(s))
        if errors:
            result.notes.append(f"system: {errors} non-2xx reads")
    return result


# -- fan-out -------------------------------------------------------------------------------------


def _parse_timestamp(text: str) -> float | None:
    if "." not in text:
        return None  # whole seconds say nothing about milliseconds
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return None


async def fan_out(bench: Bench) -> ScenarioResult:
    o = bench.options
    result = ScenarioResult("fan-out")
    if bench.targets.system is None or bench.targets.realtime is None:
        result.notes.append("needs the system")
        return result
    event = await bench.create_event(
        "Fan-out", [{"categoryName": "Arena", "price": 40, "totalSeats": 1_000_000}]
    )
    event_id = event_id_of(event)
    category_id = int(event["ticketCategories"][0]["id"])
    sockets = bench.accounts[: o.sockets]
    # Activate the category first: the figure is fan-out, not cold activation.
    await _hold_and_release(bench, bench.accounts[0][1], event_id, category_id)
    params = {"event_id": event_id, "transports": [o.socket_transport]}
    jobs = jobs_for(bench, "sockets", bench.targets.realtime, sockets, 50, params=params)
    runner = bench.runner
    runner.reset()
    # The gateway's memory with no sockets, then with all joined (only a system we launched).
    gateway_pid = bench.system.pid if bench.system is not None else None
    gateway_before = await _footprint(gateway_pid)
    future = runner.submit(jobs)
    task = bench.progress.add_task(
        f"fan-out · connecting {len(sockets)} sockets", total=len(sockets)
    )
    deadline = time.monotonic() + 60 + len(sockets) / 10
    while runner.ready.value < len(sockets) and time.monotonic() < deadline and not future.done():
        bench.progress.update(task, completed=runner.ready.value)
        await asyncio.sleep(0.2)
    bench.progress.remove_task(task)
    gateway_joined = await _footprint(gateway_pid)
    # Drive changes at a steady rate: one single-seat hold each, remembered by the availability
    # it leaves, so every update a socket receives maps back to the change that caused it.
    sent: dict[int, float] = {}
    token = bench.accounts[0][1]
    changes = max(1, int(o.changes_per_second * o.duration))
    task = bench.progress.add_task("fan-out · changes", total=changes)
    body = {"eventId": event_id, "categoryId": category_id, "quantity": 1}
    t0 = time.time()
    for i in range(changes):
        await asyncio.sleep(max(0.0, t0 + i / o.changes_per_second - time.time()))
        started = time.time()
        status, answer = await bench.request(
            "POST", f"{bench.targets.system}/api/events/tickets/reserve", token, body
        )
        if 200 <= status < 300 and isinstance(answer, dict) and "availableSeats" in answer:
            sent[int(answer["availableSeats"])] = started
        bench.progress.update(task, completed=i + 1)
    bench.progress.remove_task(task)
    final = min(sent) if sent else None
    runner.final.value = -1 if final is None else final
    runner.stop_event.set()
    raw = await asyncio.wait_for(future, timeout=120)
    _, extras = merge(raw)
    # Only what the driven changes caused: the state each socket got on joining is not one.
    received: list[tuple[float, int, int, str, int]] = [
        r for r in extras.get("received", []) if r[0] >= t0
    ]
    ours = [r for r in received if r[2] in (category_id, 0)]
    by_change, unshown = shown_after(ours, sent)
    by_stamp = [
        (recv - stamp) * 1000
        for recv, _, cat, text, _ in received
        if cat in (category_id, 0) and (stamp := _parse_timestamp(text)) is not None
    ]
    reached = {sock for _, avail, _, _, sock in received if avail == final}
    connected = int(extras.get("connected", 0))
    failures = extras.get("failures", [])
    if failures:
        result.notes.append(f"{len(failures)} sockets failed to join, e.g. {failures[0]}")
        result.passed = False  # a fan-out figure over fewer sockets than asked is no figure
    if connected and len(reached) < connected:
        result.notes.append(
            f"{connected - len(reached)} of {connected} sockets never saw the final availability "
            "(20 s after the last change)"
        )
        result.passed = False  # the feed promises the latest state last: a lost update is a bug
    if unshown:
        result.notes.append(f"{unshown} (socket, change) pairs never showed the change")
        result.passed = False
    latencies = [latency * 1000 for _, latency in by_change]
    p99 = pct(latencies, 99)
    result.rows = [
        Row("sockets joined", "", {"system": float(connected)}, ""),
        Row("changes driven", "", {"system": float(len(sent))}, ""),
        Row("updates received", "", {"system": float(len(received))}, ""),
        Row("sockets that saw the final state", "", {"system": float(len(reached))}, ""),
        Row("socket clients busy (cores)", "", {"system": client_cores(raw)}, ""),
        Row("change→update p50 (from lock sent)", "ms", {"system": pct(latencies, 50)}, ""),
        Row(
            "change→update p99 (from lock sent)",
            "ms",
            {"system": p99},
            "",
            goal="≤ 100 ms",
            met=None if p99 is None else p99 <= 100,
        ),
        Row("change→update p50 (server timestamp)", "ms", {"system": pct(by_stamp, 50)}, ""),
        Row("change→update p99 (server timestamp)", "ms", {"system": pct(by_stamp, 99)}, ""),
        Row(
            "gateway memory per joined socket (USS)",
            "KB",
            {"system": _per_socket_kb(gateway_before, gateway_joined, runner.ready.value)},
            "",
        ),
    ]
    samples: list[Sample] = [("update", at, latency, 200, 0) for at, latency in by_change]
    result.series["system"] = timeline(samples, t0)
    return result


def shown_after(
    received: Sequence[tuple[float, int, int, str, int]], sent: Mapping[int, float]
) -> tuple[list[tuple[float, float]], int]:
    """For each socket and each driven change: (the instant the change was sent, seconds until
    the socket showed that state or a newer one), and how many pairs never showed it.

    A socket that falls behind gets the newest state of a category in place of the ones it has
    not read yet, so a change can reach it inside a newer update; that counts, at the instant
    the newer one arrived. Availability only falls while the scenario drives it (each change is
    one more held seat): "that state or newer" is any update showing as few seats or fewer.
    """
    changes = sorted(sent.items(), reverse=True)  # (seats left, sent at), in the order sent
    by_socket: dict[int, list[tuple[float, int]]] = {}
    for at, seats, _, _, socket in received:
        by_socket.setdefault(socket, []).append((at, seats))
    shown: list[tuple[float, float]] = []
    unshown = 0
    for updates in by_socket.values():
        updates.sort()
        next_change = 0
        for at, seats in updates:
            while next_change < len(changes) and changes[next_change][0] >= seats:
                sent_at = changes[next_change][1]
                shown.append((sent_at, at - sent_at))
                next_change += 1
        unshown += len(changes) - next_change
    return shown, unshown


async def _footprint(pid: int | None) -> memory.Footprint | None:
    return None if pid is None else await asyncio.to_thread(memory.footprint, pid)


def _per_socket_kb(
    before: memory.Footprint | None, after: memory.Footprint | None, sockets: int
) -> float | None:
    """The gateway's growth in private memory from no sockets to `sockets` joined ones."""
    if before is None or after is None or sockets <= 0:
        return None
    return (after.uss_kb - before.uss_kb) / sockets


# -- many categories ---------------------------------------------------------------------------


async def many_categories(bench: Bench) -> ScenarioResult:
    o = bench.options
    result = ScenarioResult("many-categories")
    if bench.targets.system is None or bench.system is None:
        result.notes.append("needs the system")
        return result
    categories: list[tuple[int, int]] = []
    per_event = max(1, o.categories_per_event)
    task = bench.progress.add_task(f"creating {o.categories} categories", total=o.categories)
    for first in range(0, o.categories, per_event):
        count = min(per_event, o.categories - first)
        event = await bench.create_event(
            f"Festival {first // per_event}",
            [
                {"categoryName": f"Zone {first + i}", "price": 15, "totalSeats": 1000}
                for i in range(count)
            ],
        )
        event_id = event_id_of(event)
        categories.extend((event_id, int(c["id"])) for c in event["ticketCategories"])
        bench.progress.update(task, completed=len(categories))
    bench.progress.remove_task(task)
    stats: list[dict[str, float]] = []
    idle = await asyncio.to_thread(process_stats, bench.system)
    # Cold activation on a quiet system: a few categories far from the hot set, one at a time.
    token = bench.accounts[0][1]
    task = bench.progress.add_task("many categories · cold activations, one at a time", total=None)
    quiet = [await _hold_and_release(bench, token, *pair) for pair in categories[-5:]]
    # Then the first hot set all at once, unmeasured, so the load starts on live actors.
    bench.progress.update(task, description="many categories · activating the first hot set")
    await asyncio.gather(
        *(_hold_and_release(bench, token, *pair) for pair in categories[: o.hot_set])
    )
    bench.progress.remove_task(task)
    # What one more live actor costs: its private memory, next to an idle worker's (a spare,
    # which has imported the actor code: see actors/spares.py).
    tree = await asyncio.to_thread(bench.system.tree)
    live_actors = await asyncio.to_thread(memory.titled, tree, "CategoryActor")
    idle_workers = await asyncio.to_thread(memory.titled, tree, "ray::IDLE")
    t0 = time.time() + 0.5

    async def sample() -> None:
        if stats and time.time() - stats[-1]["t"] - t0 < 0.5:
            return
        row = await asyncio.to_thread(process_stats, bench.system)  # type: ignore[arg-type]
        health = await bench.system_health()
        for key, value in health.items():
            if "actor" in key.lower() and isinstance(value, int | float):
                row[f"health_{key}"] = float(value)
        row["t"] = time.time() - t0
        stats.append(row)

    params = {"categories": categories, "hot_set": o.hot_set, "rotate_every": o.rotate_every}
    clients = bench.accounts[: o.churn_clients]
    jobs = jobs_for(bench, "churn", bench.targets.system, clients, o.churn_clients, o.duration * 2,
                    params)  # fmt: skip
    t0 = min(job.start_at for job in jobs)
    samples, _ = merge(
        await drive(
            bench, "many categories · rotating hot set", jobs, seconds=o.duration * 2, during=sample
        )
    )
    # Watch idle actors passivate once the load stops.
    task = bench.progress.add_task("many categories · watching passivation", total=None)
    settle_until = time.time() + o.actor_idle + 6
    while time.time() < settle_until:
        await sample()
        await asyncio.sleep(0.25)
    bench.progress.remove_task(task)
    reserves = sorted((s for s in samples if s[0] == "reserve"), key=lambda s: s[1])
    first_seen: dict[int, Sample] = {}
    for _, category_id in categories[: o.hot_set]:
        first_seen[category_id] = ("warm-up", 0.0, 0.0, 0, category_id)  # already active
    for s in reserves:
        first_seen.setdefault(s[4], s)
    cold = [s for s in first_seen.values() if ok(s) and s[0] == "reserve"]
    # A category is live from its first answered hold on; holds sent before then waited for
    # the activation too, even when they were not the first: they are neither cold nor warm.
    live_at: dict[int, float] = {}
    for s in reserves:
        if ok(s):
            live_at[s[4]] = min(live_at.get(s[4], math.inf), s[1] + s[2])
    for _, category_id in categories[: o.hot_set]:
        live_at[category_id] = 0.0
    warm = [s for s in reserves if ok(s) and s[1] >= live_at.get(s[4], math.inf)]
    cold_ids = {id(s) for s in cold}
    waited = [s for s in reserves if s[1] < live_at.get(s[4], math.inf) and id(s) not in cold_ids]
    peak_actors = max((r["actors"] for r in stats), default=0.0)
    end_actors = stats[-1]["actors"] if stats else None
    peak_rss = max((r["rss_mb"] for r in stats), default=0.0)
    per_actor = [r["actor_rss_mb"] / r["actors"] for r in stats if r["actors"]]
    # Live: the hot set, plus those that slid out less than ACTOR_IDLE_SECONDS ago (and slack
    # of one slide for the idle timer's own period).
    slide = max(1, o.hot_set // 4)
    bound = o.hot_set + slide * (math.ceil(o.actor_idle / o.rotate_every) + 2)
    answered = [s for s in reserves if ok(s)]
    result.rows = [
        Row("categories", "", {"system": float(len(categories))}, ""),
        # Every hold, cold and waited ones included: what a buyer of this load saw.
        Row("hold p50, all holds", "ms", {"system": pct(latency_ms(answered), 50)}, ""),
        Row("hold p99, all holds", "ms", {"system": pct(latency_ms(answered), 99)}, ""),
        Row("cold activation, one at a time, p50", "ms", {"system": pct(quiet, 50)}, ""),
        Row("cold activation, one at a time, max", "ms", {"system": max(quiet, default=None)}, ""),
        Row("cold activations under load", "", {"system": float(len(cold))}, ""),
        Row("cold activation under load p50", "ms", {"system": pct(latency_ms(cold), 50)}, ""),
        Row("cold activation under load p99", "ms", {"system": pct(latency_ms(cold), 99)}, ""),
        Row("other holds that waited for an activation", "", {"system": float(len(waited))}, ""),
        Row("warm hold p50", "ms", {"system": pct(latency_ms(warm), 50)}, ""),
        Row("warm hold p99", "ms", {"system": pct(latency_ms(warm), 99)}, ""),
        Row(
            "live actors, peak",
            "",
            {"system": peak_actors},
            "",
            goal=f"≤ {bound} (hot set {o.hot_set} sliding {slide} per {o.rotate_every:g} s)",
            met=peak_actors <= bound if peak_actors else None,
        ),
        Row("live actors after idle", "", {"system": end_actors}, ""),
        Row("system RSS before the load", "MB", {"system": idle["rss_mb"]}, ""),
        Row("system RSS, peak", "MB", {"system": peak_rss}, ""),
        Row("RSS per live actor", "MB", {"system": pct(per_actor, 50)}, ""),
        *_memory_rows(live_actors, idle_workers),
        Row("holds/s (2xx)", "1/s", {"system": rate([s for s in reserves if ok(s)])}, ""),
    ]
    if not peak_actors:
        result.notes.append(
            "no process titled CategoryActor found under the system; actor figures come "
            "from /api/health keys if any: "
            + ", ".join(k for k in (stats[-1] if stats else {}) if k.startswith("health_"))
        )
    if (typical := memory.median(live_actors)) is not None:
        result.notes.append(
            f"a live actor's private memory ({typical.uss_kb / 1024:.0f} MB) is mostly "
            f"{typical.describe()}"
        )
    if (spare := memory.median(idle_workers)) is not None:
        result.notes.append(
            f"an idle worker's (a spare's) private memory ({spare.uss_kb / 1024:.0f} MB): "
            f"{spare.describe()}"
        )
    result.series["system"] = timeline(reserves, t0)
    result.series["actors"] = [
        {"t": r["t"], "actors": r["actors"], "rss_mb": r["rss_mb"]} for r in stats
    ]
    return result


def _memory_rows(actors: list[memory.Footprint], idle: list[memory.Footprint]) -> list[Row]:
    """Private (USS) and proportional (PSS) memory of a live actor and of an idle worker (a
    spare): RSS counts the shared libraries in every process, so it overstates what one more
    costs."""

    def mb(footprints: list[memory.Footprint], size: Callable[[memory.Footprint], int]) -> Any:
        return pct([size(f) / 1024 for f in footprints], 50)

    return [
        Row("USS per live actor (private)", "MB", {"system": mb(actors, lambda f: f.uss_kb)}, ""),
        Row("PSS per live actor", "MB", {"system": mb(actors, lambda f: f.pss_kb)}, ""),
        Row("USS per idle worker (a spare)", "MB", {"system": mb(idle, lambda f: f.uss_kb)}, ""),
    ]


# -- actor ceiling -------------------------------------------------------------------------------


async def actor_ceiling(bench: Bench) -> ScenarioResult:
    """One category actor fed directly by caller processes (`benchmarks.actor_ceiling`), in a
    Ray runtime of its own against the bench's PostgreSQL: the bound of one hot category."""
    o = bench.options
    result = ScenarioResult("actor-ceiling")
    await bench.settle()
    argv = [
        sys.executable, "-m", "benchmarks.actor_ceiling", "--database-url", bench.database_url,
        "--seconds", str(o.duration), "--callers", str(o.actor_callers),
        "--confirms", str(o.actor_confirms),
    ]  # fmt: skip
    task = bench.progress.add_task("actor ceiling · holds, then confirms", total=None)
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    bench.progress.remove_task(task)
    try:
        figures: dict[str, Any] = json.loads(out)
    except ValueError:
        result.passed = False
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        result.notes.append(f"actor ceiling exited with {process.returncode}: {' | '.join(tail)}")
        return result
    holds, confirms = figures.get("holds_per_s"), figures.get("confirms_per_s")
    exact = figures.get("orders_in_ledger") == figures.get("confirms") == o.actor_confirms
    result.rows = [
        Row("holds/s, one actor, no HTTP", "1/s", {"system": holds}, "",
            goal=">= 30,000", met=None if holds is None else holds >= 30_000),
        Row("confirms/s, one actor, group commit", "1/s", {"system": confirms}, "",
            goal=">= 5,000", met=None if confirms is None else confirms >= 5_000),
        Row("hold batch p50", "ms", {"system": figures.get("hold_batch_p50_ms")}, ""),
        Row("hold batch p99", "ms", {"system": figures.get("hold_batch_p99_ms")}, ""),
        Row("confirm batch p99", "ms", {"system": figures.get("confirm_batch_p99_ms")}, ""),
        Row("actor busy while holding (cores)", "", {"system": figures.get("actor_cpu_share")},
            ""),
        Row("orders in the ledger = confirms answered", "", {"system": float(exact)}, "",
            goal="1 (pass)", met=exact),
    ]  # fmt: skip
    result.notes.append(
        f"{figures.get('callers')} caller processes, batches of {figures.get('batch')}, "
        f"{figures.get('in_flight_per_caller')} in flight each; actor RSS "
        f"{figures.get('actor_rss_mb')} MB"
    )
    result.passed = exact
    return result


async def _hold_and_release(bench: Bench, token: str, event_id: int, category_id: int) -> float:
    """Hold one seat and give it back; returns the hold's latency in ms."""
    body = {"eventId": event_id, "categoryId": category_id, "quantity": 1}
    started = time.perf_counter()
    status, hold = await bench.request(
        "POST", f"{bench.targets.system}/api/events/tickets/reserve", token, body
    )
    latency = (time.perf_counter() - started) * 1000
    if 200 <= status < 300 and isinstance(hold, dict):
        await bench.request(
            "POST", f"{bench.targets.system}/api/events/tickets/release", token,
            {**body, "lockId": hold.get("lockId")},
        )  # fmt: skip
    return latency


SCENARIOS: dict[str, Callable[[Bench], Awaitable[ScenarioResult]]] = {
    "flash-sale": flash_sale,
    "hot-hold": hot_hold,
    "browse": browse,
    "fan-out": fan_out,
    "many-categories": many_categories,
    "actor-ceiling": actor_ceiling,
}

# Scenarios of their own module import the helpers above: registered once those exist.
from benchmarks.cluster import cluster  # noqa: E402
from benchmarks.waiting_room import waiting_room  # noqa: E402
from benchmarks.waitlist import waitlist  # noqa: E402

SCENARIOS["waitlist"] = waitlist
SCENARIOS["waiting-room"] = waiting_room
SCENARIOS["cluster"] = cluster
