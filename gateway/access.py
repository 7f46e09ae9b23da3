"""One access line per HTTP request, its request id, and its count and latency for the metrics.

The request id is the client's `X-Request-ID` when it is sane (1 to 64 of `A-Za-z0-9._:-`),
else one made here; it is echoed in the answer's `X-Request-ID` and carried into the actor
commands the request causes (`actors.trace`). Lines are plain text, or JSON with
LOG_FORMAT=json, written in batches (`gateway.logs.AccessLines`).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.trace import REQUEST_ID
from gateway.logs import AccessLines
from gateway.metrics import RequestTally

if TYPE_CHECKING:
    from gateway.hotpaths import HotRead

_SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
UNMATCHED = "unmatched"
STATIC = "static"


class RequestIds:
    """`<process prefix>-<counter>`: unique per process run, and cheaper than random bytes."""

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._next = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}-{next(self._next)}"


class AccessLog:
    """Wraps the HTTP app (not Socket.IO's own transport): measures, logs, numbers requests."""

    def __init__(
        self,
        app: ASGIApp,
        tally: RequestTally,
        *,
        api_prefix: str,
        hot_routes: Sequence[str] = (),
        hot_reads: Sequence[HotRead] = (),
        exact_routes: Mapping[str, str] | None = None,
        lines: AccessLines | None = None,
    ) -> None:
        self.app = app
        self.tally = tally
        self.api_prefix = api_prefix
        self.hot_routes = frozenset(hot_routes)
        self.hot_reads = tuple(hot_reads)
        self.exact_routes = dict(exact_routes or {})
        self.ids = RequestIds()
        self.lines = lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _SANE_ID.match(value):
                    request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = self.ids.new()
        header = (b"x-request-id", request_id.encode("ascii"))
        status = 500  # if nothing is ever sent, the server answers 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        reset = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, answer)
        finally:
            REQUEST_ID.reset(reset)
            seconds = time.perf_counter() - started
            route = self.route_of(scope)
            self.tally.observe(route, scope["method"], status, seconds)
            if self.lines is not None:
                self.lines.add(request_id, scope["method"], scope["path"], route, status, seconds)

    def route_of(self, scope: Scope) -> str:
        """The route's template, never the raw path: labels must stay a bounded set."""
        path: str = scope["path"]
        route = scope.get("route")
        template = getattr(route, "path", None)
        if isinstance(template, str):
            # FastAPI leaves the router's own route here, without the prefix it was mounted at.
            in_api = path.startswith(f"{self.api_prefix}/")
            return (
                f"{self.api_prefix}{template}"
                if in_api and not template.startswith(f"{self.api_prefix}/")
                else template
            )
        if path in self.hot_routes:
            return path
        exact = self.exact_routes.get(path)
        if exact is not None:
            return exact
        if path == self.api_prefix or path.startswith(f"{self.api_prefix}/"):
            for read in self.hot_reads:
                if path.startswith(read.prefix) and path.endswith(read.suffix):
                    return f"{read.prefix}{{id}}{read.suffix}"
            return UNMATCHED
        return STATIC
