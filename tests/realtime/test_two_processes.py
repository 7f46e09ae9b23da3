"""A second gateway as a process of its own (`boxoffice serve`, as `make run` starts it) joined
to the same Ray cluster, namespace and database: its sockets see locks and orders made
through the first gateway, which runs in this test process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import ray

from sales.identity import Role
from tests.fixtures.system import LiveSystem, create_event, create_user
from tests.realtime.conftest import WAIT_SECONDS, Connect

BOXOFFICE = str(Path(sys.executable).with_name("boxoffice"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def second_process(first: LiveSystem, data_dir: Path) -> AsyncIterator[str]:
    """`boxoffice serve` on the first system's database, Ray cluster and namespace."""
    port = free_port()
    settings = first.settings
    environment = {
        **os.environ,
        "DATABASE_URL": first.runtime.database_url,
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
        "RAY_NAMESPACE": settings.ray_namespace,
        "JWT_SECRET": settings.resolved_jwt_secret(),
        "DATA_DIR": str(data_dir),
        "API_GATEWAY_PORT": str(port),
        "REALTIME_SERVICE_PORT": str(free_port()),
        "BCRYPT_ROUNDS": "4",
    }
    process = await asyncio.create_subprocess_exec(
        BOXOFFICE, "serve", env=environment, start_new_session=True
    )
    api = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=api, timeout=5) as http:
            async with asyncio.timeout(120):
                while True:
                    assert process.returncode is None, "boxoffice serve exited early"
                    try:
                        if (await http.get("/api/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)  # polling a process we cannot be told about
        yield api
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(60):
                    await process.wait()
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


async def test_sockets_on_another_process_see_locks_and_orders(
    start_system: Callable[..., Awaitable[LiveSystem]], connect: Connect, tmp_path: Path
) -> None:
    a = await start_system()
    event = await create_event(a, await create_user(a, Role.ORGANIZER), (6,))
    category = event.categories[0]
    buyer, watcher = await create_user(a), await create_user(a)

    async with second_process(a, tmp_path / "b") as b_api:
        watcher_on_b = await connect(b_api, watcher.token)
        await watcher_on_b.emit("join-event-room", {"eventId": event.id})
        await watcher_on_b.next("joined-event-room")
        assert (await watcher_on_b.next("availability-update"))["availableTickets"] == 6
        buyer_on_b = await connect(b_api, buyer.token)
        buyer_on_a = await connect(a.api, buyer.token)

        lock = {"eventId": event.id, "categoryId": category.id, "quantity": 2}
        await buyer_on_a.emit("lock-tickets", lock)
        reply = await buyer_on_a.next("lock-tickets-response")
        assert reply["success"] is True
        update = await watcher_on_b.next("availability-update", lambda u: u["lockedTickets"] == 2)
        assert update["availableTickets"] == 4

        async with httpx.AsyncClient(base_url=a.api, timeout=WAIT_SECONDS) as http:
            answer = await http.post(
                "/api/orders/with-lock",
                headers=buyer.headers,
                json=lock | {"lockId": reply["lockId"]},
            )
        assert answer.status_code == 201, answer.text
        completed = await buyer_on_b.next("order-completed")
        assert completed["orderId"] == answer.json()["id"]
        await watcher_on_b.next(
            "availability-update", lambda u: u["lockedTickets"] == 0 and u["availableTickets"] == 4
        )
        await connect.close()
