"""Two Ray nodes on this machine (`tests/cluster/ray_cluster.py`, Ray's own `Cluster`) and two
`boxoffice serve` gateways joined to them, shared by the module's tests.

Every process this starts is ended at teardown, whatever the tests did: the gateways and the
cluster driver by their process groups, and every process under them (Ray's workers start
sessions of their own, so a process group alone would miss them) by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence import users
from sales.identity import Role, TokenService, user_stamp
from tests.e2e.test_system import BOXOFFICE, free_port
from tests.fixtures.system import TestUser, _test_password_hash

ROOT = Path(__file__).resolve().parent.parent.parent
# Short enough that the node-loss test can tell it from Ray's own detection (about 15 s).
CALL_DEADLINE_SECONDS = 3.0


@dataclass
class ClusterGateway:
    process: psutil.Popen
    api: str

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.api}/api/health", timeout=10)


@dataclass
class TwoNodes:
    driver: psutil.Popen
    answers: queue.Queue[str]
    namespace: str
    tokens: TokenService
    gateways: list[ClusterGateway] = field(default_factory=list)  # a and b, for every test
    # What a gateway is started with (`start_gateway`), and gateways one test started alone.
    environment: dict[str, str] = field(default_factory=dict)
    base: Path = Path()
    log: IO[bytes] | None = None
    others: list[ClusterGateway] = field(default_factory=list)

    def launch(self, name: str, **settings: str) -> ClusterGateway:
        """Start a gateway joined to the cluster (not waited for): the shared environment,
        its own ports and data directory, and `settings` over them."""
        port = free_port()
        environment = {
            **self.environment,
            "DATA_DIR": str(self.base / name),
            "API_GATEWAY_PORT": str(port),
            "REALTIME_SERVICE_PORT": str(free_port()),
            **settings,
        }
        served = psutil.Popen(
            [BOXOFFICE, "serve"],
            env=environment,
            start_new_session=True,
            stdout=self.log,
            stderr=self.log,
        )
        return ClusterGateway(served, f"http://127.0.0.1:{port}")

    def start_gateway(self, name: str, **settings: str) -> ClusterGateway:
        """A gateway of one test's own, healthy; ended at the module's teardown (or by the
        test)."""
        gateway = self.launch(name, **settings)
        self.others.append(gateway)
        _wait_healthy(gateway)
        return gateway

    def command(self, command: str, within: float = 120.0) -> dict[str, Any]:
        """Send a command to the cluster driver; its JSON answer."""
        stdin = self.driver.stdin
        assert stdin is not None
        stdin.write(f"{command}\n".encode())
        stdin.flush()
        answer: dict[str, Any] = json.loads(self.answers.get(timeout=within))
        assert answer.get("command") == command and "error" not in answer, answer
        return answer

    async def user(self, db: AsyncEngine, role: Role = Role.ASSISTANT) -> TestUser:
        username = f"user-{uuid.uuid4().hex[:12]}@example.com"
        async with db.begin() as conn:
            record = await users.create_user(conn, username, _test_password_hash(), role.value)
        token = self.tokens.issue(record.id, role, since=user_stamp(record.created_at))
        return TestUser(record.id, username, role, token)


def _read_lines(stream: IO[bytes], into: queue.Queue[str]) -> None:
    """The driver's JSON answers, each at the start of a line (anything after it ignored)."""
    decoder = json.JSONDecoder()
    for line in stream:
        text = line.decode(errors="replace").strip()
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                into.put(json.dumps(decoder.raw_decode(text)[0]))


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _end(processes: list[psutil.Popen], stragglers: list[psutil.Process]) -> None:
    """SIGKILL each group and every process seen under them (cleanup only)."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    for process in stragglers:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    for process in processes:
        with contextlib.suppress(psutil.TimeoutExpired):
            process.wait(10)


def _first_answer(driver: psutil.Popen, answers: queue.Queue[str], within: float) -> str:
    """The driver's first line; fails at once if it exited (Ray could not start a node)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the cluster driver exited: see cluster.log"
        try:
            return answers.get(timeout=0.5)
        except queue.Empty:
            continue
    raise AssertionError("the two Ray nodes did not start in time")


def _wait_healthy(gateway: ClusterGateway, within: float = 240.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert gateway.process.poll() is None, "boxoffice serve exited early"
        with contextlib.suppress(httpx.TransportError):
            if gateway.health().status_code == 200:
                return
        time.sleep(0.2)  # polling a process we cannot be told about
    raise AssertionError("a gateway did not become healthy")


@pytest.fixture(scope="module")
def two_nodes(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    base = tmp_path_factory.mktemp("cluster")
    namespace = f"cluster-{uuid.uuid4().hex[:8]}"
    secret = uuid.uuid4().hex * 2
    log = (base / "cluster.log").open("ab")
    driver = psutil.Popen(
        [sys.executable, "-m", "tests.cluster.ray_cluster", namespace],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    answers: queue.Queue[str] = queue.Queue()
    assert driver.stdout is not None
    threading.Thread(target=_read_lines, args=(driver.stdout, answers), daemon=True).start()
    nodes = TwoNodes(driver, answers, namespace, TokenService(secret, timedelta(hours=2)))
    nodes.base, nodes.log = base, log
    seen: list[psutil.Process] = []
    try:
        address = json.loads(_first_answer(driver, answers, within=180))["address"]
        nodes.environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "RAY_ADDRESS": address,
            "RAY_NAMESPACE": namespace,
            "JWT_SECRET": secret,
            "BCRYPT_ROUNDS": "4",
            "ACTOR_CALL_TIMEOUT_SECONDS": str(CALL_DEADLINE_SECONDS),
        }
        nodes.gateways.extend(nodes.launch(name) for name in ("a", "b"))
        for gateway in nodes.gateways:
            _wait_healthy(gateway)
        yield nodes
    finally:
        every = [*nodes.gateways, *nodes.others]
        for process in [driver, *(g.process for g in every)]:
            seen.extend(_descendants(process))
        for gateway in every:
            if gateway.process.poll() is None:
                gateway.process.send_signal(signal.SIGTERM)
                with contextlib.suppress(psutil.TimeoutExpired):
                    gateway.process.wait(30)
        if driver.poll() is None and driver.stdin is not None:
            with contextlib.suppress(OSError):
                driver.stdin.write(b"quit\n")
                driver.stdin.flush()
            with contextlib.suppress(psutil.TimeoutExpired):
                driver.wait(60)
        _end([driver, *(g.process for g in every)], seen)
        log.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        yield client
