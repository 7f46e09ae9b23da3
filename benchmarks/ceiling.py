"""The ceiling: the most an authenticated call can do on this machine with these settings.

A minimal FastAPI app that verifies the system's JWT and returns; the harness runs it under the
same uvicorn settings as the gateway and reports every hold figure as a ratio to it.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

from gateway.config import Settings
from sales.identity import InvalidToken, Principal, TokenService


class ReserveBody(BaseModel):
    """The seed's camelCase field names."""

    eventId: int
    categoryId: int
    quantity: int


def bearer_principal(tokens: TokenService) -> Callable[..., Awaitable[Principal]]:
    """The Authorization check every app of the bench makes: the system's tokens, 401 else."""

    async def principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise InvalidToken("not a bearer token")
            return tokens.verify(token)
        except InvalidToken as exc:
            raise HTTPException(status_code=401, detail="Unauthorized") from exc

    return principal


def create_app(settings: Settings) -> FastAPI:
    tokens = TokenService(settings.resolved_jwt_secret(), settings.token_lifetime)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    principal = bearer_principal(tokens)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.post("/api/events/tickets/reserve")
    async def reserve(
        body: ReserveBody, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        return {}

    @app.get("/api/events/{event_id}/tickets")
    async def tickets(event_id: int) -> list[dict[str, Any]]:
        return []

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: JWT_SECRET and JWT_EXPIRES_IN come from the environment."""
    return create_app(Settings())
