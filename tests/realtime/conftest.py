"""Socket.IO test clients for `/realtime`: real python-socketio clients over loopback that
record every event, and wait on them with a timeout instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio

from realtime.payloads import NAMESPACE
from tests.fixtures.system import TEST_START_TIMEOUT_SECONDS

# An answer may wait for a cold actor to start, which a test system allows
# TEST_START_TIMEOUT_SECONDS: on a loaded 2-core machine two socket tests waited past 15 s for
# their first answer.
WAIT_SECONDS = TEST_START_TIMEOUT_SECONDS + 15.0

Predicate = Callable[[Any], bool]


class Recorder:
    """One socket to `/realtime` that keeps everything it receives, in order, per event."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._cursor: dict[str, int] = defaultdict(int)
        self._arrived = asyncio.Event()
        self.client.on("*", self._record, namespace=NAMESPACE)
        self.client.on("connect_error", self._connect_error, namespace=NAMESPACE)
        self.client.on("disconnect", self._disconnected, namespace=NAMESPACE)

    async def _record(self, event: str, *args: Any) -> None:
        self.received[event].append(args[0] if args else None)
        self._arrived.set()

    async def _connect_error(self, data: Any = None) -> None:
        await self._record("connect_error", data)

    async def _disconnected(self, reason: Any = None) -> None:
        await self._record("disconnect", reason)

    @property
    def sid(self) -> str | None:
        sid: str | None = self.client.get_sid(NAMESPACE)
        return sid

    async def emit(self, event: str, data: Any = None) -> None:
        await self.client.emit(event, data, namespace=NAMESPACE)

    async def next(self, event: str, where: Predicate | None = None) -> Any:
        """The next unread `event` (skipping those `where` rejects), within WAIT_SECONDS."""
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                seen = self.received[event]
                while self._cursor[event] < len(seen):
                    payload = seen[self._cursor[event]]
                    self._cursor[event] += 1
                    if where is None or where(payload):
                        return payload
                self._arrived.clear()
                await self._arrived.wait()

    async def until(self, done: Callable[[], bool]) -> None:
        """Wait, within WAIT_SECONDS, until `done()` holds over what has been received."""
        async with asyncio.timeout(WAIT_SECONDS):
            while not done():
                self._arrived.clear()
                await self._arrived.wait()

    async def count(self, event: str, at_least: int) -> list[Any]:
        """Wait until at least `at_least` `event`s have arrived; all of them."""
        await self.until(lambda: len(self.received[event]) >= at_least)
        return list(self.received[event])

    async def round_trip(self) -> None:
        """A heartbeat there and back: whatever the server sent before it has arrived."""
        before = len(self.received["heartbeat-response"])
        await self.emit("heartbeat")
        await self.count("heartbeat-response", before + 1)
        self._cursor["heartbeat-response"] = len(self.received["heartbeat-response"])


class Sockets:
    """`await sockets(api, token)`: a connected Recorder that has had its `connected` event.

    Every Recorder made is kept in `opened` (a refused one too) and shut down at teardown.
    """

    def __init__(self) -> None:
        self.opened: list[Recorder] = []

    async def __call__(
        self,
        api: str,
        token: str | None,
        *,
        via: str = "auth",
        greeted: bool = True,
        transports: tuple[str, ...] = ("websocket",),
    ) -> Recorder:
        recorder = Recorder()
        self.opened.append(recorder)
        url, auth = api, None
        if token is not None and via == "auth":
            auth = {"token": token}
        elif token is not None and via == "query":
            url = f"{api}?token={token}&userId=1"
        await recorder.client.connect(
            url,
            namespaces=[NAMESPACE],
            auth=auth,
            transports=list(transports),
            wait_timeout=WAIT_SECONDS,
        )
        if greeted:
            await recorder.next("connected")
        return recorder

    async def close(self) -> None:
        # All at once: a polling client's shutdown waits for its pending long-poll, which the
        # server ends only at its ping (up to 25 s), so one after another these added up.
        await asyncio.gather(*(recorder.client.shutdown() for recorder in self.opened))


Connect = Sockets


@pytest.fixture
async def connect() -> AsyncIterator[Sockets]:
    sockets = Sockets()
    yield sockets
    await sockets.close()
