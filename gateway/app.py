"""The ASGI application of one gateway process: the REST API under /api, Socket.IO at
/socket.io (namespace /realtime) and the browser page at /.

`create_app` only assembles; the runtime it serves is started and stopped by `gateway.system`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import socketio
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import realtime
from actors.telemetry import ActorTally
from gateway.access import AccessLog
from gateway.deps import current_principal
from gateway.errors import BodySizeLimit, http_error_handler, install_error_handlers
from gateway.hotpaths import HotPaths, HotRead, HotRoute
from gateway.limits import AddressLimit
from gateway.logs import AccessLines
from gateway.metrics import (
    METRICS_PATH,
    MetricsEndpoint,
    RequestTally,
    Sources,
    registry_of,
)
from gateway.routes import (
    audit,
    auth,
    events,
    export,
    health,
    orders,
    queue,
    tickets,
    users,
    waitlist,
)
from gateway.schemas import OrderIn, OrderWithLockIn, ReserveIn
from gateway.system import Runtime
from realtime.server import RealtimeSettings, create_realtime
from realtime.telemetry import SocketTally
from sales.organizer import Organizing

API_PREFIX = "/api"
STATIC_DIR = Path(realtime.__file__).parent / "static"

DESCRIPTION = """
The event platform's REST contract (see docs/api.md). Every error answers
`{statusCode, message, error}`. Protected routes take `Authorization: Bearer <token>`
from `POST /api/auth/login`; reading events needs no token.
"""


def create_api(runtime: Runtime) -> FastAPI:
    api = FastAPI(
        title="Boxoffice",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=f"{API_PREFIX}/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
        redoc_url=None,
    )
    api.state.runtime = runtime
    api.state.organizing = Organizing(runtime.db, runtime.directory, runtime.sales)
    modules = (auth, users, tickets, events, waitlist, queue, orders, health, audit, export)
    routers = [module.router for module in modules]
    for router in routers:
        api.include_router(router, prefix=API_PREFIX)
    install_error_handlers(api)
    api.add_middleware(BodySizeLimit, limit=runtime.settings.max_body_bytes)
    # Outermost, so refusals (401, 413...) carry CORS headers a browser can read.
    api.add_middleware(
        CrossOrigin,
        allow_origins=list(runtime.settings.cors_origins),
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    document_bearer(api, routers)
    return api


def document_bearer(api: FastAPI, routers: list[APIRouter]) -> None:
    """Mark in the OpenAPI document every operation that needs a token.

    Routes read the token in `current_principal` (one flat dependency, for speed) rather than
    through FastAPI's security classes, so the scheme is added to the document here.
    """

    def needs_token(dependant: Dependant) -> bool:
        return dependant.call is current_principal or any(
            needs_token(sub) for sub in dependant.dependencies
        )

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(
                title=api.title,
                version=api.version,
                description=api.description,
                routes=api.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
            routes = [route for router in routers for route in router.routes]
            for route in routes:
                if isinstance(route, APIRoute) and needs_token(route.dependant):
                    operations = schema["paths"].get(API_PREFIX + route.path_format, {})
                    for method in route.methods or ():
                        if method.lower() in operations:
                            operations[method.lower()]["security"] = [{"bearer": []}]
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


class CrossOrigin(CORSMiddleware):
    """Starlette's CORS, entered only by requests that carry an Origin (browsers' cross-origin
    calls): the others (servers, the load generator, same-origin pages) only need the
    `Vary: Origin` it would add, so they get just that, without its per-request header work."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"vary", b"Origin")]
            await send(message)

        await self.app(scope, receive, vary)


def create_site() -> Starlette:
    """The browser page and its assets; anything else is a 404 in the API's error shape."""
    return Starlette(
        routes=[Mount("/", StaticFiles(directory=STATIC_DIR, html=True, check_dir=False))],
        exception_handlers={StarletteHTTPException: http_error_handler},
    )


class _ByPrefix:
    """/api/* to the REST API (which also owns the lifespan), everything else to the site."""

    def __init__(self, api: ASGIApp, site: ASGIApp) -> None:
        self.api = api
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "lifespan" or path == API_PREFIX or path.startswith(f"{API_PREFIX}/"):
            await self.api(scope, receive, send)
        else:
            await self.site(scope, receive, send)


def create_app(runtime: Runtime) -> socketio.ASGIApp:
    settings = runtime.settings
    sockets = SocketTally()
    sio = create_realtime(
        runtime.sales,
        runtime.auth,
        runtime.seats.subscribe,
        RealtimeSettings(
            cors_origins=settings.cors_origins,
            events_per_second=settings.socket_events_per_second,
            event_burst=settings.socket_event_burst,
            max_payload_bytes=settings.socket_max_payload_bytes,
            connections_per_user=settings.socket_connections_per_user,
            send_queue_limit=settings.socket_send_queue_limit,
        ),
        tally=sockets,
        organizing=Organizing(runtime.db, runtime.directory, runtime.sales),
        rooms=runtime.rooms,
    )
    api = AddressLimit(
        HotPaths(
            create_api(runtime), hot_routes(), runtime.settings.max_body_bytes, reads=hot_reads()
        ),
        runtime.limits,
    )
    requests = RequestTally()
    actors = ActorTally()
    runtime.seats.subscribe(actors)  # for the life of the runtime, as the realtime publisher
    sources = Sources(
        requests,
        runtime.sales.tally,
        sockets,
        runtime.limits,
        lambda: len(sio.eio.sockets),
        actors,
    )
    http = AccessLog(
        MetricsEndpoint(
            _ByPrefix(api, create_site()), registry_of(sources), settings.metrics_token
        ),
        requests,
        api_prefix=API_PREFIX,
        hot_routes=list(hot_routes()),
        hot_reads=hot_reads(),
        exact_routes={METRICS_PATH: METRICS_PATH},
        lines=AccessLines.if_enabled(settings.log_format),
    )
    return socketio.ASGIApp(sio, other_asgi_app=http)


def hot_routes() -> dict[str, HotRoute]:
    """The routes a sale puts on one category (see `gateway.hotpaths`), by path: the hold,
    and the order that follows it (with the lock, or without one)."""
    return {
        f"{API_PREFIX}/events/tickets/reserve": HotRoute(ReserveIn, tickets.hold_seats),
        f"{API_PREFIX}/orders/with-lock": HotRoute(OrderWithLockIn, orders.buy_with_lock),
        f"{API_PREFIX}/orders": HotRoute(OrderIn, orders.buy),
    }


def hot_reads() -> list[HotRead]:
    """The read every watching buyer repeats: an event's live seats."""
    return [HotRead(f"{API_PREFIX}/events/", "/tickets", events.tickets_of)]


async def close_app(app: socketio.ASGIApp) -> None:
    """End Socket.IO's background work once the servers have stopped taking connections."""
    await app.engineio_server.shutdown()
    http = app.other_asgi_app
    if isinstance(http, AccessLog) and http.lines is not None:
        http.lines.flush()  # the last requests' lines
