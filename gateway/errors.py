"""Every error the API answers, in the guide's shape `{statusCode, message, error}`.

One table maps every refusal reason to an HTTP status; one set of handlers shapes every
exception. A dependency that is down (Ray, PostgreSQL) answers 503 with `Retry-After`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.refusals import Refusal, RefusalReason
from actors.remote import Unavailable
from sales.identity import HashingBusy
from sales.outage import outage_of

logger = logging.getLogger(__name__)

VALIDATION_FAILED = "Validation failed"
RETRY_AFTER_SECONDS = "1"

REFUSAL_STATUS: Mapping[RefusalReason, int] = {
    RefusalReason.NOT_ENOUGH_SEATS: 409,
    RefusalReason.HOLD_NOT_FOUND: 404,
    RefusalReason.NOT_YOUR_HOLD: 403,
    RefusalReason.HOLD_EXPIRED: 409,
    RefusalReason.HOLD_MISMATCH: 400,
    RefusalReason.BAD_QUANTITY: 400,
    RefusalReason.TOO_MANY_TICKETS: 400,
    RefusalReason.EVENT_NOT_FOUND: 404,
    RefusalReason.CATEGORY_NOT_FOUND: 404,
    RefusalReason.NOT_ON_SALE: 409,
    RefusalReason.WRONG_EVENT: 409,
    RefusalReason.CATEGORY_UNAVAILABLE: 409,
    RefusalReason.ORDER_NOT_FOUND: 404,
    RefusalReason.ORDER_ALREADY_CANCELLED: 409,
    RefusalReason.BAD_SALES_WINDOW: 400,
    RefusalReason.SALES_NOT_OPEN: 409,
    RefusalReason.SALES_CLOSED: 409,
    RefusalReason.LIMIT_REACHED: 409,
    RefusalReason.TOO_MANY_HOLDS: 409,
    RefusalReason.REHOLD_TOO_SOON: 409,
    RefusalReason.SEATS_AVAILABLE: 409,
    RefusalReason.ALREADY_WAITING: 409,
    RefusalReason.NOT_WAITING: 404,
    RefusalReason.NOT_THE_ORGANIZER: 403,
    RefusalReason.NO_ADMISSION: 403,
    RefusalReason.NO_WAITING_ROOM: 409,
    RefusalReason.LEDGER_UNAVAILABLE: 503,
}
# Refusals of a value the client sent: titled as schema validation failures are.
VALIDATION_REASONS = frozenset({RefusalReason.TOO_MANY_TICKETS, RefusalReason.BAD_SALES_WINDOW})


class ApiError(Exception):
    """A refusal decided in the gateway: its status, and the specific explanation."""

    def __init__(
        self,
        status_code: int,
        error: str,
        *,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.message = message or reason_phrase(status_code)
        self.headers = dict(headers or {})


def invalid(error: str) -> ApiError:
    """A 400 for input that parses but breaks a rule only the server can check."""
    return ApiError(400, error, message=VALIDATION_FAILED)


def reason_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def error_body(status_code: int, error: str, message: str | None = None) -> dict[str, Any]:
    return {
        "statusCode": status_code,
        "message": message or reason_phrase(status_code),
        "error": error,
    }


def error_response(
    status_code: int,
    error: str,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status_code, error, message), status_code=status_code, headers=headers
    )


def refusal_status(reason: RefusalReason) -> int:
    return REFUSAL_STATUS[reason]


def describe_validation(errors: Sequence[Any]) -> str:
    """Turn pydantic's error list into one readable sentence per problem."""
    parts: list[str] = []
    for item in errors:
        loc = [part for part in item.get("loc", ()) if part not in ("body", "query", "path")]
        kind = item.get("type", "")
        if kind == "json_invalid":
            parts.append("Malformed JSON body")
            continue
        field = _field_path(loc)
        if kind == "missing":
            parts.append(f"{field} is required" if field else "A JSON body is required")
        elif not field:
            parts.append(f"The body must be a JSON object ({item.get('msg', 'invalid')})")
        else:
            message = str(item.get("msg", "is invalid"))
            message = message.removeprefix("Value error, ")
            parts.append(f"{field}: {message}")
    return "; ".join(dict.fromkeys(parts)) or "Invalid request"


def _field_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = exc.headers
    if exc.status_code == 503 and "Retry-After" not in headers:
        headers = {**headers, "Retry-After": RETRY_AFTER_SECONDS}  # every 503 says when
    return error_response(exc.status_code, exc.error, exc.message, headers)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status_code = exc.status_code
    if status_code == 404 and exc.detail == "Not Found":
        error = f"Cannot {request.method} {request.url.path}"
    elif status_code == 405:
        error = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        error = str(exc.detail)
    return error_response(status_code, error, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, describe_validation(exc.errors()), VALIDATION_FAILED)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    status_code = refusal_status(exc.reason)
    title = VALIDATION_FAILED if exc.reason in VALIDATION_REASONS else None
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status_code == 503 else None
    return error_response(status_code, exc.message, title, headers)


async def _actors_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("actors unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "The ticket engine is not answering; try again shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if outage_of(exc) is None:
        return await _unexpected(request, exc)  # a query the database refused: our bug
    # One line per failure, not a traceback per request: the outage is the news.
    logger.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return error_response(
        503,
        "The database is not answering; try again shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _hashing_busy(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("password hashing saturated on %s %s", request.method, request.url.path)
    return error_response(
        503,
        "Too many sign-ins at once; try again shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Refusal, _refused)
    app.add_exception_handler(Unavailable, _actors_unavailable)
    app.add_exception_handler(DBAPIError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(HashingBusy, _hashing_busy)
    app.add_exception_handler(Exception, _unexpected)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds {limit} bytes")


class BodySizeLimit:
    """Refuse request bodies above `limit` bytes: by Content-Length up front, and by
    counting what actually arrives (chunked or lying clients)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            response = error_response(413, f"Request body exceeds {self.limit} bytes")
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
