"""The id of the request being served, as a context variable: the gateway sets it per HTTP
request (and per socket event), the seat client copies it into each actor command, and the
actor names it in what it logs about that command."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str] = ContextVar("boxoffice_request_id", default="")
