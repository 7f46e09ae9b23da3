"""Slow clients are bounded in time: a half-sent request is answered 408 and closed after the
read deadline, a client that stops reading is cut once its writes stall, and neither holds back
anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.system import LiveSystem
from tests.gateway.conftest import poll

StartSystem = Callable[..., Awaitable[LiveSystem]]
WITHIN = 20.0  # a deadline for the condition, far above the 1 s bounds under test


@pytest.fixture
async def slow_system(start_system: StartSystem) -> LiveSystem:
    return await start_system(http_read_timeout_seconds=1, write_stall_seconds=1)


@contextlib.asynccontextmanager
async def raw(api: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    address = urlsplit(api)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _answer_then_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), WITHIN)


@pytest.mark.parametrize(
    "partial",
    [
        b"",  # connects, sends nothing
        b"GET /api/events HTTP/1.1\r\nHost: x\r\n",  # headers never finished
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"username":',  # body never finished
    ],
    ids=["silent", "half-headers", "half-body"],
)
async def test_a_half_sent_request_is_answered_408_and_closed(
    slow_system: LiveSystem, partial: bytes
) -> None:
    async with (
        raw(slow_system.api) as (reader, writer),
        httpx.AsyncClient(base_url=slow_system.api, timeout=30) as http,
    ):
        writer.write(partial)
        await writer.drain()
        # Others are served meanwhile.
        assert (await http.get("/api/events")).status_code == 200
        answer = await _answer_then_closed(reader)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200]
    assert answer.endswith(b'"error":"The request did not arrive in time"}')
    assert reader.at_eof()


async def test_whole_requests_on_a_kept_alive_connection_are_not_cut(
    slow_system: LiveSystem,
) -> None:
    async with httpx.AsyncClient(base_url=slow_system.api, timeout=30) as http:
        for _ in range(3):
            assert (await http.get("/api/events")).status_code == 200


async def test_a_client_that_stops_reading_is_cut(slow_system: LiveSystem) -> None:
    address = urlsplit(slow_system.api)
    assert address.hostname is not None and address.port is not None
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window, never read
    client.connect((address.hostname, address.port))
    client.setblocking(False)
    try:
        request = b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(client, request * 400)  # megabytes of answers, none read

        async def cut() -> bool:
            # The server's reset, seen without reading a byte of what it had sent.
            return client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET

        await poll(cut, within=WITHIN, interval=0.1)
    finally:
        client.close()
    async with httpx.AsyncClient(base_url=slow_system.api, timeout=30) as http:
        assert (await http.get("/api/events")).status_code == 200
