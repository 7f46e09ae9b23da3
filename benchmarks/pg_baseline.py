"""The PostgreSQL baseline: reserve and order-with-lock the way one would without actors.

A conditional UPDATE on the hot category row plus a holds table, one transaction per request,
against the same PostgreSQL the system uses; its own tables are prefixed `baseline_`. Each
request is one statement (a CTE), so the hot row's lock is held for one round trip, not two.
`BASELINE_SYNCHRONOUS_COMMIT=off` runs the same with commits that do not wait for the WAL to
reach disk: a crash may lose the last moments of commits, as a write-behind would.
"""

import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from benchmarks.ceiling import bearer_principal
from gateway.config import Settings
from sales.identity import Principal, TokenService

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS baseline_categories (
        id bigserial PRIMARY KEY,
        event_id integer NOT NULL,
        category_name text NOT NULL,
        price numeric(10, 2) NOT NULL,
        total integer NOT NULL,
        held integer NOT NULL DEFAULT 0,
        sold integer NOT NULL DEFAULT 0,
        CHECK (held >= 0 AND sold >= 0 AND held + sold <= total))""",
    """CREATE TABLE IF NOT EXISTS baseline_holds (
        lock_id text PRIMARY KEY,
        user_id integer NOT NULL,
        category_id bigint NOT NULL REFERENCES baseline_categories (id),
        quantity integer NOT NULL CHECK (quantity > 0),
        expires_at timestamptz NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS baseline_orders (
        id bigserial PRIMARY KEY,
        user_id integer NOT NULL,
        event_id integer NOT NULL,
        category_id bigint NOT NULL REFERENCES baseline_categories (id),
        quantity integer NOT NULL CHECK (quantity > 0),
        unit_price numeric(10, 2) NOT NULL,
        total_price numeric(10, 2) NOT NULL,
        status text NOT NULL,
        lock_id text UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS baseline_orders_category ON baseline_orders (category_id)",
)

# One statement each: the seats and the hold change together, or neither does.
RESERVE = text(
    "WITH seats AS ("
    " UPDATE baseline_categories SET held = held + :q"
    " WHERE id = :id AND event_id = :event_id AND total - held - sold >= :q"
    " RETURNING id, total - held - sold AS available),"
    " hold AS ("
    " INSERT INTO baseline_holds (lock_id, user_id, category_id, quantity, expires_at)"
    " SELECT :lock_id, :user_id, id, :q, :expires_at FROM seats RETURNING lock_id)"
    " SELECT seats.available FROM seats, hold"
)
# The hold is taken only if it matches the order; the seats move from held to sold and the
# order row is written in the same statement.
ORDER_WITH_LOCK = text(
    "WITH hold AS ("
    " DELETE FROM baseline_holds WHERE lock_id = :lock_id AND user_id = :user_id"
    " AND expires_at > now() AND category_id = :category_id AND quantity = :q"
    " RETURNING category_id, quantity),"
    " seats AS ("
    " UPDATE baseline_categories c SET held = held - hold.quantity, sold = sold + hold.quantity"
    " FROM hold WHERE c.id = hold.category_id"
    " RETURNING c.id, c.event_id, c.category_name, c.price, hold.quantity),"
    " placed AS ("
    " INSERT INTO baseline_orders (user_id, event_id, category_id, quantity, unit_price,"
    " total_price, status, lock_id)"
    " SELECT :user_id, event_id, id, quantity, price, price * quantity, 'pending', :lock_id"
    " FROM seats RETURNING id, created_at)"
    " SELECT placed.id, placed.created_at, seats.event_id, seats.category_name, seats.price"
    " FROM placed, seats"
)


class ReserveBody(BaseModel):
    """The seed's camelCase field names."""

    eventId: int
    categoryId: int
    quantity: int = Field(ge=1, le=10)


class OrderWithLockBody(BaseModel):
    eventId: int
    categoryId: int
    quantity: int = Field(ge=1, le=10)
    lockId: str
    notes: str | None = None


class CategoryBody(BaseModel):
    eventId: int
    totalSeats: int = Field(ge=1)
    price: Decimal = Decimal("10.00")
    categoryName: str = "General"


class Refusal(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def database_url(raw: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def create_app(
    settings: Settings, *, pool_size: int = 10, synchronous_commit: bool = True
) -> FastAPI:
    if not settings.database_url:
        raise ValueError("the baseline needs DATABASE_URL")
    tokens = TokenService(settings.resolved_jwt_secret(), settings.token_lifetime)
    ttl = timedelta(seconds=settings.lock_ttl_seconds)
    engine: AsyncEngine = create_async_engine(
        database_url(settings.database_url),
        pool_size=pool_size,
        max_overflow=0,
        connect_args={} if synchronous_commit else {"options": "-c synchronous_commit=off"},
    )

    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(74100)"))
            for statement in SCHEMA:
                await conn.execute(text(statement))
        yield
        await engine.dispose()

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refusal)
        return JSONResponse(
            {"statusCode": exc.status, "message": exc.error, "error": exc.error},
            status_code=exc.status,
        )

    principal = bearer_principal(tokens)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.post("/api/events/tickets/reserve")
    async def reserve(
        body: ReserveBody, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        lock_id = f"lock_{uuid.uuid4().hex}"
        expires_at = datetime.now(UTC) + ttl
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    RESERVE,
                    {
                        "q": body.quantity,
                        "id": body.categoryId,
                        "event_id": body.eventId,
                        "lock_id": lock_id,
                        "user_id": who.user_id,
                        "expires_at": expires_at,
                    },
                )
            ).first()
            if row is None:
                raise Refusal(409, "Not enough seats available")
        return {
            "success": True,
            "lockId": lock_id,
            "expiresAt": expires_at.isoformat(),
            "availableSeats": row.available,
            "message": "Tickets reserved successfully",
        }

    @app.post("/api/orders/with-lock", status_code=201)
    async def order_with_lock(
        body: OrderWithLockBody, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        async with engine.begin() as conn:
            order = (
                await conn.execute(
                    ORDER_WITH_LOCK,
                    {
                        "lock_id": body.lockId,
                        "user_id": who.user_id,
                        "category_id": body.categoryId,
                        "q": body.quantity,
                    },
                )
            ).first()
        if order is None:
            raise Refusal(404, "Lock not found, expired, or not matching the order")
        return {
            "id": order.id,
            "userId": who.user_id,
            "eventId": order.event_id,
            "categoryId": body.categoryId,
            "quantity": body.quantity,
            "unitPrice": float(order.price),
            "totalPrice": float(order.price * body.quantity),
            "status": "pending",
            "categoryName": order.category_name,
            "createdAt": order.created_at.isoformat(),
        }

    @app.get("/api/events/{event_id}/tickets")
    async def tickets(event_id: int) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT id, category_name, price, total, held, sold FROM baseline_categories "
                    "WHERE event_id = :event_id ORDER BY id"
                ),
                {"event_id": event_id},
            )
            return [
                {
                    "id": row.id,
                    "categoryName": row.category_name,
                    "price": float(row.price),
                    "totalSeats": row.total,
                    "reservedSeats": row.held + row.sold,
                    "availableSeats": row.total - row.held - row.sold,
                    "eventId": event_id,
                }
                for row in rows
            ]

    # -- set-up and audit for the harness (not part of the contract) ---------------------------

    @app.post("/bench/categories", status_code=201)
    async def create_category(body: CategoryBody) -> dict[str, Any]:
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        "INSERT INTO baseline_categories (event_id, category_name, price, total) "
                        "VALUES (:event_id, :name, :price, :total) RETURNING id"
                    ),
                    {
                        "event_id": body.eventId,
                        "name": body.categoryName,
                        "price": body.price,
                        "total": body.totalSeats,
                    },
                )
            ).one()
        return {"id": row.id, "eventId": body.eventId}

    @app.get("/bench/categories/{category_id}")
    async def audit_category(category_id: int) -> dict[str, Any]:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT c.total, c.held, c.sold, (SELECT coalesce(sum(o.quantity), 0) "
                        "FROM baseline_orders o WHERE o.category_id = c.id "
                        "AND o.status <> 'cancelled') AS ledger_sold "
                        "FROM baseline_categories c WHERE c.id = :id"
                    ),
                    {"id": category_id},
                )
            ).first()
        if row is None:
            raise Refusal(404, "Category not found")
        return {
            "total": row.total,
            "held": row.held,
            "sold": row.sold,
            "ledgerSold": row.ledger_sold,
        }

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: DATABASE_URL, JWT_SECRET and LOCK_TTL_SECONDS from the environment."""
    pool = int(os.environ.get("BASELINE_POOL_SIZE", "10"))
    synchronous = os.environ.get("BASELINE_SYNCHRONOUS_COMMIT", "on").lower() != "off"
    return create_app(Settings(), pool_size=pool, synchronous_commit=synchronous)
