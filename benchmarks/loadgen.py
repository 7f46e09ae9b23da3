"""The load generator: closed-loop virtual buyers in worker processes, away from the server's loop.

Each worker runs one `Job` (flash-sale buyers, hold loops, browsing, hot-set churn, or sockets)
over keep-alive HTTP/1.1 connections or Socket.IO clients (`benchmarks.sockets` over WebSocket,
python-socketio over long-polling), and returns every request's timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from benchmarks.sockets import OnEvent, RoomSocket

# op, started (epoch s), latency (s), HTTP status (0 = transport error), key (category id or 0)
Sample = tuple[str, float, float, int, int]
Account = tuple[int, str]  # user id, bearer token

_progress: Synchronized[int] | None = None
_ready: Synchronized[int] | None = None
_final: Synchronized[int] | None = None  # fan-out: the availability the last change left
_stop: MpEvent | None = None


@dataclass(frozen=True, slots=True)
class Job:
    kind: str  # flash | hold | browse | churn | sockets | waitlist
    base_url: str
    accounts: tuple[Account, ...]
    concurrency: int
    start_at: float  # epoch s; every worker of a run starts together
    duration: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class WorkerResult:
    samples: list[Sample] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


def _init_worker(
    progress: Synchronized[int], ready: Synchronized[int], final: Synchronized[int], stop: MpEvent
) -> None:
    global _progress, _ready, _final, _stop
    _progress, _ready, _final, _stop = progress, ready, final, stop


def run_job(job: Job) -> WorkerResult:
    """Entry point in the worker process."""
    try:
        import uvloop

        runner: Callable[[Awaitable[WorkerResult]], WorkerResult] = uvloop.run  # type: ignore[assignment]
    except ImportError:
        runner = asyncio.run  # type: ignore[assignment]
    cpu0, wall0 = time.process_time(), time.monotonic()
    result = runner(_run(job))
    # How busy the client itself was: near 1.0 means the load generator, not the server, may
    # be what limits the figure.
    result.extras["client_cpu_s"] = time.process_time() - cpu0
    result.extras["client_wall_s"] = time.monotonic() - wall0
    return result


async def _run(job: Job) -> WorkerResult:
    if job.kind == "sockets":
        return await _sockets(job)
    if job.kind == "waitlist":
        from benchmarks import waiters

        shared = waiters.Shared(_ready, _progress, _stop)
        extras = await waiters.run(job.base_url, job.accounts, job.concurrency, job.params, shared)
        return WorkerResult(extras=extras)
    result = WorkerResult()
    client = _Client(job.base_url, result.samples)
    try:
        await _sleep_until(job.start_at)
        body = {"flash": _flash, "hold": _hold, "browse": _browse, "churn": _churn}[job.kind]
        await body(job, client, result)
    finally:
        client.close()
    return result


async def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _tick() -> None:
    if _progress is not None:
        with _progress.get_lock():
            _progress.value += 1


class _Connection:
    """One keep-alive HTTP/1.1 connection, written and parsed by hand.

    aiohttp costs about half a millisecond of client CPU per request; on two cores that caps
    what the client can offer well below what the ceiling serves. This costs a fraction.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send one request; return status, body and whether the connection may be reused."""
        self.writer.write(request)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line[9:12])
        length, chunked, keep = 0, False, True
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep = b"close" not in value.lower()
        if not chunked:
            return status, await self.reader.readexactly(length), keep
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        await self.reader.readuntil(b"\r\n")
        return status, b"".join(parts), keep

    def close(self) -> None:
        self.writer.close()


class _Client:
    """Keep-alive connections shared by a worker's virtual clients, one per request in flight."""

    def __init__(self, base_url: str, samples: list[Sample]) -> None:
        url = urlsplit(base_url)
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or 80
        self._head = f"Host: {self._host}:{self._port}\r\n".encode()
        self._idle: list[_Connection] = []
        self._samples = samples

    async def _connection(self) -> _Connection:
        if self._idle:
            return self._idle.pop()
        reader, writer = await asyncio.open_connection(self._host, self._port, limit=2**20)
        return _Connection(reader, writer)

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        token: str | None = None,
        body: dict[str, Any] | None = None,
        key: int = 0,
    ) -> tuple[int, Any]:
        data = orjson.dumps(body) if body is not None else b""
        request = b"".join(
            (
                f"{method} {path} HTTP/1.1\r\n".encode(),
                self._head,
                f"Authorization: Bearer {token}\r\n".encode() if token else b"",
                b"Content-Type: application/json\r\n" if body is not None else b"",
                f"Content-Length: {len(data)}\r\n\r\n".encode(),
                data,
            )
        )
        started = time.time()
        t0 = time.perf_counter()
        connection: _Connection | None = None
        try:
            connection = await self._connection()
            status, raw, keep = await asyncio.wait_for(connection.exchange(request), timeout=60)
            if keep:
                self._idle.append(connection)
            else:
                connection.close()
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            status, raw = 0, b""
            if connection is not None:
                connection.close()
        self._samples.append((op, started, time.perf_counter() - t0, status, key))
        _tick()
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
        return status, payload

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


# -- flash sale: every buyer once, lock then order with the lock -----------------------------


async def _flash(job: Job, client: _Client, result: WorkerResult) -> None:
    event_id, category_id = job.params["event_id"], job.params["category_id"]
    quantity = int(job.params.get("quantity", 1))
    buyers: deque[Account] = deque(job.accounts)
    orders: list[tuple[int, int, int]] = []  # order id, quantity, user id
    lost: list[str] = []
    counts = {"holds": 0, "refused": 0, "server_errors": 0, "other": 0}
    last_order = 0.0

    async def buyer_loop() -> None:
        nonlocal last_order
        while buyers:
            user_id, token = buyers.popleft()
            reserve = {"eventId": event_id, "categoryId": category_id, "quantity": quantity}
            status, payload = await client.call(
                "reserve", "POST", "/api/events/tickets/reserve", token, reserve, category_id
            )
            if not 200 <= status < 300:
                key = "refused" if status == 409 else "server_errors" if status >= 500 else "other"
                counts[key] += 1
                continue
            counts["holds"] += 1
            lock_id = payload.get("lockId") if isinstance(payload, dict) else None
            if not lock_id:
                lost.append(f"user {user_id}: reserve answered without lockId")
                continue
            order = {**reserve, "lockId": lock_id}
            status, payload = await client.call(
                "order", "POST", "/api/orders/with-lock", token, order, category_id
            )
            if 200 <= status < 300 and isinstance(payload, dict):
                orders.append((int(payload.get("id", 0)), int(payload.get("quantity", 0)), user_id))
                last_order = time.time()
            else:
                if status >= 500 or status == 0:
                    counts["server_errors"] += 1
                lost.append(f"user {user_id}: order with lock {lock_id} answered {status}")

    await asyncio.gather(*(buyer_loop() for _ in range(job.concurrency)))
    result.extras.update(counts, orders=orders, lost=lost, last_order=last_order)


# -- hot hold throughput: N clients holding one seat each, as fast as answers come back ------


async def _hold(job: Job, client: _Client, result: WorkerResult) -> None:
    """Each client holds one seat after another; with `category_ids`, client i holds in the
    i-th of them (round robin), else all in `category_id`."""
    event_id = job.params["event_id"]
    categories = job.params.get("category_ids") or [job.params["category_id"]]
    deadline = job.start_at + job.duration
    bodies = [{"eventId": event_id, "categoryId": c, "quantity": 1} for c in categories]

    async def loop(account: Account, body: dict[str, Any]) -> None:
        token = account[1]
        while time.time() < deadline:
            await client.call("reserve", "POST", "/api/events/tickets/reserve", token, body)

    accounts = job.accounts
    await asyncio.gather(
        *(
            loop(accounts[i % len(accounts)], bodies[i % len(bodies)])
            for i in range(job.concurrency)
        )
    )


# -- browse: the catalog and live availability -------------------------------------------------


async def _browse(job: Job, client: _Client, result: WorkerResult) -> None:
    event_ids: Sequence[int] = job.params["event_ids"]
    list_every = int(job.params.get("list_every", 10))
    deadline = job.start_at + job.duration
    rng = random.Random(job.params.get("seed", 0))

    async def loop(worker: int) -> None:
        n = worker
        while time.time() < deadline:
            n += 1
            if list_every and n % list_every == 0:
                await client.call("events", "GET", "/api/events")
            else:
                event_id = rng.choice(event_ids)
                await client.call("tickets", "GET", f"/api/events/{event_id}/tickets")

    await asyncio.gather(*(loop(i) for i in range(job.concurrency)))


# -- many categories: a rotating hot set; the first hold on a category activates it ----------


async def _churn(job: Job, client: _Client, result: WorkerResult) -> None:
    categories: Sequence[tuple[int, int]] = job.params["categories"]  # (event id, category id)
    hot_set = int(job.params["hot_set"])
    rotate_every = float(job.params["rotate_every"])
    slide = max(1, hot_set // 4)
    deadline = job.start_at + job.duration
    rng = random.Random(job.params.get("seed", 0))

    async def loop(account: Account) -> None:
        token = account[1]
        while (now := time.time()) < deadline:
            # The hot set slides by a quarter every `rotate_every`: most holds find a live
            # actor, and a steady trickle of categories is touched for the first time.
            window = int((now - job.start_at) / rotate_every)
            first = (window * slide) % max(1, len(categories) - hot_set + 1)
            event_id, category_id = categories[first + rng.randrange(hot_set)]
            body = {"eventId": event_id, "categoryId": category_id, "quantity": 1}
            status, payload = await client.call(
                "reserve", "POST", "/api/events/tickets/reserve", token, body, category_id
            )
            if 200 <= status < 300 and isinstance(payload, dict):
                release = {**body, "lockId": payload.get("lockId")}
                await client.call(
                    "release", "POST", "/api/events/tickets/release", token, release, category_id
                )

    accounts = job.accounts
    await asyncio.gather(*(loop(accounts[i % len(accounts)]) for i in range(job.concurrency)))


# -- fan-out: sockets in one event room, recording every availability-update -----------------


async def _sockets(job: Job) -> WorkerResult:
    result = WorkerResult()
    # receive epoch, availableTickets, categoryId, timestamp, the receiving socket's user id
    received: list[tuple[float, int, int, str, int]] = []
    last: dict[int, int] = {}  # user id -> the latest availableTickets its socket saw
    drain = _Drain()
    event_id = job.params["event_id"]
    transports = job.params.get("transports") or ["websocket"]
    closers: list[Callable[[], Awaitable[None]]] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(job.concurrency)
    open_socket = _lean_socket if transports == ["websocket"] else _python_socketio

    async def connect(account: Account) -> None:
        user_id, token = account
        joined = asyncio.Event()

        def on_event(event: str, data: Any) -> None:
            if event == "joined-event-room":
                joined.set()
            elif event == "availability-update" and isinstance(data, dict):
                available = int(data.get("availableTickets", -1))
                last[user_id] = available
                if available == drain.final and user_id in drain.pending:
                    drain.pending.discard(user_id)
                    if not drain.pending:
                        drain.done.set()
                received.append(
                    (
                        time.time(),
                        available,
                        int(data.get("categoryId", 0)),
                        str(data.get("timestamp", "")),
                        user_id,
                    )
                )

        async with gate:
            close: Callable[[], Awaitable[None]] | None = None
            try:
                async with asyncio.timeout(45):
                    close, emit = await open_socket(session, job, token, on_event)
                    await emit("join-event-room", {"eventId": event_id, "userId": user_id})
                    await joined.wait()
                closers.append(close)
            except Exception as exc:  # any failure to join is reported, not raised
                failures.append(f"user {user_id}: {type(exc).__name__}: {exc}")
                if close is not None:
                    await close()
            finally:
                if _ready is not None:  # settled, joined or not: the parent counts these
                    with _ready.get_lock():
                        _ready.value += 1

    async with _socket_session() as session:
        await asyncio.gather(*(connect(account) for account in job.accounts))
        if _stop is not None:
            await asyncio.to_thread(_stop.wait)
        # Let the backlog drain: wait (bounded) until every socket has seen the final state.
        drain.final = _final.value if _final is not None else -1
        drain.pending = {uid for uid, _ in job.accounts if last.get(uid) != drain.final}
        if drain.pending and drain.final >= 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    drain.done.wait(), timeout=float(job.params.get("drain_seconds", 20.0))
                )

        async def close(closer: Callable[[], Awaitable[None]]) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closer(), timeout=5)

        await asyncio.gather(*(close(closer) for closer in closers))
    result.extras.update(received=received, failures=failures, connected=len(closers))
    return result


Emit = Callable[[str, Any], Awaitable[None]]
Opened = tuple[Callable[[], Awaitable[None]], Emit]


@contextlib.asynccontextmanager
async def _socket_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def _lean_socket(
    session: aiohttp.ClientSession, job: Job, token: str, on_event: OnEvent
) -> Opened:
    """WebSocket sockets speak the protocol by hand (`benchmarks.sockets`): the figure is then
    the server's fan-out, not a client library's."""
    socket = RoomSocket(session, job.base_url, job.params.get("namespace", "/realtime"))
    try:
        await socket.connect(token, on_event)
    except BaseException:
        await socket.close()
        raise
    return socket.close, socket.emit


async def _python_socketio(
    session: aiohttp.ClientSession, job: Job, token: str, on_event: OnEvent
) -> Opened:
    """Other transports (long-polling) go through python-socketio's client."""
    import socketio

    namespace = job.params.get("namespace", "/realtime")
    transports = job.params.get("transports") or ["polling"]
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("*", on_event, namespace=namespace)

    async def close() -> None:
        with contextlib.suppress(Exception):
            await sio.disconnect()
        await _close_http(sio)

    try:
        await sio.connect(
            f"{job.base_url}?token={token}",
            namespaces=[namespace],
            auth={"token": token},
            transports=transports,
            wait_timeout=30,
        )
    except BaseException:
        await close()
        raise

    async def emit(event: str, data: Any) -> None:
        await sio.emit(event, data, namespace=namespace)

    return close, emit


@dataclass(slots=True)
class _Drain:
    """After the last change: which sockets still wait for the final state."""

    final: int = -1
    pending: set[int] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def _close_http(sio: Any) -> None:
    """python-socketio leaves its aiohttp session open after a disconnect; close it."""
    http = getattr(sio.eio, "http", None)
    if http is not None and not http.closed:
        with contextlib.suppress(Exception):
            await http.close()


# -- the parent's side -----------------------------------------------------------------------


class LoadRunner:
    """A pool of worker processes, started once and reused by every scenario."""

    def __init__(self, procs: int) -> None:
        ctx = mp.get_context("spawn")
        self.procs = max(1, procs)
        self.progress: Synchronized[int] = ctx.Value("q", 0)
        self.ready: Synchronized[int] = ctx.Value("q", 0)
        self.final: Synchronized[int] = ctx.Value("q", -1)
        self.stop_event: MpEvent = ctx.Event()
        self._pool = ProcessPoolExecutor(
            max_workers=self.procs,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.progress, self.ready, self.final, self.stop_event),
        )

    def reset(self) -> None:
        self.progress.value = 0
        self.ready.value = 0
        self.final.value = -1
        self.stop_event.clear()

    async def run(self, jobs: Sequence[Job]) -> list[WorkerResult]:
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self._pool, run_job, job) for job in jobs]
        return list(await asyncio.gather(*futures))

    def submit(self, jobs: Sequence[Job]) -> asyncio.Future[list[WorkerResult]]:
        return asyncio.ensure_future(self.run(jobs))

    async def warm_up(self) -> None:
        await self.run(
            [Job("browse", "http://127.0.0.1:9", (), 0, 0.0, 0.0, {"event_ids": [0]})] * self.procs
        )

    def close(self) -> None:
        self.stop_event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


def split(items: Sequence[Any], parts: int) -> list[tuple[Any, ...]]:
    """Deal items round-robin into `parts` tuples (some may be empty)."""
    return [tuple(items[i::parts]) for i in range(parts)]
