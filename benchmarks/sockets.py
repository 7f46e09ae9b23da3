"""A minimal Socket.IO client for the fan-out scenario: one WebSocket, Engine.IO 4 by hand.

A thousand python-socketio clients on the server's two cores measured mostly themselves (a task
per message, four layers of decoding); this one parses a frame and calls back, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson

OnEvent = Callable[[str, Any], None]


class SocketError(RuntimeError):
    """The server refused the connection, the namespace or the protocol went wrong."""


class RoomSocket:
    """One client of a namespace over WebSocket: connect with a token, emit, hear events."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, namespace: str) -> None:
        self._session = session
        self._base_url = base_url
        self._namespace = namespace
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, token: str, on_event: OnEvent, within: float = 30.0) -> None:
        """Open the socket and the namespace; every event heard afterwards goes to `on_event`."""
        parts = urlsplit(self._base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = urlencode({"EIO": "4", "transport": "websocket", "token": token})
        async with asyncio.timeout(within):
            ws = await self._session.ws_connect(f"{scheme}://{parts.netloc}/socket.io/?{query}")
            self._ws = ws
            opened = await ws.receive_str()
            if not opened.startswith("0"):
                raise SocketError(f"expected the Engine.IO open packet, got {opened[:80]!r}")
            await ws.send_str(f"40{self._namespace},{orjson.dumps({'token': token}).decode()}")
            while True:
                frame = await ws.receive_str()
                if frame == "2":
                    await ws.send_str("3")
                elif frame.startswith(f"40{self._namespace},"):
                    break
                elif frame.startswith(f"44{self._namespace},"):
                    raise SocketError(f"connection refused: {frame[len(self._namespace) + 3 :]}")
        self._reader = asyncio.get_running_loop().create_task(self._read(ws, on_event))

    async def emit(self, event: str, data: Any) -> None:
        if self._ws is None:
            raise SocketError("not connected")
        await self._ws.send_str(f"42{self._namespace},{orjson.dumps([event, data]).decode()}")

    async def close(self) -> None:
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(Exception):
            await ws.send_str(f"41{self._namespace},")
        with contextlib.suppress(Exception):
            await ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, on_event: OnEvent) -> None:
        events = f"42{self._namespace},"
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            frame: str = message.data
            if frame.startswith(events):
                event, *args = orjson.loads(frame[len(events) :])
                on_event(event, args[0] if args else None)
            elif frame == "2":
                await ws.send_str("3")  # the server's ping: answer or be dropped
