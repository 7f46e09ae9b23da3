"""Slow clients are bounded in time: a request must arrive in full within a deadline, and a
connection whose client stops reading is cut once its writes have been stalled for long.

uvicorn closes idle keep-alive connections but never a half-sent request, nor a connection
whose client reads nothing (its buffers fill, the writer waits forever). These are uvicorn's
own protocols with two timers added, handed to `uvicorn.Config(http=..., ws=...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

_TIMEOUT_BODY = json.dumps(
    {
        "statusCode": 408,
        "message": "Request Timeout",
        "error": "The request did not arrive in time",
    },
    separators=(",", ":"),
).encode()
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


class _WriteStall:
    """Aborts `transport` once its writes have been paused for `seconds` in a row."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._timer: asyncio.TimerHandle | None = None

    def paused(self, transport: asyncio.Transport) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._seconds, _reset, transport)

    def resumed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _reset(transport: asyncio.Transport) -> None:
    """Drop the connection now, unsent bytes included: a plain close would leave the kernel
    trickling them to a client that reads nothing, holding the buffers."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def http_protocol(read_seconds: float, stall_seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, with a read deadline per request and a write-stall bound."""

    class DeadlineHttp(HttpToolsProtocol):
        _read_timer: asyncio.TimerHandle | None = None
        _stall: _WriteStall | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._stall = _WriteStall(stall_seconds)
            self._arm_read()  # a connection that never sends a whole request goes too

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_read()
            if self._stall is not None:
                self._stall.resumed()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_read()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm_read()

        def handle_websocket_upgrade(self) -> None:
            self._disarm_read()  # the WebSocket protocol takes over the connection
            if self._stall is not None:
                self._stall.resumed()
            super().handle_websocket_upgrade()

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._stall is not None:
                self._stall.paused(self.transport)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._stall is not None:
                self._stall.resumed()

        def _arm_read(self) -> None:
            if self._read_timer is None:
                self._read_timer = self.loop.call_later(read_seconds, self._read_timed_out)

        def _disarm_read(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _read_timed_out(self) -> None:
            self._read_timer = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is None or cycle.response_complete or not cycle.response_started:
                # Nobody has answered this request yet: say why it ends.
                self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()

    return DeadlineHttp


def websocket_protocol(stall_seconds: float) -> type[WebSocketsSansIOProtocol]:
    """uvicorn's WebSocket protocol, cut when its client has read nothing for `stall_seconds`."""

    class DeadlineWebSocket(WebSocketsSansIOProtocol):
        _stall: _WriteStall | None = None

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._stall is None:
                self._stall = _WriteStall(stall_seconds)
            self._stall.paused(self.transport)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._stall is not None:
                self._stall.resumed()

    return DeadlineWebSocket
