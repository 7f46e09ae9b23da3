"""The bench's own world: a temp DATA_DIR, PostgreSQL, the system, the ceiling and the baseline.

It starts each as a subprocess, waits for health, registers the virtual buyers through the REST
API, runs the chosen scenarios, writes the report, and tears everything down again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from benchmarks import memory
from benchmarks.loadgen import Account, LoadRunner
from persistence.embedded import EmbeddedPostgres

BENCH_JWT_SECRET = "boxoffice-bench-secret-not-for-production"
PASSWORD = "bench-password-123"
VENV_BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parent.parent


def uvicorn_flags() -> list[str]:
    """The gateway's uvicorn settings, so the ceiling and the baseline run on the same ones."""
    flags = ["--workers", "1", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    try:
        import uvloop  # noqa: F401

        flags += ["--loop", "uvloop"]
    except ImportError:
        flags += ["--loop", "asyncio"]
    return flags


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class BenchOptions:
    scenarios: tuple[str, ...]
    quick: bool = False
    targets: tuple[str, ...] = ("system", "bare", "ceiling", "baseline", "baseline_nosync")
    buyers: int = 2000
    seats: int = 500
    flash_concurrency: int = 256
    hold_clients: int = 256
    duration: float = 12.0
    sockets: int = 1000
    changes_per_second: float = 5.0
    socket_transport: str = "websocket"
    categories: int = 10_000
    categories_per_event: int = 50
    hot_set: int = 16
    rotate_every: float = 3.0
    churn_clients: int = 32
    # waiting-room (issue 13)
    queue_buyers: int = 20_000
    queue_sockets: int = 2_000
    queue_rate: int = 500
    queue_seats: int = 5_000
    procs: int = 2
    lock_ttl: float = 30.0
    actor_callers: int = 4
    actor_confirms: int = 20_000
    waiters: int = 1000
    waitlist_seats: int = 200
    waitlist_churn: float = 20.0
    decline_every: int = 10
    offer_seconds: float = 3.0
    actor_idle: float = 5.0
    output: Path | None = None
    keep_data: bool = False
    progress: bool = True


class ServiceFailed(RuntimeError):
    """A process the bench started did not come up healthy."""


@dataclass(slots=True)
class Service:
    """One server subprocess in its own process group, with its output in a log file."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def launch(
        cls, name: str, argv: Sequence[str], env: dict[str, str], url: str, log_dir: Path
    ) -> Service:
        log_path = log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                list(argv),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        return cls(name, url, process, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_healthy(self, session: aiohttp.ClientSession, within: float) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceFailed(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{self.url}/api/health") as resp:
                    if resp.status == 200:
                        body = await resp.json(content_type=None)
                        return body if isinstance(body, dict) else {}
            await asyncio.sleep(0.25)
        raise ServiceFailed(f"{self.name} not healthy within {within:.0f} s:\n{self.log_tail()}")

    async def stop(self, within: float = 60.0) -> tuple[int | None, int]:
        """SIGTERM and wait; SIGKILL its whole group if it will not go or left strays behind.

        Returns the exit status and how many processes of its group outlived it.
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.process.wait, within)
        strays = 0
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if proc.pid != self.pid and os.getpgid(proc.pid) == self.pid:
                    strays += 1
        if self.process.poll() is None or strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            await asyncio.to_thread(self.process.wait, 10)
        return self.process.returncode, strays

    def tree(self) -> list[psutil.Process]:
        return process_tree(self.pid)


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants; empty once it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_cpu(pids: Sequence[int | None]) -> dict[tuple[int, float], float]:
    """User + system CPU seconds of each process in the trees under `pids`, keyed by pid and
    start time (a pid can be reused)."""
    seen: dict[tuple[int, float], float] = {}
    for pid in pids:
        for proc in process_tree(pid) if pid is not None else []:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                seen[(proc.pid, proc.create_time())] = times.user + times.system
    return seen


class CpuMeter:
    """CPU seconds that process trees spend during an `async with` block.

    Counted per process and sampled as it runs: a process that exits in the block (a category
    actor passivating, a PostgreSQL backend closing) keeps what it spent until its last sample
    instead of taking its whole lifetime out of a tree's total.
    """

    def __init__(self, pids: Sequence[int | None], every: float = 0.25) -> None:
        self.pids = list(pids)
        self.every = every
        self.start: dict[tuple[int, float], float] = {}
        self.last: dict[tuple[int, float], float] = {}
        self._sampler: asyncio.Task[None] | None = None

    @property
    def seconds(self) -> float:
        return sum(cpu - self.start.get(key, 0.0) for key, cpu in self.last.items())

    async def _sample(self) -> None:
        self.last.update(await asyncio.to_thread(tree_cpu, self.pids))

    async def _keep_sampling(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self._sample()

    async def __aenter__(self) -> CpuMeter:
        self.start = await asyncio.to_thread(tree_cpu, self.pids)
        self.last = dict(self.start)
        self._sampler = asyncio.create_task(self._keep_sampling())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        await self._sample()


def process_stats(service: Service) -> dict[str, float]:
    """RSS of the service's process tree and how many category actors live in it."""
    rss = actor_rss = 0
    actors = workers = 0
    for proc in service.tree():
        try:
            mem = proc.memory_info().rss
            title = memory.title(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        rss += mem
        if "CategoryActor" in title:
            actors += 1
            actor_rss += mem
        elif title.startswith("ray::"):
            workers += 1
    return {
        "rss_mb": rss / 2**20,
        "actor_rss_mb": actor_rss / 2**20,
        "actors": float(actors),
        "idle_workers": float(workers),
    }


class Postgres:
    """The bench's PostgreSQL: the project's embedded server in the bench DATA_DIR.

    The system, the baseline and the audit all use this one server (the system through
    DATABASE_URL), so the baseline runs against the same PostgreSQL as the system.
    """

    def __init__(self, data_dir: Path) -> None:
        self._server = EmbeddedPostgres(data_dir)

    def start(self) -> str:
        return self._server.start()

    @property
    def pid(self) -> int | None:
        return self._server.pid

    def stop(self) -> None:
        self._server.stop()


@dataclass(slots=True)
class Targets:
    system: str | None = None
    realtime: str | None = None
    bare: str | None = None
    ceiling: str | None = None
    baseline: str | None = None
    baseline_nosync: str | None = None

    def urls(self) -> dict[str, str]:
        pairs = {
            "system": self.system,
            "bare": self.bare,
            "ceiling": self.ceiling,
            "baseline": self.baseline,
            "baseline_nosync": self.baseline_nosync,
        }
        return {name: url for name, url in pairs.items() if url}


# The servers besides the system: module, and what differs in their environment.
REFERENCE_SERVERS: dict[str, tuple[str, dict[str, str]]] = {
    "bare": ("bare", {}),
    "ceiling": ("ceiling", {}),
    "baseline": ("pg_baseline", {}),
    "baseline_nosync": ("pg_baseline", {"BASELINE_SYNCHRONOUS_COMMIT": "off"}),
}
QUIET_CORES = 0.15


@dataclass(slots=True)
class Bench:
    """What a scenario gets: where to send load, who buys, and how to sample the system."""

    options: BenchOptions
    targets: Targets
    session: aiohttp.ClientSession
    runner: LoadRunner
    accounts: list[Account]
    organizer: Account | None
    system: Service | None
    database_url: str
    progress: Any  # rich.progress.Progress (or a stand-in)
    services: dict[str, Service] = field(default_factory=dict)
    postgres_pid: int | None = None

    async def settle(
        self, *, holds_of: tuple[int, int] | None = None, within: float = 120.0
    ) -> float:
        """Wait until what ran before has finished its deferred work, so it is not charged to
        what runs next: the system's holds of `holds_of` (event, category) expired, then every
        server and PostgreSQL below QUIET_CORES for a second. Returns the seconds waited."""
        started = time.monotonic()
        deadline = started + within
        if holds_of is not None and self.targets.system is not None:
            event_id, category_id = holds_of
            url = f"{self.targets.system}/api/events/{event_id}/tickets"
            while time.monotonic() < deadline:
                _, categories = await self.request("GET", url)
                held = next(
                    (c["reservedSeats"] for c in categories or () if c["id"] == category_id), 0
                )
                if not held:
                    break
                await asyncio.sleep(0.5)
        pids = [service.pid for service in self.services.values()] + [self.postgres_pid]
        while time.monotonic() < deadline:
            async with CpuMeter(pids, every=0.5) as meter:
                await asyncio.sleep(1.0)
            if meter.seconds < QUIET_CORES:
                break
        return time.monotonic() - started

    def server_cpu(self, target: str) -> CpuMeter:
        """Meters the CPU of a target's processes and of PostgreSQL, which the system and the
        baseline both lean on: on a shared machine, cost per request says more than requests
        per second."""
        service = self.services.get(target)
        return CpuMeter([service.pid if service else None, self.postgres_pid])

    async def request(
        self,
        method: str,
        url: str,
        token: str | None = None,
        body: Any = None,
        expect: int | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, url, json=body, headers=headers) as resp:
            payload = await resp.json(content_type=None) if resp.content_length != 0 else None
            if expect is not None and not 200 <= resp.status < 300:
                raise RuntimeError(f"{method} {url} answered {resp.status}: {payload}")
            return resp.status, payload

    async def create_event(self, name: str, categories: Sequence[dict[str, Any]]) -> dict[str, Any]:
        assert self.organizer is not None and self.targets.system is not None
        body = {
            "eventName": name,
            "eventCategory": "Bench",
            "description": "load test",
            "eventDate": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "location": "loopback",
            "ticketCategories": list(categories),
        }
        _, event = await self.request(
            "POST", f"{self.targets.system}/api/events", self.organizer[1], body, expect=201
        )
        assert isinstance(event, dict)
        return event

    async def system_health(self) -> dict[str, Any]:
        if self.targets.system is None:
            return {}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            status, body = await self.request("GET", f"{self.targets.system}/api/health")
            if status == 200 and isinstance(body, dict):
                return body
        return {}


def event_id_of(event: dict[str, Any]) -> int:
    return int(event.get("idEvent", event.get("id", 0)))


async def register_accounts(
    session: aiohttp.ClientSession, api: str, count: int, prefix: str, role: str = "assistant"
) -> list[Account]:
    """Sign up `count` users through the REST API and log each in for a token."""
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> Account:
        creds = {"username": f"{prefix}-{i}@bench.local", "password": PASSWORD}
        async with gate:
            async with session.post(
                f"{api}/api/auth/register", json={**creds, "role": role}
            ) as resp:
                if resp.status >= 300:
                    raise RuntimeError(f"register answered {resp.status}: {await resp.text()}")
            async with session.post(f"{api}/api/auth/login", json=creds) as resp:
                body = await resp.json(content_type=None)
                if resp.status >= 300:
                    raise RuntimeError(f"login answered {resp.status}: {body}")
        return int(body["user"]["id"]), str(body["access_token"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def mint_accounts(count: int, first_id: int = 1_000_000) -> list[Account]:
    """Tokens for the ceiling and baseline alone, when no system runs to sign users up."""
    from sales.identity import Role, TokenService

    tokens = TokenService(BENCH_JWT_SECRET, timedelta(days=1))
    return [(first_id + i, tokens.issue(first_id + i, Role.ASSISTANT)) for i in range(count)]


def system_env(options: BenchOptions, data_dir: Path, database_url: str) -> dict[str, str]:
    api, realtime = free_port(), free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "API_GATEWAY_PORT": str(api),
        "REALTIME_SERVICE_PORT": str(realtime),
        "JWT_SECRET": BENCH_JWT_SECRET,
        "JWT_EXPIRES_IN": "1d",
        "LOCK_TTL_SECONDS": str(options.lock_ttl),
        "ACTOR_IDLE_SECONDS": str(options.actor_idle),
        "BCRYPT_ROUNDS": "4",
        # A socket only joins once; the REST side has no per-client limit to trip over.
        "SOCKET_EVENTS_PER_SECOND": "1000",
        "SOCKET_EVENT_BURST": "1000",
        # Hot hold measures holds/s: each client keeps holding for the whole run, far past
        # the 20 live holds per buyer a real sale allows.
        "MAX_LIVE_HOLDS_PER_USER": "1000000",
        # The waiting-list scenario lets declined offers expire within the run.
        "WAITLIST_OFFER_SECONDS": str(options.offer_seconds),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("RAY_ADDRESS", None)
    return env


def default_output() -> Path:
    return REPO_ROOT / "benchmarks" / "results" / datetime.now().strftime("%Y%m%d-%H%M%S")


def settings_not_default(env: dict[str, str]) -> dict[str, str]:
    """The system's settings in this bench that differ from what `make run` uses."""
    from gateway.config import Settings

    defaults = Settings.model_fields
    shown: dict[str, str] = {}
    for name in ("LOCK_TTL_SECONDS", "ACTOR_IDLE_SECONDS", "BCRYPT_ROUNDS",
                 "SOCKET_EVENTS_PER_SECOND", "SOCKET_EVENT_BURST",
                 "MAX_LIVE_HOLDS_PER_USER", "WAITLIST_OFFER_SECONDS"):  # fmt: skip
        default = defaults[name.lower()].default
        if name in env and float(env[name]) != float(default):
            shown[name] = f"{env[name]} (default {default:g})"
    return shown


async def run(options: BenchOptions) -> int:
    """Run the bench end to end; the exit status is non-zero when an audit failed."""
    from benchmarks import report, scenarios

    out_dir = options.output or default_output()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="boxoffice-bench-"))
    progress = report.make_progress(options.progress)
    services: list[Service] = []
    postgres = Postgres(data_dir)
    runner = LoadRunner(options.procs)
    results: list[scenarios.ScenarioResult] = []
    started = time.time()
    load_at_start = os.getloadavg()
    timeout = aiohttp.ClientTimeout(total=120)
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends them: a POST on a
    # connection the server is closing fails with "Can not write request body" (aiohttp does
    # not resend a POST), which crashed the waitlist scenario's intruder once.
    connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=2.0)
    try:
        with progress:
            setup = progress.add_task("setting up", total=None)
            database_url = await asyncio.to_thread(postgres.start)
            targets = Targets()
            env = system_env(options, data_dir, database_url)
            system: Service | None = None
            if "system" in options.targets:
                system = Service.launch(
                    "system",
                    [str(VENV_BIN / "boxoffice"), "serve"],
                    env,
                    f"http://127.0.0.1:{env['API_GATEWAY_PORT']}",
                    out_dir,
                )
                services.append(system)
                targets.system = system.url
                targets.realtime = f"http://127.0.0.1:{env['REALTIME_SERVICE_PORT']}"
            for name, (module, extra_env) in REFERENCE_SERVERS.items():
                if name not in options.targets:
                    continue
                port = free_port()
                argv = [
                    sys.executable, "-m", "uvicorn", f"benchmarks.{module}:app_from_env",
                    "--factory", "--host", "127.0.0.1", "--port", str(port), *uvicorn_flags(),
                ]  # fmt: skip
                service = Service.launch(
                    name, argv, {**env, **extra_env}, f"http://127.0.0.1:{port}", out_dir
                )
                services.append(service)
                setattr(targets, name, service.url)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                warm = asyncio.ensure_future(runner.warm_up())
                for service in services:
                    await service.wait_healthy(session, within=180)
                await warm
                needed = max(
                    options.buyers,
                    options.hold_clients,
                    options.sockets,
                    options.waiters + options.waitlist_seats + 1,
                )
                organizer: Account | None = None
                if targets.system:
                    progress.update(setup, description=f"signing up {needed} buyers")
                    organizer = (
                        await register_accounts(
                            session, targets.system, 1, "organizer", role="organizer"
                        )
                    )[0]
                    accounts = await register_accounts(session, targets.system, needed, "buyer")
                else:
                    accounts = mint_accounts(needed)
                progress.remove_task(setup)
                bench = Bench(
                    options, targets, session, runner, accounts, organizer, system,
                    database_url, progress, {service.name: service for service in services},
                    postgres.pid,
                )  # fmt: skip
                for name in options.scenarios:
                    try:
                        result = await scenarios.SCENARIOS[name](bench)
                    except Exception as exc:  # one broken scenario must not hide the others
                        result = scenarios.ScenarioResult(name, passed=False)
                        result.notes.append(f"scenario crashed: {type(exc).__name__}: {exc}")
                    results.append(result)
                    progress.console.print(report.one_line(result))
    finally:
        runner.close()
        for service in reversed(services):
            code, strays = await service.stop()
            if code not in (0, -signal.SIGTERM) or strays:
                print(
                    f"{service.name} exited with {code}, {strays} stray processes killed;"
                    f" see {service.log_path}",
                    file=sys.stderr,
                )
        with contextlib.suppress(Exception):
            await asyncio.to_thread(postgres.stop)
        if not options.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    meta = report.machine(started, options)
    meta["settings_not_default"] = settings_not_default(system_env(options, data_dir, ""))
    meta["load_average_at_start"] = [round(x, 2) for x in load_at_start]
    meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report.write(out_dir, results, meta)
    report.print_table(results, meta, out_dir)
    return 0 if all(result.passed for result in results) else 1
