"""The bare ceiling: the most one Python process answers for an authenticated call here.

A plain ASGI callable, no framework, under the gateway's uvicorn settings (httptools, uvloop):
it checks the bearer token with the system's `TokenService` (remembered until its `exp`, as the
gateway's is), parses the body with orjson and answers a small JSON. The FastAPI ceiling
(`benchmarks.ceiling`) bounds a FastAPI route; the hot routes skip FastAPI, so this is the
bound that still applies to them.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.config import Settings
from sales.identity import InvalidToken, TokenService

Scope = dict[str, Any]
Receive = Any
Send = Any

JSON = [(b"content-type", b"application/json")]
HEALTHY = orjson.dumps({"status": "ok"})
UNAUTHORIZED = orjson.dumps({"statusCode": 401, "message": "Unauthorized"})
BAD_BODY = orjson.dumps({"statusCode": 400, "message": "Bad Request"})
NOT_FOUND = orjson.dumps({"statusCode": 404, "message": "Not Found"})


class BareCeiling:
    def __init__(self, tokens: TokenService) -> None:
        self._tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == "/api/events/tickets/reserve":
            await self._reserve(scope, receive, send)
        elif method == "GET" and path == "/api/health":
            await _answer(send, 200, HEALTHY)
        elif method == "GET" and path.startswith("/api/events/") and path.endswith("/tickets"):
            await _answer(send, 200, b"[]")
        else:
            await _answer(send, 404, NOT_FOUND)

    async def _reserve(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    token = ""
        try:
            principal = self._tokens.verify(token)
        except InvalidToken:
            await _answer(send, 401, UNAUTHORIZED)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            request = orjson.loads(body)
            answer = {
                "success": True,
                "userId": principal.user_id,
                "eventId": int(request["eventId"]),
                "categoryId": int(request["categoryId"]),
                "quantity": int(request["quantity"]),
            }
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            await _answer(send, 400, BAD_BODY)
            return
        await _answer(send, 201, orjson.dumps(answer))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON})
    await send({"type": "http.response.body", "body": body})


def app_from_env() -> BareCeiling:
    """uvicorn factory: JWT_SECRET and JWT_EXPIRES_IN come from the environment."""
    settings = Settings()
    return BareCeiling(TokenService(settings.resolved_jwt_secret(), settings.token_lifetime))
