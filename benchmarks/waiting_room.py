"""The `waiting-room` scenario (issue 13): an on-sale behind a virtual waiting room.

`queue_buyers` buyers join over REST and `queue_sockets` more watch over Socket.IO, all
before the opening; the room admits `queue_rate` a second into `queue_seats` seats. Reported:
the admission rate achieved against the one set, order inversions after the opening (from the
ledger), admission to first successful hold (the sockets, which hear `queue-admitted` at once),
`queue-status` staleness (the longest silence each waiting socket saw), memory per queued buyer
(the queue actor's RSS), and the seats sold, which must be exactly the capacity.

The REST-joined buyers do not poll: the bench reads new admissions from the ledger every
0.2 s and signs each pass as any gateway would (20,000 pollers would measure the bench, not
the queue). Every admitted buyer buys one seat at once, so the sale runs to sell-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
import socketio

from benchmarks.harness import BENCH_JWT_SECRET, Bench, event_id_of
from benchmarks.scenarios import Row, ScenarioResult, pct
from sales.admission import AdmissionPasses
from sales.identity import Role, TokenService, user_stamp

NAMESPACE = "/realtime"
POLL_SECONDS = 0.2
SOCKETS_AT_ONCE = 50
BUYS_AT_ONCE = 64
# The bench system runs with the default pass lifetime: a pass's expiry minus it is its
# admission instant, as the queue stored it.
ADMISSION_TTL_SECONDS = 600.0


async def waiting_room(bench: Bench) -> ScenarioResult:
    o = bench.options
    result = ScenarioResult("waiting-room")
    if bench.targets.system is None or bench.system is None or bench.targets.realtime is None:
        result.notes.append("needs the system")
        return result
    api, organizer = bench.targets.system, bench.organizer
    assert organizer is not None
    event = await bench.create_event(
        "Waiting room", [{"categoryName": "Arena", "price": 60, "totalSeats": o.queue_seats}]
    )
    event_id = event_id_of(event)
    category_id = int(event["ticketCategories"][0]["id"])
    later = _iso(datetime.now(UTC) + timedelta(hours=1))
    room = {"enabled": True, "admitPerSecond": o.queue_rate, "opensAt": later}
    await bench.request(
        "PUT", f"{api}/api/events/{event_id}", organizer[1], {"waitingRoom": room}, expect=200
    )

    task = bench.progress.add_task("waiting room · accounts", total=None)
    rest_buyers = await _accounts(bench, o.queue_buyers, "queued")
    watchers = await _accounts(bench, o.queue_sockets, "watcher")
    queue_path = f"{api}/api/events/{event_id}/queue"
    # The queue actor starts with the first join: its RSS then is the empty queue's.
    await bench.request("POST", queue_path, rest_buyers[0][1], expect=201)
    rss_empty = await asyncio.to_thread(_queue_rss, bench)

    bench.progress.update(task, description=f"waiting room · {len(rest_buyers)} REST joins")
    gate = asyncio.Semaphore(BUYS_AT_ONCE)
    join_errors = 0

    async def join(token: str) -> None:
        nonlocal join_errors
        async with gate:
            status, _ = await bench.request("POST", queue_path, token)
            join_errors += not 200 <= status < 300

    await asyncio.gather(*(join(token) for _, token in rest_buyers[1:]))
    bench.progress.update(task, description=f"waiting room · {len(watchers)} sockets join")
    watch = Watchers(bench, event_id, category_id)
    try:
        await watch.connect(watchers)
        rss_full = await asyncio.to_thread(_queue_rss, bench)

        # Warm the category (it passivated while everyone joined): the figure is admission to
        # hold, not a cold activation. The organizer's pass is signed here, as a gateway would.
        await _warm(bench, organizer, event_id, category_id)
        # Open now: the draw happens at the opening, then admission at the set rate.
        opened_at = time.time()
        room["opensAt"] = _iso(datetime.fromtimestamp(opened_at + 1.0, UTC))
        await bench.request(
            "PUT", f"{api}/api/events/{event_id}", organizer[1], {"waitingRoom": room}, expect=200
        )
        bench.progress.update(task, description="waiting room · admitting and selling")
        buyers = Buyers(
            bench, event_id, category_id, {user for user, _ in rest_buyers}, dict(rest_buyers)
        )
        deadline = time.monotonic() + 60 + 3 * o.queue_seats / o.queue_rate
        while time.monotonic() < deadline:
            await buyers.buy_new_admissions()
            if await buyers.sold() >= o.queue_seats and not buyers.busy:
                break
            await asyncio.sleep(POLL_SECONDS)
        await watch.settle(within=5)
        rows = await buyers.entries()
    finally:
        await watch.close()
        bench.progress.remove_task(task)

    sold_rows, sold_counter = await buyers.ledger()
    unadmitted = await buyers.unadmitted_buyers()
    line = _line(rows)
    admitted = sorted(r["admitted_at"] for r in rows if r["admitted_at"] is not None)
    inversions = _inversions(line)
    achieved = _achieved_rate(admitted, o.queue_seats)
    staleness = watch.staleness()
    to_hold = watch.admission_to_hold()
    queued = len(rest_buyers) + len(watchers)
    per_buyer = (
        None
        if rss_empty is None or rss_full is None
        else max(rss_full - rss_empty, 0) / max(queued, 1)
    )
    oversell = max(sold_rows - o.queue_seats, sold_counter - o.queue_seats, 0)
    within = achieved is not None and abs(achieved - o.queue_rate) <= 0.05 * o.queue_rate
    stale_p99 = pct(staleness, 99)
    result.rows = [
        Row("queued buyers (REST + sockets)", "", {"system": float(queued)}, ""),
        Row("join errors", "", {"system": float(join_errors + watch.join_errors)}, ""),
        Row(
            "admission rate achieved",
            "1/s",
            {"system": achieved},
            "",
            goal=f"{o.queue_rate} ± 5%",
            met=within if achieved is not None else None,
        ),
        Row("admitted", "", {"system": float(len(admitted))}, ""),
        Row(
            "order inversions after the opening",
            "",
            {"system": float(inversions)},
            "",
            goal="0",
            met=inversions == 0,
        ),
        Row("admission → first hold p50", "ms", {"system": pct(to_hold, 50)}, ""),
        Row("admission → first hold p99", "ms", {"system": pct(to_hold, 99)}, ""),
        Row(
            "queue-status staleness p99",
            "s",
            {"system": stale_p99},
            "",
            goal="≤ 1.5 s",
            met=None if stale_p99 is None else stale_p99 <= 1.5,
        ),
        Row("queue-closed received", "", {"system": float(watch.closed)}, ""),
        Row("memory per queued buyer", "bytes", {"system": per_buyer}, ""),
        Row(
            "seats sold (ledger)",
            "",
            {"system": float(sold_rows)},
            "",
            goal=f"= {o.queue_seats}",
            met=sold_rows == sold_counter == o.queue_seats,
        ),
        Row("oversold", "", {"system": float(oversell)}, "", goal="0", met=oversell == 0),
        Row("buys refused or failed", "", {"system": float(buyers.failed)}, ""),
    ]
    result.audit = {
        "system": {
            "capacity": o.queue_seats,
            "sold_per_ledger_rows": sold_rows,
            "sold_per_ledger_counter": sold_counter,
            "admitted": len(admitted),
            "buyers_not_admitted": unadmitted,
            "inversions": inversions,
            "server_errors": buyers.server_errors + watch.server_errors,
            "passed": sold_rows == sold_counter == o.queue_seats
            and inversions == 0
            and not unadmitted,
        }
    }
    result.passed = bool(result.audit["system"]["passed"]) and oversell == 0
    result.notes.append(
        "REST-joined buyers learn their admission from the ledger (read every 0.2 s), not by "
        "polling; the sockets hear it from the system"
    )
    return result


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _accounts(bench: Bench, count: int, prefix: str) -> list[tuple[int, str]]:
    """`count` buyers written straight to the ledger (signing 22,000 up through bcrypt would
    be the bench's longest step), each with a token of the system's secret."""
    import psycopg

    stamp = int(time.time() * 1000)
    names = [f"{prefix}-{stamp}-{i}@bench.local" for i in range(count)]
    tokens = TokenService(BENCH_JWT_SECRET, timedelta(days=1))
    accounts: list[tuple[int, str]] = []
    async with await psycopg.AsyncConnection.connect(bench.database_url) as conn:
        for start in range(0, count, 5_000):
            chunk = names[start : start + 5_000]
            cur = await conn.execute(
                "INSERT INTO users (username, password_hash, role) "
                "SELECT unnest(%s::text[]), 'x', 'assistant' RETURNING id, created_at",
                (chunk,),
            )
            for user_id, created_at in await cur.fetchall():
                token = tokens.issue(user_id, Role.ASSISTANT, since=user_stamp(created_at))
                accounts.append((int(user_id), token))
        await conn.commit()
    return accounts


async def _warm(bench: Bench, organizer: tuple[int, str], event_id: int, category_id: int) -> None:
    """One hold and its release, with a pass of the organizer's, to activate the category."""
    now = time.time()
    admission_pass = AdmissionPasses(BENCH_JWT_SECRET).issue(organizer[0], event_id, now, now + 60)
    headers = {"Authorization": f"Bearer {organizer[1]}", "X-Admission-Pass": admission_pass}
    body = {"eventId": event_id, "categoryId": category_id, "quantity": 1}
    api = bench.targets.system
    async with bench.session.post(
        f"{api}/api/events/tickets/reserve", json=body, headers=headers
    ) as response:
        hold = await response.json(content_type=None)
    if isinstance(hold, dict) and "lockId" in hold:
        await bench.request(
            "POST",
            f"{api}/api/events/tickets/release",
            organizer[1],
            {**body, "lockId": hold["lockId"]},
        )


def _queue_rss(bench: Bench) -> float | None:
    assert bench.system is not None
    for proc in bench.system.tree():
        with contextlib.suppress(psutil.Error):
            if "QueueActor" in " ".join(proc.cmdline()):
                return float(proc.memory_info().rss)
    return None


def _line(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The admission order the queue promised: the draw, then arrivals."""
    drawn = sorted(
        (r for r in rows if r["early"] and r["rank"] is not None), key=lambda r: r["rank"]
    )
    rest = sorted(
        (r for r in rows if not (r["early"] and r["rank"] is not None)), key=lambda r: r["seq"]
    )
    return drawn + rest


def _inversions(line: list[dict[str, Any]]) -> int:
    """Buyers admitted before someone ahead of them in line (or while they were skipped)."""
    inversions = 0
    latest_ahead: float | None = None
    skipped = False
    for row in line:
        at = row["admitted_at"]
        if at is None:
            skipped = True
            continue
        if skipped or (latest_ahead is not None and at < latest_ahead):
            inversions += 1
        latest_ahead = at if latest_ahead is None else max(latest_ahead, at)
    return inversions


def _achieved_rate(admitted: list[float], seats: int) -> float | None:
    """Admissions per second while the queue ran freely (the first 80% of the admissions up to
    the capacity: near the end, admission pauses on seats covered by admitted buyers). A tick
    admits a batch at one instant, so the first batch only marks the start."""
    window = admitted[: int(min(len(admitted), seats) * 0.8)]
    if len(window) < 2 or window[-1] <= window[0]:
        return None
    after_first = sum(1 for moment in window if moment > window[0])
    return after_first / (window[-1] - window[0])


class Buyers:
    """The REST-joined buyers: each buys one seat with their pass once admitted."""

    def __init__(
        self, bench: Bench, event_id: int, category_id: int, users: set[int], tokens: dict[int, str]
    ) -> None:
        self._bench = bench
        self._event_id = event_id
        self._category_id = category_id
        self._users = users
        self._tokens = tokens
        self._passes = AdmissionPasses(BENCH_JWT_SECRET)
        self._seen: set[int] = set()
        self._gate = asyncio.Semaphore(BUYS_AT_ONCE)
        self._tasks: set[asyncio.Task[None]] = set()
        self.failed = 0
        self.server_errors = 0

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def buy_new_admissions(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self._bench.database_url) as conn:
            cur = await conn.execute(
                "SELECT user_id, extract(epoch FROM admitted_at),"
                " extract(epoch FROM pass_expires_at) FROM queue_entries"
                " WHERE event_id = %s AND admitted_at IS NOT NULL",
                (self._event_id,),
            )
            rows = await cur.fetchall()
        for user_id, admitted_at, expires_at in rows:
            if user_id in self._seen or user_id not in self._users:
                continue
            self._seen.add(user_id)
            admission_pass = self._passes.issue(
                user_id, self._event_id, float(admitted_at), float(expires_at)
            )
            task = asyncio.create_task(self._buy(self._tokens[user_id], admission_pass))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _buy(self, token: str, admission_pass: str) -> None:
        body = {"eventId": self._event_id, "categoryId": self._category_id, "quantity": 1}
        headers = {"Authorization": f"Bearer {token}", "X-Admission-Pass": admission_pass}
        async with (
            self._gate,
            self._bench.session.post(
                f"{self._bench.targets.system}/api/orders", json=body, headers=headers
            ) as response,
        ):
            await response.read()
            if response.status >= 500:
                self.server_errors += 1
            if response.status != 201:
                self.failed += 1

    async def sold(self) -> int:
        return (await self.ledger())[0]

    async def ledger(self) -> tuple[int, int]:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self._bench.database_url) as conn:
            cur = await conn.execute(
                "SELECT coalesce(sum(quantity), 0) FROM orders"
                " WHERE category_id = %s AND status <> 'cancelled'",
                (self._category_id,),
            )
            rows = int((await cur.fetchone() or (0,))[0])
            cur = await conn.execute(
                "SELECT sold_seats FROM ticket_categories WHERE id = %s", (self._category_id,)
            )
            counter = int((await cur.fetchone() or (0,))[0])
        return rows, counter

    async def unadmitted_buyers(self) -> list[int]:
        """Users holding a sold seat of the category without an admission in the ledger: the
        waiting room's promise is that there are none."""
        import psycopg

        async with await psycopg.AsyncConnection.connect(self._bench.database_url) as conn:
            cur = await conn.execute(
                "SELECT DISTINCT o.user_id FROM orders o LEFT JOIN queue_entries q"
                " ON q.event_id = o.event_id AND q.user_id = o.user_id"
                " WHERE o.category_id = %s AND o.status <> 'cancelled'"
                " AND q.admitted_at IS NULL",
                (self._category_id,),
            )
            return sorted(int(user_id) for (user_id,) in await cur.fetchall())

    async def entries(self) -> list[dict[str, Any]]:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self._bench.database_url) as conn:
            cur = await conn.execute(
                "SELECT user_id, seq, early, rank, extract(epoch FROM admitted_at)"
                " FROM queue_entries WHERE event_id = %s",
                (self._event_id,),
            )
            return [
                {
                    "user_id": user_id,
                    "seq": seq,
                    "early": early,
                    "rank": rank,
                    "admitted_at": None if at is None else float(at),
                }
                for user_id, seq, early, rank, at in await cur.fetchall()
            ]


class Watchers:
    """Sockets that join the queue, note every `queue-status`, and on `queue-admitted` lock a
    seat with the pass at once, then buy it."""

    def __init__(self, bench: Bench, event_id: int, category_id: int) -> None:
        self._bench = bench
        self._event_id = event_id
        self._category_id = category_id
        self._clients: list[socketio.AsyncClient] = []
        self._heard: dict[int, list[float]] = {}  # socket index -> queue-status arrivals
        self._done: dict[int, float] = {}  # socket index -> admitted / closed arrival
        self._holds: list[float] = []  # ms from admission to a successful lock
        self._tasks: set[asyncio.Task[None]] = set()
        # socket index -> (admitted at, pass, token) between queue-admitted and its lock
        self._pending: dict[int, tuple[float, str, str]] = {}
        self.closed = 0
        self.join_errors = 0
        self.server_errors = 0

    async def connect(self, accounts: list[tuple[int, str]]) -> None:
        gate = asyncio.Semaphore(SOCKETS_AT_ONCE)

        async def one(index: int, token: str) -> None:
            async with gate:
                client = socketio.AsyncClient(reconnection=False)
                self._listen(client, index, token)
                self._clients.append(client)
                try:
                    await client.connect(
                        self._bench.targets.realtime or "",
                        namespaces=[NAMESPACE],
                        auth={"token": token},
                        transports=["websocket"],
                        wait_timeout=30,
                    )
                    await client.emit(
                        "join-queue", {"eventId": self._event_id}, namespace=NAMESPACE
                    )
                except Exception:
                    self.join_errors += 1

        await asyncio.gather(*(one(i, token) for i, (_, token) in enumerate(accounts)))

    def _listen(self, client: socketio.AsyncClient, index: int, token: str) -> None:
        heard = self._heard.setdefault(index, [])

        async def status(data: Any) -> None:
            heard.append(time.time())

        async def joined(data: Any) -> None:
            if isinstance(data, dict) and data.get("success"):
                heard.append(time.time())
            else:
                self.join_errors += 1

        async def admitted(data: Any) -> None:
            self._done[index] = time.time()
            expires = datetime.fromisoformat(str(data["passExpiresAt"]).replace("Z", "+00:00"))
            admitted_at = expires.timestamp() - ADMISSION_TTL_SECONDS
            lock = {
                "eventId": self._event_id,
                "categoryId": self._category_id,
                "quantity": 1,
                "admissionPass": data["admissionPass"],
            }
            # Noted before the emit: its answer can arrive while the emit is still awaited.
            self._pending[index] = (admitted_at, data["admissionPass"], token)
            await client.emit("lock-tickets", lock, namespace=NAMESPACE)

        async def locked(data: Any) -> None:
            pending = self._pending.pop(index, None)
            if pending is None or not isinstance(data, dict) or not data.get("success"):
                return
            admitted_at, admission_pass, owner = pending
            self._holds.append((time.time() - admitted_at) * 1000)
            task = asyncio.create_task(self._buy(owner, admission_pass, str(data["lockId"])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        async def closed(data: Any) -> None:
            self._done[index] = time.time()
            self.closed += 1

        client.on("join-queue-response", joined, namespace=NAMESPACE)
        client.on("queue-status", status, namespace=NAMESPACE)
        client.on("queue-admitted", admitted, namespace=NAMESPACE)
        client.on("lock-tickets-response", locked, namespace=NAMESPACE)
        client.on("queue-closed", closed, namespace=NAMESPACE)

    async def _buy(self, token: str, admission_pass: str, lock_id: str) -> None:
        body = {
            "eventId": self._event_id,
            "categoryId": self._category_id,
            "quantity": 1,
            "lockId": lock_id,
        }
        headers = {"Authorization": f"Bearer {token}", "X-Admission-Pass": admission_pass}
        async with self._bench.session.post(
            f"{self._bench.targets.system}/api/orders/with-lock", json=body, headers=headers
        ) as response:
            await response.read()
            if response.status >= 500:
                self.server_errors += 1

    async def settle(self, within: float) -> None:
        """Let the purchases in flight finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

    def staleness(self) -> list[float]:
        """Per waiting socket, each silence between two things it heard, until admitted or
        closed (or the end of the run)."""
        gaps: list[float] = []
        end = time.time()
        for index, heard in self._heard.items():
            until = self._done.get(index, end)
            moments = [*sorted(t for t in heard if t <= until), until]
            gaps.extend(b - a for a, b in itertools.pairwise(moments))
        return gaps

    def admission_to_hold(self) -> list[float]:
        return list(self._holds)

    async def close(self) -> None:
        await asyncio.gather(
            *(client.disconnect() for client in self._clients), return_exceptions=True
        )
