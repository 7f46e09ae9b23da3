"""A flash sale against a real `boxoffice serve` process, and the audit run after a fault.

Buyers reserve one seat at a time and then buy with the lock (an Idempotency-Key, retried
with the same key on a lost answer or a 503), release it, or abandon it to its TTL. Every
answer is counted by status and phase (before, during, after the fault); every acknowledged
hold, release and order is remembered so the audit can check that nothing answered was undone.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.e2e.test_system import BOXOFFICE, call, free_port, login

Phase = str  # "before" | "during" | "after"


@dataclass
class Gateway:
    """One `boxoffice serve` process on fixed ports and a DATA_DIR (kept across restarts)."""

    data_dir: Path
    api_port: int = field(default_factory=free_port)
    realtime_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: psutil.Popen | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api"

    def start(self) -> None:
        environment = {
            **os.environ,
            "DATA_DIR": str(self.data_dir),
            "API_GATEWAY_PORT": str(self.api_port),
            "REALTIME_SERVICE_PORT": str(self.realtime_port),
            "BCRYPT_ROUNDS": "4",
            "RAY_NAMESPACE": "faults",
            **self.env,
        }
        environment.pop("DATABASE_URL", None)
        log = (self.data_dir.parent / "serve.log").open("ab")
        self.process = psutil.Popen(
            [BOXOFFICE, "serve"],
            env=environment,
            start_new_session=True,
            stdout=log,
            stderr=log,
        )

    def wait_healthy(self, within: float = 180.0) -> float:
        """Seconds until /health answered 200."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            assert self.process is not None and self.process.poll() is None, "serve exited"
            try:
                if httpx.get(f"{self.api}/health", timeout=5).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("boxoffice serve did not become healthy")

    def tree(self) -> list[psutil.Process]:
        """The serve process, everything under it, and its embedded PostgreSQL."""
        assert self.process is not None
        found = {self.process.pid: psutil.Process(self.process.pid)}
        for child in found[self.process.pid].children(recursive=True):
            found[child.pid] = child
        postmaster = self.postmaster()
        if postmaster is not None:
            found[postmaster.pid] = postmaster
        return list(found.values())

    def postmaster(self) -> psutil.Process | None:
        try:
            pid = int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
            return psutil.Process(pid)
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
            return None

    def category_actors(self) -> list[psutil.Process]:
        assert self.process is not None
        actors = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if "CategoryActor" in " ".join(child.cmdline()):
                    actors.append(child)
            except psutil.NoSuchProcess:
                continue
        return actors

    def terminate(self) -> float:
        """SIGTERM; seconds until the process exited (it must exit 0)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(60) == 0
        return time.monotonic() - started

    def kill_group(self) -> None:
        """Cleanup only: the whole session of this run, whatever state it is in."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@contextmanager
def gateway(tmp_path: Path, **env: str) -> Iterator[Gateway]:
    served = Gateway(tmp_path / "data", env=env)
    served.data_dir.mkdir(parents=True)
    left: list[psutil.Process] = []
    try:
        yield served
    finally:
        if served.process is not None:
            try:
                left = served.tree()
            except psutil.NoSuchProcess:
                left = []
            served.kill_group()
        for process in left:  # a run killed by a test leaves processes in other sessions
            try:
                process.kill()
            except psutil.NoSuchProcess:
                continue


@dataclass
class Buyer:
    user_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class FlashSale:
    """The sale, what it was told, and the answers it got."""

    api: str
    event_id: int
    category_id: int
    capacity: int
    lock_ttl: float
    buyers: list[Buyer]
    statuses: Counter[tuple[Phase, int]] = field(default_factory=Counter)
    phase: Phase = "before"
    orders: dict[int, int] = field(default_factory=dict)  # order id -> buyer
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # lock -> buyer, at
    released: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    transport_errors: Counter[Phase] = field(default_factory=Counter)
    successes: list[tuple[float, float]] = field(default_factory=list)  # sent, answered
    stopping: bool = False

    async def request(
        self, client: httpx.AsyncClient, method: str, path: str, buyer: Buyer, **kw: Any
    ) -> httpx.Response | None:
        headers = {**buyer.headers, **kw.pop("headers", {})}
        sent = time.monotonic()
        try:
            response = await client.request(method, f"{self.api}{path}", headers=headers, **kw)
        except httpx.TransportError:
            self.transport_errors[self.phase] += 1
            return None
        self.statuses[(self.phase, response.status_code)] += 1
        if response.status_code < 300:
            self.successes.append((sent, time.monotonic()))
        return response

    def recovered(self, since: float) -> float | None:
        """Seconds from `since` to the first success of a request sent after it."""
        done = [finished for sent, finished in self.successes if sent > since]
        return min(done) - since if done else None

    def sold(self) -> int:
        return len(self.orders)

    async def run(self, within: float = 240.0) -> None:
        limits = httpx.Limits(max_connections=len(self.buyers) + 4)
        async with httpx.AsyncClient(timeout=15, limits=limits) as client:
            async with asyncio.timeout(within):
                await asyncio.gather(*(self._shop(client, b, i) for i, b in enumerate(self.buyers)))

    async def _shop(self, client: httpx.AsyncClient, buyer: Buyer, index: int) -> None:
        rng = random.Random(index)
        ids = {"eventId": self.event_id, "categoryId": self.category_id}
        while not self.stopping and self.sold() < self.capacity:
            reserved = await self.request(
                client, "POST", "/events/tickets/reserve", buyer, json={**ids, "quantity": 1}
            )
            if reserved is None or reserved.status_code == 503:
                await asyncio.sleep(0.1 + rng.random() * 0.2)  # pacing: a real user retries
                continue
            if reserved.status_code == 409:
                await asyncio.sleep(0.2 + rng.random() * 0.3)  # sold out for now: holds expire
                continue
            assert reserved.status_code == 201, (reserved.status_code, reserved.text)
            lock_id = reserved.json()["lockId"]
            self.holds[lock_id] = (buyer.user_id, time.monotonic())
            choice = rng.random()
            if choice < 0.6:
                await self._buy(client, buyer, lock_id)
            elif choice < 0.8:
                released = await self.request(
                    client,
                    "POST",
                    "/events/tickets/release",
                    buyer,
                    json={**ids, "lockId": lock_id},
                )
                if released is not None and released.status_code == 200:
                    self.released.add(lock_id)
            # else: abandoned in the cart, left to its TTL

    async def _buy(self, client: httpx.AsyncClient, buyer: Buyer, lock_id: str) -> None:
        key = uuid.uuid4().hex
        body = {"eventId": self.event_id, "categoryId": self.category_id, "quantity": 1}
        # Until an answer, however long the fault lasts (or the test stops the sale): a buy in
        # flight when the gateway died may have been committed, and only a replay with its key
        # tells the buyer so (giving up after a fixed number of tries lost such orders when a
        # restart took over 12 s).
        while not self.stopping:
            answer = await self.request(
                client,
                "POST",
                "/orders/with-lock",
                buyer,
                json={**body, "lockId": lock_id},
                headers={"Idempotency-Key": key},
            )
            if answer is None or answer.status_code == 503:
                await asyncio.sleep(0.2)  # the same key again: a replay, never a second order
                continue
            if answer.status_code == 201:
                self.orders[answer.json()["id"]] = buyer.user_id
                return
            _, held_at = self.holds[lock_id]
            if answer.status_code == 404 and time.monotonic() - held_at < self.lock_ttl - 1:
                self.violations.append(f"hold {lock_id} answered 201 was gone: {answer.text}")
            return

    async def check_releases_stay_released(self) -> None:
        """Every acknowledged release: the lock must not buy anything (it was not brought back)."""
        async with httpx.AsyncClient(timeout=15) as client:
            for lock_id in sorted(self.released):
                owner, _ = self.holds[lock_id]
                buyer = next(b for b in self.buyers if b.user_id == owner)
                body = {
                    "eventId": self.event_id,
                    "categoryId": self.category_id,
                    "quantity": 1,
                    "lockId": lock_id,
                }
                answer = await self.request(client, "POST", "/orders/with-lock", buyer, json=body)
                if answer is not None and answer.status_code == 201:
                    self.orders[answer.json()["id"]] = owner
                    self.violations.append(f"released lock {lock_id} bought an order")


def open_sale(api: str, *, capacity: int, buyers: int, lock_ttl: float) -> FlashSale:
    organizer = login_as(api, f"org-{uuid.uuid4().hex[:8]}@example.com", "organizer")
    event = call_api(
        api,
        "POST",
        "/events",
        organizer,
        json={
            "eventName": "Fault Fest",
            "eventCategory": "Music",
            "eventDate": "2031-07-15T18:00:00Z",
            "ticketCategories": [
                {"categoryName": "General", "price": 10.0, "totalSeats": capacity}
            ],
        },
    )
    people = []
    for index in range(buyers):
        name = f"buyer-{index}-{uuid.uuid4().hex[:8]}@example.com"
        token = login_as(api, name, "assistant")
        me = call_api(api, "GET", "/user", token)
        people.append(Buyer(int(me["id"]), token))
    return FlashSale(
        api=api,
        event_id=event["idEvent"],
        category_id=event["ticketCategories"][0]["id"],
        capacity=capacity,
        lock_ttl=lock_ttl,
        buyers=people,
    )


class _Api:
    def __init__(self, api: str) -> None:
        self.api = api
        self.statuses: list[int] = []
        self.data_dir = Path()


def login_as(api: str, username: str, role: str) -> str:
    return login(_Api(api), username, role)  # type: ignore[arg-type]


def call_api(api: str, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    return call(_Api(api), method, path, token, **kw)  # type: ignore[arg-type]


async def audit(sale: FlashSale, *, pending_within: float = 30.0) -> dict[str, Any]:
    """Every 201 in the ledger exactly once, sold <= capacity (exactly capacity once every hold
    is gone), nothing pending after `pending_within`, no 500 at any time, nothing undone."""
    await sale.check_releases_stay_released()
    deadline = time.monotonic() + pending_within
    async with httpx.AsyncClient(timeout=15) as client:
        while True:
            ledger: dict[int, dict[str, Any]] = {}
            duplicates = 0
            for buyer in sale.buyers:
                answer = await client.get(f"{sale.api}/orders", headers=buyer.headers)
                assert answer.status_code == 200, answer.text
                for order in answer.json():
                    if order["eventId"] != sale.event_id:
                        continue
                    duplicates += order["id"] in ledger
                    ledger[order["id"]] = order
            pending = [o for o in ledger.values() if o["status"] == "pending"]
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)  # polling the ledger with a deadline
        tickets = (await client.get(f"{sale.api}/events/{sale.event_id}/tickets")).json()
    live = [o for o in ledger.values() if o["status"] != "cancelled"]
    answered = set(sale.orders)
    assert duplicates == 0
    # Every 201 is in the ledger, once; and nothing is there that nobody was told about.
    assert {o["id"] for o in live} == answered
    assert sum(o["quantity"] for o in live) <= sale.capacity
    assert pending == [], f"still pending after {pending_within} s: {[o['id'] for o in pending]}"
    assert sale.violations == []
    server_errors = {key: n for key, n in sale.statuses.items() if key[1] >= 500 and key[1] != 503}
    assert server_errors == {}, f"answers other than 503 in the 5xx range: {server_errors}"
    return {"ledger": ledger, "tickets": tickets}


async def until_sold_out(sale: FlashSale, within: float = 60.0) -> None:
    """Once every hold has expired or become an order, the sale ends at exactly capacity."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=15) as client:
        while True:
            tickets = (await client.get(f"{sale.api}/events/{sale.event_id}/tickets")).json()
            category = tickets[0]
            if category["availableSeats"] == 0 and sale.sold() >= sale.capacity:
                break
            assert time.monotonic() < deadline, f"not sold out: {category}, sold {sale.sold()}"
            await asyncio.sleep(0.5)
    assert sale.sold() == sale.capacity


def figures(sale: FlashSale, recovered_in: list[float]) -> str:
    during = {code: n for (phase, code), n in sale.statuses.items() if phase == "during"}
    return (
        f"recovered in {[round(s, 2) for s in recovered_in]} s; answers during the fault "
        f"{dict(sorted(during.items()))}, transport errors {dict(sale.transport_errors)}; "
        f"orders {sale.sold()}/{sale.capacity}, releases {len(sale.released)}, "
        f"holds {len(sale.holds)}"
    )
