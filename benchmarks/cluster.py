"""The `cluster` scenario of issue 11: one hot category vs the same load spread over eight,
through one gateway and then two, all sharing one Ray runtime.

The bench's own system starts Ray inside its gateway; a second gateway cannot join that. So
this scenario starts a Ray head of its own (`ray start --head --block`, on loopback, in its
own process group) and `boxoffice serve` gateways joined to it with `RAY_ADDRESS`, on the
bench's PostgreSQL and JWT secret (the bench's buyers and tokens are valid on them). The
second gateway starts only for the two-gateway runs.

Each run holds seats for `duration` seconds with `hold_clients` clients, in categories of
its own (fresh inventories, so no run pays for another's live holds), and meters the CPU of
everything that serves it: the Ray head's tree (raylet, the category actors, the feed hub),
the gateways and PostgreSQL, in all and per part (per hold, so runs compare).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks import memory
from benchmarks.harness import (
    VENV_BIN,
    Bench,
    CpuMeter,
    Service,
    ServiceFailed,
    event_id_of,
    free_port,
    system_env,
)
from benchmarks.loadgen import Job, Sample
from benchmarks.scenarios import (
    Row,
    ScenarioResult,
    client_cores,
    drive,
    jobs_for,
    latency_ms,
    merge,
    ok,
    pct,
    rate,
    server_errors,
)

SPREAD = 8  # categories the spread load is dealt over, as in the measurement
JOIN_WITH = re.compile(r"ray start --address='([^']+)'")
# The runs, in order: gateways, categories.
RUNS = ((1, 1), (1, SPREAD), (2, 1), (2, SPREAD))


@dataclass(slots=True)
class RunFigures:
    holds_per_second: float
    p99_ms: float | None
    cpu_ms_per_hold: float
    cpu_ms_per_hold_by_part: dict[str, float]
    errors: int
    client_cores: float | None


def through(gateways: int) -> str:
    return "1 gateway" if gateways == 1 else f"{gateways} gateways"


def load(categories: int) -> str:
    return "1 hot category" if categories == 1 else f"spread over {categories}"


def run_label(gateways: int, categories: int) -> str:
    return f"{through(gateways)}, {load(categories)}"


def ray_head_argv(port: int, temp_dir: Path) -> list[str]:
    return [
        str(VENV_BIN / "ray"), "start", "--head", "--block",
        "--port", str(port),
        "--num-cpus", str(psutil.cpu_count() or 2),
        "--object-store-memory", str(80 * 1024 * 1024),
        "--include-dashboard", "false", "--disable-usage-stats",
        "--temp-dir", str(temp_dir),
    ]  # fmt: skip


async def _ray_address(head: Service, within: float = 120.0) -> str:
    """The address the head tells workers to join with, once it has started (Ray resolves
    the node's own IP, not loopback: the gateways must use the same)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if head.process.poll() is not None:
            raise ServiceFailed(f"the Ray head exited:\n{head.log_tail()}")
        started = JOIN_WITH.search(head.log_tail(200))
        if started:
            return started.group(1)
        await asyncio.sleep(0.25)
    raise ServiceFailed(f"the Ray head did not start within {within:.0f} s:\n{head.log_tail()}")


# Where a run's CPU went: the first marker found in a process's title names its part.
# Anything else under the Ray head is Ray's own (raylet, GCS, idle workers).
PARTS = (
    ("CategoryActor", "category actors"),
    ("FeedHub", "feed hub"),
    ("boxoffice", "gateways"),
    ("postgres", "PostgreSQL"),
)
RAY_PART = "Ray (raylet, GCS, other)"


def cpu_by_part(meter: CpuMeter) -> dict[str, float]:
    """The meter's CPU seconds per part of the system (a process gone by now: "exited")."""
    parts: dict[str, float] = {}
    for (pid, created), cpu in meter.last.items():
        spent = cpu - meter.start.get((pid, created), 0.0)
        try:
            name = memory.title(psutil.Process(pid))
        except psutil.Error:
            part = "exited"
        else:
            part = next((p for marker, p in PARTS if marker in name), RAY_PART)
        parts[part] = parts.get(part, 0.0) + spent
    return parts


def figures(samples: list[Sample], meter: CpuMeter, cores: float | None) -> RunFigures:
    good = [sample for sample in samples if ok(sample)]
    holds = max(1, len(good))
    return RunFigures(
        holds_per_second=rate(good),
        p99_ms=pct(latency_ms(good), 99),
        cpu_ms_per_hold=meter.seconds * 1000 / holds,
        cpu_ms_per_hold_by_part={
            part: seconds * 1000 / holds for part, seconds in cpu_by_part(meter).items()
        },
        errors=server_errors(samples),
        client_cores=cores,
    )


def rows(runs: dict[tuple[int, int], RunFigures]) -> list[Row]:
    """One row per figure and run, then the ratios the issue asks for."""
    out: list[Row] = []
    for key, run in runs.items():
        label = run_label(*key)
        out += [
            Row(f"holds/s (2xx), {label}", "1/s", {"system": run.holds_per_second}),
            Row(f"hold p99, {label}", "ms", {"system": run.p99_ms}, better="lower"),
            # In µs: the parts are tenths of a millisecond, which "ms" rounds away.
            Row(
                f"server + PostgreSQL CPU per hold, {label}",
                "µs",
                {"system": run.cpu_ms_per_hold * 1000},
                better="lower",
            ),
            *(
                Row(f"  of which {part}, {label}", "µs", {"system": ms * 1000}, better="lower")
                for part, ms in sorted(run.cpu_ms_per_hold_by_part.items())
            ),
            Row(f"5xx or transport errors, {label}", "", {"system": float(run.errors)}, "lower"),
            Row(f"load generator busy (cores), {label}", "", {"system": run.client_cores}, ""),
        ]

    def ratio(a: tuple[int, int], b: tuple[int, int]) -> float | None:
        if a not in runs or b not in runs or not runs[b].holds_per_second:
            return None
        return runs[a].holds_per_second / runs[b].holds_per_second

    for gateways in (1, 2):
        out.append(
            Row(
                f"spread ÷ hot holds/s, {through(gateways)}",
                "x",
                {"system": ratio((gateways, SPREAD), (gateways, 1))},
                better="",
            )
        )
    for categories in (1, SPREAD):
        out.append(
            Row(
                f"2 gateways ÷ 1 holds/s, {load(categories)}",
                "x",
                {"system": ratio((2, categories), (1, categories))},
                better="",
            )
        )
    return out


async def _categories(bench: Bench, count: int, name: str) -> tuple[int, list[int]]:
    seats = {"price": 20, "totalSeats": 1_000_000}
    event = await bench.create_event(
        name, [{"categoryName": f"Block {i}", **seats} for i in range(count)]
    )
    return event_id_of(event), [int(c["id"]) for c in event["ticketCategories"]]


def _jobs(
    bench: Bench, urls: list[str], event_id: int, categories: list[int], seconds: float
) -> list[Job]:
    """The hold clients dealt over the gateways; each gateway's share over the categories."""
    o = bench.options
    clients = bench.accounts[: o.hold_clients]
    params = {"event_id": event_id, "category_ids": categories}
    if len(urls) == 1:
        return jobs_for(bench, "hold", urls[0], clients, o.hold_clients, seconds, params)
    share = o.hold_clients // len(urls)
    jobs: list[Job] = []
    for index, url in enumerate(urls):
        mine = clients[index :: len(urls)]
        jobs += jobs_for(bench, "hold", url, mine, share, seconds, params, procs=1)
    return jobs


async def cluster(bench: Bench) -> ScenarioResult:
    o = bench.options
    result = ScenarioResult("cluster")
    if bench.system is None:
        result.notes.append("skipped: the cluster runs need the system's buyers")
        return result
    out_dir = bench.system.log_path.parent
    data_dir = Path(tempfile.mkdtemp(prefix="boxoffice-cluster-"))
    started: list[Service] = []
    runs: dict[tuple[int, int], RunFigures] = {}
    try:
        port = free_port()
        # Ray 2.60's token authentication, set alike on the head and every gateway, as
        # docs/deployment.md says a cluster must.
        auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
        argv = ray_head_argv(port, data_dir / "ray")
        head_env = system_env(o, data_dir, "") | auth
        head = Service.launch("cluster-ray-head", argv, head_env, "", out_dir)
        started.append(head)
        address = await _ray_address(head)
        gateways: list[Service] = []

        async def add_gateway() -> None:
            env = system_env(o, data_dir, bench.database_url)
            env |= auth | {"RAY_ADDRESS": address, "RAY_NAMESPACE": "bench-cluster"}
            name = f"cluster-gateway-{len(gateways) + 1}"
            url = f"http://127.0.0.1:{env['API_GATEWAY_PORT']}"
            argv = [str(VENV_BIN / "boxoffice"), "serve"]
            gateway = Service.launch(name, argv, env, url, out_dir)
            started.append(gateway)
            gateways.append(gateway)
            await gateway.wait_healthy(bench.session, within=180)

        for count, spread in RUNS:
            while len(gateways) < count:
                await add_gateway()
            await bench.settle()
            event_id, categories = await _categories(
                bench, spread, f"Cluster {run_label(count, spread)}"
            )
            urls = [gateway.url for gateway in gateways]
            label = f"cluster · {run_label(count, spread)}"
            await drive(bench, f"{label} · warm-up", _jobs(bench, urls, event_id, categories, 1.0))
            jobs = _jobs(bench, urls, event_id, categories, o.duration)
            served = [head.pid, *(gateway.pid for gateway in gateways), bench.postgres_pid]
            async with CpuMeter(served) as meter:
                raw = await drive(bench, label, jobs, seconds=o.duration)
            samples, _ = merge(raw)
            runs[(count, spread)] = figures(samples, meter, client_cores(raw))
            errors = runs[(count, spread)].errors
            if errors:
                result.notes.append(f"{label}: {errors} answers were 5xx or transport errors")
    finally:
        for service in reversed(started):
            _, strays = await service.stop()
            if strays:
                result.notes.append(f"{service.name}: {strays} stray processes killed")
        shutil.rmtree(data_dir, ignore_errors=True)
    result.rows = rows(runs)
    result.passed = bool(runs) and not any(run.errors for run in runs.values())
    return result
