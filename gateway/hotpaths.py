"""The hot routes served without FastAPI's per-request machinery, with the same rules and answers.

A request the fast path does not fully understand goes on to the FastAPI app, which answers it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.deps import authenticate
from gateway.schemas import MAX_ID
from gateway.system import Runtime
from sales.identity import Principal

Handler = Callable[[Runtime, Principal, Any], Awaitable[Response]]
ReadHandler = Callable[[Runtime, int], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    """A `POST` with a JSON body and a bearer token, and the function its FastAPI route calls."""

    body: type[BaseModel]
    handler: Handler


@dataclass(frozen=True, slots=True)
class HotRead:
    """A public `GET` of one resource by id: `prefix` + id + `suffix`, with no query."""

    prefix: str
    suffix: str
    handler: ReadHandler


class HotPaths:
    """Serves `routes` in front of `api`, FastAPI's app for the same routes.

    Profiling the reserve route under load put about 70% of the gateway's CPU in FastAPI's
    routing, dependency solving and middleware, not in the hold. Here a hot request costs its
    body parse, the token check and the handler. Anything unusual goes to `api` unchanged, body
    included, so the answers never diverge: a browser's cross-origin call (CORS), a body that
    is not JSON, too large or invalid. Refusals raised by the handler are shaped by `api`'s own
    exception handlers.
    """

    def __init__(
        self,
        api: FastAPI,
        routes: Mapping[str, HotRoute],
        body_limit: int,
        reads: Sequence[HotRead] = (),
    ) -> None:
        self.api = api
        self.routes = dict(routes)
        self.body_limit = body_limit
        self.reads = tuple(reads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and self.reads:
            await self._read(scope, receive, send)
            return
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.api(scope, receive, send)
            return
        authorization: str | None = None
        json_body = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    json_body = False  # two tokens: which one counts is the FastAPI app's call
                    break
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                json_body = value.split(b";", 1)[0].strip().lower() == b"application/json"
            elif name in _APP_HEADERS:
                # CORS is the FastAPI app's, and so are a waiting room's pass and an
                # Idempotency-Key (its route reads them): most requests send neither.
                json_body = False
                break
        if not json_body:
            await self.api(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body arrived
            messages.append(message)
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
            if size > self.body_limit:
                await self.api(scope, _replay(messages, receive), send)
                return
        body = messages[0].get("body", b"") if len(messages) == 1 else _joined(messages)
        runtime: Runtime = self.api.state.runtime
        try:
            parsed = route.body.model_validate_json(body)
        except ValidationError:
            await self.api(scope, _replay(messages, receive), send)
            return

        async def hold() -> Response:
            principal = await authenticate(runtime, authorization or "")
            return await route.handler(runtime, principal, parsed)

        await self._answer(scope, receive, send, hold())

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> None:
        for read in self.reads:
            resource_id = _plain_read_of(scope, read)
            if resource_id is not None:
                work = read.handler(self.api.state.runtime, resource_id)
                await self._answer(scope, receive, send, work)
                return
        await self.api(scope, receive, send)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, work: Awaitable[Response]
    ) -> None:
        """Send what `work` answers, or its error shaped as the app shapes every error."""
        try:
            response = await work
        except Exception as exc:
            response = await self._refusal(scope, exc)
        response.headers["vary"] = "Origin"
        await response(scope, receive, send)

    async def _refusal(self, scope: Scope, exc: Exception) -> Response:
        handlers = self.api.exception_handlers
        for kind in type(exc).__mro__:
            handler = handlers.get(kind)
            if handler is not None:
                answer = handler(Request(scope), exc)
                return answer if isinstance(answer, Response) else await answer
        raise exc


_ID_DIGITS = len(str(MAX_ID))
_APP_HEADERS = frozenset((b"origin", b"x-admission-pass", b"idempotency-key"))


def _plain_read_of(scope: Scope, read: HotRead) -> int | None:
    """The id in a request for `read`'s path, if the request is plain (no query, no Origin)
    and the id is at most ten ASCII digits within range; None sends the request on to FastAPI."""
    path: str = scope["path"]
    if scope["query_string"] or not (path.startswith(read.prefix) and path.endswith(read.suffix)):
        return None
    digits = path[len(read.prefix) : len(path) - len(read.suffix)]
    if not (digits.isascii() and digits.isdigit() and len(digits) <= _ID_DIGITS):
        return None  # a long one too: int() refuses over 4,300 digits, and FastAPI answers it
    if not 1 <= int(digits) <= MAX_ID:
        return None
    if any(name == b"origin" for name, _ in scope["headers"]):
        return None  # CORS is the FastAPI app's
    return int(digits)


def _joined(messages: list[Message]) -> bytes:
    return b"".join(message.get("body", b"") for message in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` as it was before the fast path read `messages` from it."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
