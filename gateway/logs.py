"""How the process logs: plain text lines by default, one JSON object per line with
LOG_FORMAT=json (the access log's fields become keys). Light: `boxoffice bench` imports it."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's extras."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        formatter: logging.Formatter = JsonLines()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)


ACCESS_LOGGER = "boxoffice.access"
ACCESS_FLUSH_SECONDS = 0.1
ACCESS_PENDING_LIMIT = 5_000

# time, request id, method, path, route template, status, seconds
AccessLine = tuple[float, str, str, str, str, int, float]


class AccessLines:
    """The access log: one line per request, written in batches.

    Through `logging`, a line cost 30 µs of the request (55 µs as JSON): a LogRecord, the
    caller lookup, a formatter and a write with a flush, each time; the request itself costs
    about 170 µs. Here the request only appends a tuple; every 100 ms (or every 5,000 lines)
    the batch is formatted and written to stderr at once, in the same text or JSON layout as
    the other log lines.
    """

    def __init__(
        self,
        json_lines: bool = False,
        stream: Callable[[], TextIO] = lambda: sys.stderr,
        interval: float = ACCESS_FLUSH_SECONDS,
    ) -> None:
        self._json = json_lines
        self._stream = stream
        self._interval = interval
        self._pending: list[AccessLine] = []
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def if_enabled(cls, log_format: str) -> AccessLines | None:
        """Lines only when the `boxoffice.access` logger is on at INFO (`boxoffice serve`)."""
        if not logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO):
            return None
        return cls(json_lines=log_format == "json")

    def add(
        self, request_id: str, method: str, path: str, route: str, status: int, seconds: float
    ) -> None:
        pending = self._pending
        pending.append((time.time(), request_id, method, path, route, status, seconds))
        if len(pending) >= ACCESS_PENDING_LIMIT:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._pending = self._pending, []
        if not lines:
            return
        text = self._json_lines(lines) if self._json else self._text_lines(lines)
        try:
            stream = self._stream()
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed or gone: the lines are lost, the requests are not

    @staticmethod
    def _text_lines(lines: list[AccessLine]) -> str:
        out: list[str] = []
        second, stamp = -1, ""
        for at, request_id, method, path, _, status, seconds in lines:
            if int(at) != second:  # a batch spans a second or two: format each second once
                second = int(at)
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            out.append(
                f"{stamp},{int(at * 1000) % 1000:03d} INFO {ACCESS_LOGGER} "
                f"{request_id} {method} {path} {status} {seconds * 1000:.1f}ms\n"
            )
        return "".join(out)

    @staticmethod
    def _json_lines(lines: list[AccessLine]) -> str:
        out: list[bytes] = []
        second, stamp = -1, ""
        for at, request_id, method, path, route, status, seconds in lines:
            if int(at) != second:
                second = int(at)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            milliseconds = seconds * 1000
            out.append(
                orjson.dumps(
                    {
                        "time": f"{stamp}.{int(at * 1000) % 1000:03d}Z",
                        "level": "info",
                        "logger": ACCESS_LOGGER,
                        "message": f"{request_id} {method} {path} {status} {milliseconds:.1f}ms",
                        "request_id": request_id,
                        "method": method,
                        "path": path,
                        "route": route,
                        "status": status,
                        "duration_ms": round(milliseconds, 3),
                    }
                )
            )
        return (b"\n".join(out) + b"\n").decode()
