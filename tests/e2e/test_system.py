"""The whole system as `make run` starts it: `boxoffice serve` in a process of its own.

Restart on the same DATA_DIR keeps every event, order and sold count and brings unexpired
holds back, even one answered just before the stop; SIGTERM leaves no process behind
(checked by process tree).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

BOXOFFICE = str(Path(sys.executable).with_name("boxoffice"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, process: subprocess.Popen[bytes], api: str, data_dir: Path) -> None:
        self.process = process
        self.api = api
        self.data_dir = data_dir
        self.statuses: list[int] = []

    def wait_healthy(self, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "boxoffice serve exited early"
            try:
                status = httpx.get(f"{self.api}/health", timeout=5).status_code
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            self.statuses.append(status)
            if status == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"not healthy in time: {self.statuses[-5:]}")

    def tree(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        found = [parent, *parent.children(recursive=True)]
        postmaster = self.data_dir / "postgres"
        for pidfile in postmaster.rglob("postmaster.pid"):
            pid = int(pidfile.read_text().splitlines()[0])
            if psutil.pid_exists(pid):
                found.append(psutil.Process(pid))
        return found


@contextmanager
def serve(data_dir: Path, **env: str) -> Iterator[Served]:
    api_port, realtime_port = free_port(), free_port()
    environment = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "API_GATEWAY_PORT": str(api_port),
        "REALTIME_SERVICE_PORT": str(realtime_port),
        "BCRYPT_ROUNDS": "4",
        "RAY_NAMESPACE": "e2e",
        **env,
    }
    environment.pop("DATABASE_URL", None)
    process = subprocess.Popen([BOXOFFICE, "serve"], env=environment, start_new_session=True)
    served = Served(process, f"http://127.0.0.1:{api_port}/api", data_dir)
    try:
        yield served
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def stop(served: Served) -> list[psutil.Process]:
    tree = served.tree()
    assert len(tree) > 3, "expected Ray and PostgreSQL processes under the system"
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(60) == 0
    _, alive = psutil.wait_procs(tree, timeout=30)
    return list(alive)


def call(served: Served, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.request(method, f"{served.api}{path}", headers=headers, timeout=30, **kw)
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json()


def login(served: Served, username: str, role: str) -> str:
    credentials = {"username": username, "password": "s3cret-password"}
    httpx.post(f"{served.api}/auth/register", json={**credentials, "role": role}, timeout=30)
    return str(call(served, "POST", "/auth/login", json=credentials)["access_token"])


@pytest.mark.timeout(400)
def test_restart_keeps_everything_and_shutdown_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serve(data_dir) as first:
        first.wait_healthy()
        assert 503 in first.statuses, "health must answer 503 while the system starts"
        organizer = login(first, "org@example.com", "organizer")
        buyer = login(first, "buyer@example.com", "assistant")
        event = call(
            first,
            "POST",
            "/events",
            organizer,
            json={
                "eventName": "Restart Fest",
                "eventCategory": "Music",
                "eventDate": "2030-07-15T18:00:00Z",
                "ticketCategories": [
                    {"categoryName": "VIP", "price": 150.0, "totalSeats": 10},
                    {"categoryName": "General", "price": 75.0, "totalSeats": 50},
                ],
            },
        )
        vip, general = (c["id"] for c in event["ticketCategories"])
        ids = {"eventId": event["idEvent"]}
        orders = [
            call(first, "POST", "/orders", buyer, json={**ids, "categoryId": vip, "quantity": 3}),
            call(
                first, "POST", "/orders", buyer, json={**ids, "categoryId": general, "quantity": 5}
            ),
        ]
        held = call(
            first,
            "POST",
            "/events/tickets/reserve",
            buyer,
            json={**ids, "categoryId": general, "quantity": 2},
        )
        before = call(first, "GET", f"/events/{event['idEvent']}/tickets")
        assert [(c["reservedSeats"], c["availableSeats"]) for c in before] == [(3, 7), (7, 43)]
        # Stopped at once: the hold answered a moment ago is in no snapshot, only the journal.
        alive = stop(first)
        assert alive == [], f"left behind: {[(p.pid, p.name()) for p in alive]}"

    with serve(data_dir) as second:
        second.wait_healthy()
        after = call(second, "GET", f"/events/{event['idEvent']}/tickets")
        assert after == before
        mine = call(second, "GET", "/orders", buyer)
        assert sorted(o["id"] for o in mine) == sorted(o["id"] for o in orders)
        # The hold came back (from the hold journal) and can still be bought with.
        order = call(
            second,
            "POST",
            "/orders/with-lock",
            buyer,
            json={**ids, "categoryId": general, "quantity": 2, "lockId": held["lockId"]},
        )
        assert order["quantity"] == 2
        alive = stop(second)
        assert alive == [], f"left behind: {[(p.pid, p.name()) for p in alive]}"
